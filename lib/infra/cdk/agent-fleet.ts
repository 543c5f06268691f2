/**
 * Agents for a Meso control plane, as CDK constructs:
 *
 * - **MesoAgentFleet**: an Auto Scaling group of EC2 instances that join the cluster at boot.
 *   The agent is bundled by esbuild into one file (the same `dist/meso-agent.mjs` as
 *   `npm run build:agent`), shipped as an S3 asset, and installed by the instances' user data
 *   with `meso-agent install` — the same command an operator runs on-prem. Each instance's agent
 *   id is its instance id; its EC2 type and zone become attributes.
 * - **MesoOnPremAgent**: the IAM identity an on-prem agent needs, scoped to its own command
 *   queue: send to `agent-calls`, own `<prefix>-agent-<agentId>.fifo` and nothing else. Ids
 *   starting `i-` are the fleet's (its instances own `<prefix>-agent-i-*`). It is a
 *   role for IAM Roles Anywhere (the node presents a certificate whose CN is the agent id), or an
 *   IAM user whose access key the operator creates (never in the template).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Arn, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { bundleAgentSync } from '../../build/agent-bundle.ts';
import type { MesoControlPlane } from './control-plane.ts';
import { acknowledge } from './nag.ts';
import { agentStatements } from './queue-access.ts';

/** Agent ids name the agent's queue: letters, digits, `-` and `_`, at most 64. */
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Ids the fleet's instances use (EC2 instance ids): an on-prem agent may not take one. */
const FLEET_AGENT_ID = /^i-/;

/** The root device of Amazon Linux 2023, and its size (GB): the OS, Node.js, sandboxes. */
const ROOT_DEVICE = '/dev/xvda';
const ROOT_VOLUME_GB = 20;

/** `<prefix>-agent-<agentId>.fifo`'s ARN in the control plane's account and region. */
export function agentQueueArn(scope: Construct, prefix: string, agentId: string): string {
  return Arn.format({ service: 'sqs', resource: `${prefix}-agent-${agentId}.fifo` }, Stack.of(scope));
}

export interface MesoAgentFleetProps {
  /** The cluster the agents join. */
  readonly controlPlane: MesoControlPlane;
  /** Where the instances run. */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the instances; they need a route to SQS (a NAT gateway or an SQS VPC endpoint).
   *
   * @default - the VPC's private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * @default t4g.medium (Graviton: the cheapest capacity per vCPU)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Amazon Linux 2023 or another dnf-based image with a `nodejs22` package.
   *
   * @default - the latest Amazon Linux 2023 for the instance type's architecture
   */
  readonly machineImage?: ec2.IMachineImage;
  /** @default 1 */
  readonly minCapacity?: number;
  /** @default minCapacity */
  readonly maxCapacity?: number;
  /** @default - minCapacity (no fixed desired capacity) */
  readonly desiredCapacity?: number;
  /**
   * Attributes every agent of the fleet registers with, besides `ec2.instance-type` and
   * `ec2.availability-zone`, which each agent reads from its instance.
   *
   * @default - none
   */
  readonly attributes?: Readonly<Record<string, string>>;
  /**
   * Resources to offer, Mesos syntax (`cpus:2;mem:3500`).
   *
   * @default - detected on each instance
   */
  readonly resources?: string;
  /**
   * The user tasks run as.
   *
   * @default 'nobody'
   */
  readonly taskUser?: string;
  /**
   * A prebuilt agent bundle (`npm run build:agent`).
   *
   * @default - the agent is bundled at synthesis
   */
  readonly agentBundlePath?: string;
  /**
   * Attach AmazonSSMManagedInstanceCore, so operators reach the instances with Session Manager
   * (no SSH, no inbound rule).
   *
   * @default true
   */
  readonly ssmAccess?: boolean;
}

