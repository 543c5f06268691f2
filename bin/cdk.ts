// The CDK app: `npx cdk synth` / `npx cdk deploy [-c prefix=meso-dev]`.
import { App } from 'aws-cdk-lib';
import { MesoStack } from '../lib/infra/cdk/stack.ts';
import { DEFAULT_PREFIX } from '../lib/infra/definition.ts';

const app = new App();
const context: unknown = app.node.tryGetContext('prefix');
if (context !== undefined && typeof context !== 'string') {
  throw new Error('context "prefix" must be a string (cdk deploy -c prefix=meso-dev)');
}
const prefix = context ?? DEFAULT_PREFIX;

new MesoStack(app, prefix === DEFAULT_PREFIX ? 'Meso' : `Meso-${prefix.replace(/_/g, '-')}`, {
  prefix,
  description: `Meso control plane (prefix ${prefix}): registry and allocator on Lambda + DynamoDB, SQS for every call`,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
