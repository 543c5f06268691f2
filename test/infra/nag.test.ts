/**
 * cdk-nag's AWS Solutions and Serverless packs on a synthesized stack with everything in it: the
 * control plane, an agent fleet in a new VPC, a framework identity and both kinds of on-prem agent.
 * No finding may be left unacknowledged; and the packs really run (a new wildcard is an error).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MesoOnPremAgent } from '../../lib/infra/cdk/agent-fleet.ts';
import { MesoFramework } from '../../lib/infra/cdk/framework.ts';
import { nagPacks } from '../../lib/infra/cdk/nag-checks.ts';
import { MesoStack } from '../../lib/infra/cdk/stack.ts';

const SYNTH_TIMEOUT = 120_000;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meso-nag-test-'));
  // The fleet ships the bundle as an asset; its content does not matter to the checks.
  writeFileSync(join(dir, 'meso-agent.mjs'), 'export {};\n');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Every unacknowledged finding, as `rule at construct path`. A warning counts too: a pack with
 * any finding fails the synthesis.
 */
function nagErrors(build: (stack: MesoStack) => void = () => {}): string[] {
  const app = new App();
  const stack = new MesoStack(app, 'Meso', {
    env: { account: '123456789012', region: 'eu-west-1' },
    agentFleet: { agentBundlePath: join(dir, 'meso-agent.mjs'), minCapacity: 2 },
  });
  const meso = stack.controlPlane;
  new MesoFramework(stack, 'Marathon', { controlPlane: meso, frameworkId: 'marathon' });
  new MesoOnPremAgent(stack, 'Node7', { controlPlane: meso, agentId: 'rack1-node7' });
  new MesoOnPremAgent(stack, 'Node8', {
    controlPlane: meso,
    agentId: 'rack1-node8',
    trustAnchorArn: 'arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/abc',
  });
  build(stack);
  return nagPacks(app).flatMap((pack) =>
    pack
      .validateScope(stack)
      .violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`)),
  );
}

describe('cdk-nag', { timeout: SYNTH_TIMEOUT }, () => {
  it('leaves no error or warning unacknowledged on the whole stack', () => {
    expect(nagErrors()).toEqual([]);
  });

  it('reports a new wildcard grant as an error', () => {
    const errors = nagErrors((stack) => {
      stack.controlPlane.functions.registry.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['sqs:ReceiveMessage'], resources: ['*'] }),
      );
    });
    expect(errors).toEqual([
      expect.stringMatching(/^AwsSolutions-IAM5\[Resource::\*\] at Meso\/ControlPlane\/RegistryRole\//),
    ]);
  });
});