/** Joins Attributes as `name:value;…`, refusing characters the syntax cannot carry. */
function attributeSpec(attrs: Readonly<Record<string, string>>): string {
  return Object.entries(attrs)
    .map(([k, v]) => {
      if (/[;:'\s]/.test(k) || /[;'\n]/.test(v))
        throw new Error(`MesoAgentFleet: attribute ${k} cannot be passed`);
      return `${k}:${v}`;
    })
    .join(';');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * An Auto Scaling group of Meso agents.
 *
 * @example
 * const meso = new MesoControlPlane(stack, 'ControlPlane');
 * const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 });
 * new MesoAgentFleet(stack, 'Agents', { controlPlane: meso, vpc, minCapacity: 2, maxCapacity: 10 });
 */
export class MesoAgentFleet extends Construct {
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly role: iam.Role;
  readonly securityGroup: ec2.SecurityGroup;
  readonly launchTemplate: ec2.LaunchTemplate;
  /** The bundled agent the instances download. */
  readonly bundle: s3assets.Asset;

  constructor(scope: Construct, id: string, props: MesoAgentFleetProps) {
    super(scope, id);
    const { controlPlane } = props;
    const instanceType =
      props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM);
    const minCapacity = props.minCapacity ?? 1;
    const maxCapacity = props.maxCapacity ?? minCapacity;
    if (minCapacity < 0 || maxCapacity < minCapacity) {
      throw new Error(`MesoAgentFleet: capacity ${minCapacity}..${maxCapacity} is not a range`);
    }

    let bundlePath = props.agentBundlePath;
    if (!bundlePath) {
      bundlePath = join(mkdtempSync(join(tmpdir(), 'meso-agent-bundle-')), 'meso-agent.mjs');
      bundleAgentSync(bundlePath);
    }
    this.bundle = new s3assets.Asset(this, 'AgentBundle', { path: bundlePath });

