/**
 * The operator API in the CDK stack: a function behind a function URL that takes IAM auth only,
 * with the dashboard inlined, the CloudWatch dashboard of the control plane's figures, alarms on
 * slow cycles, slow launches and API failures, and the URL as a stack output.
 */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { MesoStack } from '../../lib/infra/cdk/stack.ts';

let template: Template;
let json: string;

beforeAll(() => {
  const app = new App();
  const stack = new MesoStack(app, 'Meso');
  const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
  stack.operatorApi.grantInvoke(operator);
  template = Template.fromStack(stack);
  json = JSON.stringify(template.toJSON());
});

describe('MesoOperatorApi', () => {
  it('is a function behind a function URL with IAM auth, its URL an output', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'meso-operator-api',
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
    });
    template.resourceCountIs('AWS::Lambda::Url', 1);
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
    expect(Object.keys(template.findOutputs('OperatorApiUrl'))).toHaveLength(1);
    // No resource policy opens the URL to everyone.
    expect(template.findResources('AWS::Lambda::Permission', { Properties: { Principal: '*' } })).toEqual({});
  });

  it('grants lambda:InvokeFunctionUrl to the operators it is told of, nobody else', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'lambda:InvokeFunctionUrl', Effect: 'Allow' }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp('^Operator') }],
    });
  });

  it('has a CloudWatch dashboard of utilisation, cycles, launches, offers, rejections and dead letters', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    for (const metric of [
      'AgentUtilisation',
      'RoleAllocation',
      'CycleDuration',
      'LaunchLatency',
      'OffersOutstanding',
      'RejectedCalls',
      'ApproximateNumberOfMessagesVisible',
    ])
      expect(json).toContain(metric);
  });

  it('alarms on slow cycles, slow launches and failed API calls', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Record<string, unknown>,
    );
    // Percentile alarms carry their metric in `Metrics` rather than at the top level.
    const on = (name: string) => alarms.filter((a) => JSON.stringify(a).includes(`"${name}"`));
    expect(on('CycleDuration')).toHaveLength(1);
    expect(on('LaunchLatency')).toHaveLength(1);
    expect(alarms.filter((a) => a.MetricName === 'Errors')).toHaveLength(1);
    const cycle = JSON.stringify(on('CycleDuration')[0]);
    expect(cycle).toContain('"Namespace":"Meso"');
    expect(cycle).toContain('{"Name":"service","Value":"meso-allocator"}');
    expect(on('CycleDuration')[0]).toMatchObject({
      Threshold: 10_000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });
});
