// The CDK app: `npx cdk synth` / `npx cdk deploy [-c prefix=meso-dev] [-c agents=2]`.
// cdk-nag's AWS Solutions and Serverless checks run on synthesis: an unacknowledged error fails it.
import { App } from 'aws-cdk-lib';
import { InstanceType } from 'aws-cdk-lib/aws-ec2';
import { DEFAULT_PREFIX } from '../lib/definition/tables-queues.ts';
import { addNagChecks } from '../lib/infra/cdk/nag-checks.ts';
import { MesoStack } from '../lib/infra/cdk/stack.ts';

const app = new App();
addNagChecks(app);
const context: unknown = app.node.tryGetContext('prefix');
if (context !== undefined && typeof context !== 'string') {
  throw new Error('context "prefix" must be a string (cdk deploy -c prefix=meso-dev)');
}
const prefix = context ?? DEFAULT_PREFIX;
// `-c agents=N [-c agentInstanceType=m7g.large]`: an agent fleet of N instances in this stack.
const agents = Number(app.node.tryGetContext('agents') ?? 0);
if (!Number.isInteger(agents) || agents < 0)
  throw new Error('context "agents" must be a whole number (cdk deploy -c agents=2)');
const agentInstanceType: unknown = app.node.tryGetContext('agentInstanceType');

new MesoStack(app, prefix === DEFAULT_PREFIX ? 'Meso' : `Meso-${prefix.replace(/_/g, '-')}`, {
  prefix,
  description: `Meso control plane (prefix ${prefix}): registry and allocator on Lambda + DynamoDB, SQS for every call`,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  ...(agents > 0
    ? {
        agentFleet: {
          minCapacity: agents,
          maxCapacity: agents,
          ...(typeof agentInstanceType === 'string'
            ? { instanceType: new InstanceType(agentInstanceType) }
            : {}),
        },
      }
    : {}),
});