    this.role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Meso agents (${controlPlane.prefix}): agent calls and their own command queues`,
    });
    // Every instance names its queue after its own instance id, unknown here: the fleet's role
    // covers `<prefix>-agent-i-*` (on-prem agents get one queue each, see MesoOnPremAgent).
    this.role.addManagedPolicy(controlPlane.agentPolicy);
    // The bundle's one object, not the whole assets bucket (`Asset.grantRead` grants the bucket).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [this.bundle.bucket.arnForObjects(this.bundle.s3ObjectKey)],
      }),
    );
    if (this.bundle.bucket.encryptionKey) this.bundle.bucket.encryptionKey.grantDecrypt(this.role);
    if (props.ssmAccess !== false) {
      this.role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));
      acknowledge(
        this.role,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
        'Session Manager access instead of SSH and an inbound port; AWS keeps this policy current with the SSM agent (ssmAccess: false removes it)',
      );
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Meso agents: outbound only (add ingress for the ports your tasks serve)',
      allowAllOutbound: true,
    });

    const region = Stack.of(this).region;
    const install = [
      'node-22',
      '--optimize-for-size',
      '/opt/meso-agent/meso-agent.mjs',
      'install',
      '--queue-url',
      controlPlane.queues.agentCalls.queueUrl,
      '--region',
      region,
      '--prefix',
      controlPlane.prefix,
      '--agent-id',
      '"$INSTANCE_ID"',
      // Its own ARN: the tag its command queue needs (fleet-identity.ts).
      '--instance-arn',
      `"arn:${Stack.of(this).partition}:ec2:${region}:${Stack.of(this).account}:instance/$INSTANCE_ID"`,
      '--task-user',
      shellQuote(props.taskUser ?? 'nobody'),
      ...(props.resources ? ['--resources', shellQuote(props.resources)] : []),
      ...(props.attributes && Object.keys(props.attributes).length > 0
        ? ['--attributes', shellQuote(attributeSpec(props.attributes))]
        : []),
    ];
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      'set -euo pipefail',
      // Node.js 22 (AL2023 names it node-22) and the agent bundle.
      'dnf install -y nodejs22',
      'mkdir -p /opt/meso-agent',
      `aws s3 cp ${this.bundle.s3ObjectUrl} /opt/meso-agent/meso-agent.mjs --region ${region}`,
      // The instance id (IMDSv2) is the agent id, so operators see instances in `meso agents`.
      'TOKEN=$(curl -sS -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")',
      'INSTANCE_ID=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)',
      install.join(' '),
    );

    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType,
      machineImage:
        props.machineImage ??
        ec2.MachineImage.latestAmazonLinux2023({
          cpuType:
            instanceType.architecture === ec2.InstanceArchitecture.ARM_64
              ? ec2.AmazonLinuxCpuType.ARM_64
              : ec2.AmazonLinuxCpuType.X86_64,
        }),
      userData,
      role: this.role,
      securityGroup: this.securityGroup,
      // IMDSv2 only, and its token reply dies after one hop: a container or a task in its own
      // network namespace (one more hop) cannot get a token, so not the instance role either.
      requireImdsv2: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: ROOT_DEVICE,
          volume: ec2.BlockDeviceVolume.ebs(ROOT_VOLUME_GB, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate: this.launchTemplate,
      minCapacity,
      maxCapacity,
      ...(props.desiredCapacity !== undefined ? { desiredCapacity: props.desiredCapacity } : {}),
    });
    acknowledge(
      this.autoScalingGroup,
      'AwsSolutions-AS3',
      "Each instance's agent registers with and heartbeats to the control plane, which reports agents joining and leaving (meso agents); scaling activity is in the group's history",
    );
  }
}

export interface MesoOnPremAgentProps {
  readonly controlPlane: MesoControlPlane;
  /** The id the agent runs with (`meso-agent install --agent-id <id>`); names its queue. */
  readonly agentId: string;
  /**
   * An IAM Roles Anywhere trust anchor: the node gets a role it assumes with a certificate whose
   * subject CN is the agent id (configure `credential_process` with `aws_signing_helper` in the
   * profile named by `meso-agent install --profile`).
   *
   * @default - no role; an IAM user instead
   */
  readonly trustAnchorArn?: string;
}

/**
 * The identity of one on-prem agent, allowed nothing but its own queue and the agent calls.
 *
 * @example
 * new MesoOnPremAgent(stack, 'Rack1Node7', { controlPlane: meso, agentId: 'rack1-node7' });
 * // then: aws iam create-access-key --user-name <UserName output>; put it in the node's profile
 */
export class MesoOnPremAgent extends Construct {
  readonly policy: iam.ManagedPolicy;
  /** With a trust anchor. */
  readonly role?: iam.Role;
  /** Without one. */
  readonly user?: iam.User;

  constructor(scope: Construct, id: string, props: MesoOnPremAgentProps) {
    super(scope, id);
    const { controlPlane, agentId } = props;
    const queueName = `${controlPlane.prefix}-agent-${agentId}.fifo`;
    if (!AGENT_ID.test(agentId) || FLEET_AGENT_ID.test(agentId) || queueName.length > 80) {
      throw new Error(
        `MesoOnPremAgent: agent id ${JSON.stringify(agentId)} must be 1-64 letters, digits, '-' or '_', not start with 'i-' (the fleet's instance ids), and make a queue name of at most 80 characters`,
      );
    }
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: `Meso agent ${agentId} (${controlPlane.prefix}): agent calls and its own queue only`,
      statements: agentStatements(controlPlane.queues.agentCalls.queueArn, {
        sid: 'OwnCommandQueue',
        arn: agentQueueArn(this, controlPlane.prefix, agentId),
      }),
    });
    if (props.trustAnchorArn) {
      const principal = new iam.ServicePrincipal('rolesanywhere.amazonaws.com').withConditions({
        StringEquals: { 'aws:PrincipalTag/x509Subject/CN': agentId },
        ArnEquals: { 'aws:SourceArn': props.trustAnchorArn },
      });
      this.role = new iam.Role(this, 'Role', {
        assumedBy: principal,
        description: `Meso agent ${agentId}, through IAM Roles Anywhere`,
        managedPolicies: [this.policy],
      });
      this.role.assumeRolePolicy?.addStatements(
        new iam.PolicyStatement({
          actions: ['sts:TagSession', 'sts:SetSourceIdentity'],
          principals: [principal],
        }),
      );
    } else {
      this.user = new iam.User(this, 'User', { managedPolicies: [this.policy] });
    }
  }
}
