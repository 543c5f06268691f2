/**
 * The agent fleet and the on-prem agent identity, as synthesized CloudFormation. The agent bundle
 * is built once (as `npm run build:agent` does) and handed to the fleet, and the control plane's
 * functions are the same construct the stack uses, so one synthesis serves every assertion.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleAgentSync } from '../../lib/build/agent-bundle.ts';
import { MesoAgentFleet, MesoOnPremAgent } from '../../lib/infra/cdk/agent-fleet.ts';
import { MesoControlPlane } from '../../lib/infra/cdk/control-plane.ts';
import { MesoStack } from '../../lib/infra/cdk/stack.ts';

const SYNTH_TIMEOUT = 120_000;
let template: Template;
let withFleet: Template;
let bundleDir: string;

beforeAll(() => {
  bundleDir = mkdtempSync(join(tmpdir(), 'meso-bundle-test-'));
  const bundle = join(bundleDir, 'meso-agent.mjs');
  bundleAgentSync(bundle);
  expect(statSync(bundle).size).toBeGreaterThan(100_000);
  const app = new App();
  const stack = new Stack(app, 'Agents', { env: { account: '123456789012', region: 'eu-west-1' } });
  const meso = new MesoControlPlane(stack, 'ControlPlane', { prefix: 'meso' });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  new MesoAgentFleet(stack, 'Fleet', {
    controlPlane: meso,
    vpc,
    minCapacity: 2,
    maxCapacity: 6,
    attributes: { pool: 'batch' },
    agentBundlePath: bundle,
  });
  new MesoOnPremAgent(stack, 'Node7', { controlPlane: meso, agentId: 'rack1-node7' });
  new MesoOnPremAgent(stack, 'Node8', {
    controlPlane: meso,
    agentId: 'rack1-node8',
    trustAnchorArn: 'arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/abc',
  });
  // The deployable stack with a fleet in a VPC of its own.
  const meso2 = new MesoStack(app, 'WithFleet', { agentFleet: { agentBundlePath: bundle } });
  template = Template.fromStack(stack);
  withFleet = Template.fromStack(meso2);
}, SYNTH_TIMEOUT);

afterAll(() => {
  rmSync(bundleDir, { recursive: true, force: true });
});

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Effect: string };

describe('MesoAgentFleet', () => {
  it('is an Auto Scaling group of IMDSv2-only instances with the asked capacity', () => {
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '2', MaxSize: '6' });
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        InstanceType: 't4g.medium',
        MetadataOptions: Match.objectLike({ HttpTokens: 'required' }),
      }),
    });
  });

  it('keeps the instance role from tasks: IMDSv2 tokens only, and they die after one hop', () => {
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
      }),
    });
  });

  it('encrypts the root volume', () => {
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3' }) },
        ],
      }),
    });
  });

  it('reads the agent bundle object only, not the assets bucket', () => {
    const roleId = Object.keys(
      template.findResources('AWS::IAM::Role', {
        Properties: {
          AssumeRolePolicyDocument: Match.objectLike({
            Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })],
          }),
        },
      }),
    )[0]!;
    const inline = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(roleId),
    );
    const statements = inline.flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
    const actions = statements.flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]));
    expect(actions.filter((a) => a.startsWith('s3:'))).toEqual(['s3:GetObject']);
    const s3 = statements.find((st) => JSON.stringify(st.Action).includes('s3:'))!;
    expect(JSON.stringify(s3.Resource)).toMatch(/\/[0-9a-f]{64}\.mjs"/);
  });

  it('in a VPC the stack creates, logs all its traffic', () => {
    withFleet.resourceCountIs('AWS::EC2::VPC', 1);
    withFleet.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
  });

  it('installs the bundled agent at boot with `meso-agent install`, the instance id as agent id', () => {
    const lt = Object.values(template.findResources('AWS::EC2::LaunchTemplate'))[0] as {
      Properties: { LaunchTemplateData: { UserData: unknown } };
    };
    const userData = JSON.stringify(lt.Properties.LaunchTemplateData.UserData);
    expect(userData).toContain('dnf install -y nodejs22');
    expect(userData).toContain('/opt/meso-agent/meso-agent.mjs');
    expect(userData).toContain(
      'node-22 --optimize-for-size /opt/meso-agent/meso-agent.mjs install --queue-url ',
    );
    expect(userData).toContain('--agent-id \\"$INSTANCE_ID\\" --instance-arn \\"arn:');
    // Its own ARN, the tag its command queue must carry (lib/infra/cdk/fleet-identity.ts).
    expect(userData).toContain('{"Ref":"AWS::Partition"}');
    expect(userData).toContain(
      ":ec2:eu-west-1:123456789012:instance/$INSTANCE_ID\\\" --task-user 'nobody' --attributes 'pool:batch'",
    );
  });

  it("gives the instances the control plane's agent policy, read access to the bundle, and SSM", () => {
    const roles = template.findResources('AWS::IAM::Role', {
      Properties: {
        AssumeRolePolicyDocument: Match.objectLike({
          Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })],
        }),
      },
    });
    const role = Object.values(roles)[0] as { Properties: { ManagedPolicyArns: unknown[] } };
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain('AmazonSSMManagedInstanceCore');
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toMatch(/MesoAgentPolicy/);
  });
});

describe('MesoOnPremAgent', () => {
  function policyOf(agentId: string): Statement[] {
    const policies = template.findResources('AWS::IAM::ManagedPolicy', {
      Properties: { Description: Match.stringLikeRegexp(`Meso agent ${agentId} `) },
    });
    const p = Object.values(policies)[0] as { Properties: { PolicyDocument: { Statement: Statement[] } } };
    return p.Properties.PolicyDocument.Statement;
  }

  it('is scoped to its own queue and the agent calls', () => {
    const statements = policyOf('rack1-node7');
    expect(statements).toHaveLength(3);
    expect(statements.find((s) => s.Sid === 'DenyInsecureTransport')?.Effect).toBe('Deny');
    const own = statements.find((s) => s.Sid === 'OwnCommandQueue')!;
    expect(own.Action).toEqual([
      'sqs:CreateQueue',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
    ]);
    expect(JSON.stringify(own.Resource)).toContain(':meso-agent-rack1-node7.fifo');
    expect(JSON.stringify(own.Resource)).not.toContain('*');
    const send = statements.find((s) => s.Sid === 'SendAgentCalls')!;
    expect(send.Action).toEqual(['sqs:SendMessage', 'sqs:GetQueueUrl']);
    expect(JSON.stringify(send.Resource)).toMatch(/AgentCallsQueue/);
    // Without a trust anchor: a user (its access key is created outside the template).
    template.resourceCountIs('AWS::IAM::User', 1);
    template.resourceCountIs('AWS::IAM::AccessKey', 0);
  });

  it('with a trust anchor, is a role for IAM Roles Anywhere bound to the certificate CN', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sts:AssumeRole',
            Principal: { Service: 'rolesanywhere.amazonaws.com' },
            Condition: Match.objectLike({
              StringEquals: { 'aws:PrincipalTag/x509Subject/CN': 'rack1-node8' },
            }),
          }),
        ]),
      }),
    });
  });

  it('refuses an agent id that cannot name a queue', () => {
    const stack = new Stack(new App(), 'Bad');
    const meso = {
      prefix: 'meso',
      queues: { agentCalls: { queueArn: 'arn' } },
    } as unknown as MesoControlPlane;
    expect(() => new MesoOnPremAgent(stack, 'X', { controlPlane: meso, agentId: 'bad id' })).toThrow(
      /agent id/,
    );
    // The fleet's instance-id namespace, `<prefix>-agent-i-*`.
    expect(
      () => new MesoOnPremAgent(stack, 'Y', { controlPlane: meso, agentId: 'i-0123456789abcdef0' }),
    ).toThrow(/agent id/);
  });
});
