/**
 * Queue ownership as IAM enforces it: the policies of the synthesized template, evaluated by an
 * IAM policy simulator (`@cloud-copilot/iam-simulate`) for the requests a tenant could make. Each
 * framework and on-prem agent identity may touch only its own queue; no tenant identity reaches
 * the receive side of a control-plane queue; nothing is allowed without TLS.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_QUEUE_TAG } from '../../lib/definition/agent-runtime.ts';
import { dlqName, QUEUES, queueName } from '../../lib/definition/tables-queues.ts';
import { MesoOnPremAgent } from '../../lib/infra/cdk/agent-fleet.ts';
import { MesoFramework } from '../../lib/infra/cdk/framework.ts';
import { MesoStack } from '../../lib/infra/cdk/stack.ts';
import { frameworkQueueName } from '../../lib/sdk/calls.ts';

const SYNTH_TIMEOUT = 120_000;
const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const PREFIX = 'meso';

type Json = unknown;
type Resource = { Type: string; Properties: Record<string, Json> };
type PolicyDocument = { Version?: string; Statement: Json[] };
type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

let resources: Record<string, Resource>;

beforeAll(() => {
  const app = new App();
  const stack = new MesoStack(app, 'Meso', { env: { account: ACCOUNT, region: REGION } });
  const meso = stack.controlPlane;
  new MesoFramework(stack, 'FrameworkA', { controlPlane: meso, frameworkId: 'team-a' });
  new MesoFramework(stack, 'FrameworkB', { controlPlane: meso, frameworkId: 'team-b' });
  new MesoFramework(stack, 'FrameworkDotted', { controlPlane: meso, frameworkId: 'com.example:marathon' });
  new MesoOnPremAgent(stack, 'AgentX', { controlPlane: meso, agentId: 'rack1-node7' });
  new MesoOnPremAgent(stack, 'AgentY', { controlPlane: meso, agentId: 'rack1-node8' });
  // The id that used to name the control plane's own `<prefix>-agent-calls.fifo`.
  new MesoOnPremAgent(stack, 'AgentCalls', { controlPlane: meso, agentId: 'calls' });
  resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
}, SYNTH_TIMEOUT);

/** Resolves the intrinsics the policies use, for this account and region. */
function resolve(value: Json): Json {
  if (Array.isArray(value)) return value.map(resolve);
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, Json>;
  if ('Ref' in o) {
    const ref = o.Ref as string;
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': REGION,
      'AWS::AccountId': ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    if (ref in pseudo) return pseudo[ref];
    const r = resources[ref];
    if (r?.Type === 'AWS::SQS::Queue')
      return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${r.Properties.QueueName}`;
    return `ref:${ref}`;
  }
  if ('Fn::GetAtt' in o) {
    const [id, attr] = o['Fn::GetAtt'] as [string, string];
    const r = resources[id];
    if (r?.Type === 'AWS::SQS::Queue' && attr === 'Arn') return queueArn(r.Properties.QueueName as string);
    return `getatt:${id}.${attr}`;
  }
  if ('Fn::Join' in o) {
    const [sep, parts] = o['Fn::Join'] as [string, Json[]];
    return parts.map((p) => String(resolve(p))).join(sep);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolve(v)]));
}

function queueArn(name: string): string {
  return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
}

/** The managed policy whose description starts with `description`, resolved. */
function managedPolicy(description: RegExp): PolicyDocument {
  const found = Object.values(resources).filter(
    (r) => r.Type === 'AWS::IAM::ManagedPolicy' && description.test(String(r.Properties.Description)),
  );
  expect(found, String(description)).toHaveLength(1);
  return resolve(found[0]!.Properties.PolicyDocument) as PolicyDocument;
}

/** The queue policy (resource policy) of the control-plane queue named `name`, if any. */
function queuePolicy(name: string): PolicyDocument | undefined {
  const url = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`;
  const found = Object.values(resources).filter(
    (r) => r.Type === 'AWS::SQS::QueuePolicy' && (resolve(r.Properties.Queues) as string[]).includes(url),
  );
  return found.length === 0 ? undefined : (resolve(found[0]!.Properties.PolicyDocument) as PolicyDocument);
}

interface Caller {
  readonly principal: string;
  readonly policy: PolicyDocument;
  /** Request context its credentials bring (an instance role's `ec2:SourceInstanceARN`). */
  readonly context?: Record<string, string>;
}

async function decide(
  caller: Caller,
  action: string,
  queue: string,
  tls = true,
  context: Record<string, string | string[]> = {},
): Promise<Decision> {
  const resourcePolicy = queuePolicy(queue);
  const result = await runSimulation(
    {
      request: {
        principal: caller.principal,
        action,
        resource: { resource: queueArn(queue), accountId: ACCOUNT },
        contextVariables: { 'aws:SecureTransport': tls ? 'true' : 'false', ...caller.context, ...context },
      },
      identityPolicies: [{ name: 'policy', policy: caller.policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy } : {}),
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(JSON.stringify(result.errors));
  return result.overallResult as Decision;
}

const user = (name: string) => `arn:aws:iam::${ACCOUNT}:user/${name}`;
const frameworkA = (): Caller => ({
  principal: user('team-a'),
  policy: managedPolicy(/^Meso framework meso-fw-team-a\.fifo /),
});
const agentX = (): Caller => ({
  principal: user('rack1-node7'),
  policy: managedPolicy(/^Meso agent rack1-node7 /),
});
const agentCalls = (): Caller => ({ principal: user('calls'), policy: managedPolicy(/^Meso agent calls /) });
const INSTANCE_A = 'i-0123456789abcdef0';
const INSTANCE_B = 'i-0fedcba9876543210';
const instanceArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`;
/** A fleet instance: the shared role, with the instance's own ARN in every request it signs. */
const fleetInstance = (id = INSTANCE_A): Caller => ({
  principal: `arn:aws:sts::${ACCOUNT}:assumed-role/MesoFleetRole/${id}`,
  policy: managedPolicy(/^Meso agent fleet /),
  context: { 'ec2:SourceInstanceARN': instanceArn(id) },
});
/** The request context of a queue tagged as `owner`'s (or untagged). */
const taggedAs = (owner?: string): Record<string, string> =>
  owner ? { [`aws:ResourceTag/${INSTANCE_QUEUE_TAG}`]: instanceArn(owner) } : {};
/** The request context of a CreateQueue / TagQueue with `tags`. */
const tagging = (tags: Record<string, string>): Record<string, string | string[]> => ({
  ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
  'aws:TagKeys': Object.keys(tags),
});

const cp = (key: keyof typeof QUEUES) => queueName(PREFIX, QUEUES[key]);
const cpDlq = (key: keyof typeof QUEUES) => dlqName(PREFIX, QUEUES[key]);
const fwQueue = (id: string) => frameworkQueueName(PREFIX, id);
const agentQueue = (id: string) => `${PREFIX}-agent-${id}.fifo`;
const CONSUME = ['sqs:ReceiveMessage', 'sqs:DeleteMessage'];

/** The inline policies of the role of the control-plane function `name`, as one document. */
function functionRolePolicy(name: string): PolicyDocument {
  const fn = Object.values(resources).find(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.FunctionName === `${PREFIX}-${name}`,
  )!;
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const statements = Object.values(resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId),
    )
    .flatMap((r) => (resolve(r.Properties.PolicyDocument) as PolicyDocument).Statement);
  return { Version: '2012-10-17', Statement: statements };
}

describe('queue ownership, by policy evaluation of the synthesized template', {
  timeout: SYNTH_TIMEOUT,
}, () => {
  describe('a framework', () => {
    it('creates, receives from, deletes messages of and deletes its own queue', async () => {
      for (const action of [...CONSUME, 'sqs:CreateQueue', 'sqs:DeleteQueue', 'sqs:GetQueueAttributes']) {
        expect(await decide(frameworkA(), action, fwQueue('team-a')), action).toBe('Allowed');
      }
    });

    it('sends to scheduler-calls', async () => {
      expect(await decide(frameworkA(), 'sqs:SendMessage', cp('schedulerCalls'))).toBe('Allowed');
    });

    it("framework A cannot receive from, delete from, delete, create or send to B's queue", async () => {
      const actions = [
        ...CONSUME,
        'sqs:DeleteQueue',
        'sqs:CreateQueue',
        'sqs:GetQueueAttributes',
        'sqs:SendMessage',
      ];
      for (const action of actions) {
        expect(await decide(frameworkA(), action, fwQueue('team-b')), action).not.toBe('Allowed');
      }
    });

    it('cannot consume any control-plane queue or its dead-letter queue, nor send agent calls', async () => {
      for (const key of Object.keys(QUEUES) as (keyof typeof QUEUES)[]) {
        for (const action of [...CONSUME, 'sqs:PurgeQueue', 'sqs:DeleteQueue']) {
          expect(await decide(frameworkA(), action, cp(key)), `${action} ${key}`).not.toBe('Allowed');
          expect(await decide(frameworkA(), action, cpDlq(key)), `${action} ${key} dlq`).not.toBe('Allowed');
        }
      }
      expect(await decide(frameworkA(), 'sqs:SendMessage', cp('agentCalls'))).not.toBe('Allowed');
      expect(await decide(frameworkA(), 'sqs:ReceiveMessage', agentQueue('rack1-node7'))).not.toBe('Allowed');
    });

    it('whose id SQS cannot carry owns the queue the SDK names for it, and no other', async () => {
      const dotted: Caller = {
        principal: user('marathon'),
        policy: managedPolicy(/^Meso framework meso-fw-com_example_marathon-/),
      };
      expect(fwQueue('com.example:marathon')).not.toBe('meso-fw-com.example:marathon.fifo');
      expect(await decide(dotted, 'sqs:ReceiveMessage', fwQueue('com.example:marathon'))).toBe('Allowed');
      expect(await decide(dotted, 'sqs:ReceiveMessage', fwQueue('team-a'))).not.toBe('Allowed');
    });

    it('is refused everything without TLS, its own queue included', async () => {
      expect(await decide(frameworkA(), 'sqs:ReceiveMessage', fwQueue('team-a'), false)).toBe(
        'ExplicitlyDenied',
      );
      expect(await decide(frameworkA(), 'sqs:SendMessage', cp('schedulerCalls'), false)).toBe(
        'ExplicitlyDenied',
      );
    });
  });

  describe('an agent', () => {
    it('sends to agent-calls and consumes its own queue', async () => {
      expect(await decide(agentX(), 'sqs:SendMessage', cp('agentCalls'))).toBe('Allowed');
      for (const action of [...CONSUME, 'sqs:CreateQueue']) {
        expect(await decide(agentX(), action, agentQueue('rack1-node7')), action).toBe('Allowed');
      }
    });

    it('cannot receive from or delete messages of agent-calls or its dead-letter queue', async () => {
      for (const action of [...CONSUME, 'sqs:PurgeQueue']) {
        expect(await decide(agentX(), action, cp('agentCalls')), action).not.toBe('Allowed');
        expect(await decide(agentX(), action, cpDlq('agentCalls')), action).not.toBe('Allowed');
      }
    });

    it("agent X cannot receive from, delete from or send to agent Y's queue, nor a fleet instance's", async () => {
      for (const action of [...CONSUME, 'sqs:CreateQueue', 'sqs:SendMessage']) {
        expect(await decide(agentX(), action, agentQueue('rack1-node8')), action).not.toBe('Allowed');
        expect(await decide(agentX(), action, agentQueue('i-0123456789abcdef0')), action).not.toBe('Allowed');
      }
    });

    it("an agent with the id 'calls' gets its own queue, not the control plane's agent-calls", async () => {
      expect(await decide(agentCalls(), 'sqs:ReceiveMessage', agentQueue('calls'))).toBe('Allowed');
      for (const action of CONSUME) {
        expect(await decide(agentCalls(), action, cp('agentCalls')), action).not.toBe('Allowed');
      }
    });

    it('is refused the agent calls without TLS (the queue policy refuses it too)', async () => {
      expect(await decide(agentX(), 'sqs:SendMessage', cp('agentCalls'), false)).toBe('ExplicitlyDenied');
      const anyone: Caller = {
        principal: user('admin'),
        policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sqs:*', Resource: '*' }] },
      };
      expect(await decide(anyone, 'sqs:SendMessage', cp('agentCalls'), false)).toBe('ExplicitlyDenied');
      expect(await decide(anyone, 'sqs:SendMessage', cp('agentCalls'), true)).toBe('Allowed');
    });
  });

  describe('the control plane', () => {
    it("sends to frameworks' and agents' queues but never reads them", async () => {
      const registry: Caller = {
        principal: `arn:aws:sts::${ACCOUNT}:assumed-role/RegistryRole/meso-registry`,
        policy: functionRolePolicy('registry'),
      };
      for (const queue of [fwQueue('team-a'), agentQueue('rack1-node7'), agentQueue('i-0123456789abcdef0')]) {
        expect(await decide(registry, 'sqs:SendMessage', queue), queue).toBe('Allowed');
        expect(await decide(registry, 'sqs:ReceiveMessage', queue), queue).not.toBe('Allowed');
      }
      expect(await decide(registry, 'sqs:ReceiveMessage', cp('agentCalls'))).toBe('Allowed');
      // Not the queue of another deployment that shares the account.
      expect(await decide(registry, 'sqs:SendMessage', 'meso-staging-cp-agent-calls.fifo')).not.toBe(
        'Allowed',
      );
    });
  });

  describe("the fleet's instances (MesoAgentPolicy): one role, each instance its own queue by tag", () => {
    const own = agentQueue(INSTANCE_A);
    const other = agentQueue(INSTANCE_B);

    it('send to agent-calls, create their queue tagged with their own ARN, and consume it', async () => {
      expect(await decide(fleetInstance(), 'sqs:SendMessage', cp('agentCalls'))).toBe('Allowed');
      const ownTag = tagging({ [INSTANCE_QUEUE_TAG]: instanceArn(INSTANCE_A) });
      expect(await decide(fleetInstance(), 'sqs:CreateQueue', own, true, ownTag)).toBe('Allowed');
      expect(await decide(fleetInstance(), 'sqs:TagQueue', own, true, ownTag)).toBe('Allowed');
      // Again after a restart: the queue is tagged as its own already.
      expect(
        await decide(fleetInstance(), 'sqs:TagQueue', own, true, { ...ownTag, ...taggedAs(INSTANCE_A) }),
      ).toBe('Allowed');
      for (const action of [...CONSUME, 'sqs:GetQueueUrl']) {
        expect(await decide(fleetInstance(), action, own, true, taggedAs(INSTANCE_A)), action).toBe(
          'Allowed',
        );
      }
    });

    it("instance A cannot receive from, delete from or look up instance B's queue", async () => {
      for (const action of [...CONSUME, 'sqs:GetQueueUrl']) {
        expect(await decide(fleetInstance(), action, other, true, taggedAs(INSTANCE_B)), action).not.toBe(
          'Allowed',
        );
        // Nor a queue no instance has tagged.
        expect(await decide(fleetInstance(), action, other, true, taggedAs()), action).not.toBe('Allowed');
      }
      // B itself can.
      expect(
        await decide(fleetInstance(INSTANCE_B), 'sqs:ReceiveMessage', other, true, taggedAs(INSTANCE_B)),
      ).toBe('Allowed');
    });

    it("instance A cannot tag a queue as B's, re-tag B's queue as its own, or untag it", async () => {
      const asB = tagging({ [INSTANCE_QUEUE_TAG]: instanceArn(INSTANCE_B) });
      const asA = tagging({ [INSTANCE_QUEUE_TAG]: instanceArn(INSTANCE_A) });
      expect(await decide(fleetInstance(), 'sqs:CreateQueue', own, true, asB)).not.toBe('Allowed');
      expect(await decide(fleetInstance(), 'sqs:CreateQueue', own, true)).not.toBe('Allowed');
      expect(
        await decide(
          fleetInstance(),
          'sqs:CreateQueue',
          own,
          true,
          tagging({ ...{ [INSTANCE_QUEUE_TAG]: instanceArn(INSTANCE_A) }, other: 'x' }),
        ),
      ).not.toBe('Allowed');
      expect(
        await decide(fleetInstance(), 'sqs:TagQueue', other, true, { ...asA, ...taggedAs(INSTANCE_B) }),
      ).not.toBe('Allowed');
      expect(
        await decide(fleetInstance(), 'sqs:UntagQueue', other, true, {
          ...taggedAs(INSTANCE_B),
          'aws:TagKeys': [INSTANCE_QUEUE_TAG],
        }),
      ).not.toBe('Allowed');
    });

    it('without its instance ARN in the request (credentials taken off the instance), nothing of the queues', async () => {
      const offInstance: Caller = { ...fleetInstance(), context: {} };
      for (const action of [...CONSUME, 'sqs:GetQueueUrl']) {
        expect(await decide(offInstance, action, own, true, taggedAs(INSTANCE_A)), action).not.toBe(
          'Allowed',
        );
      }
    });

    it("cannot consume agent-calls, an on-prem agent's queue or a framework's queue", async () => {
      for (const action of CONSUME) {
        expect(await decide(fleetInstance(), action, cp('agentCalls')), action).not.toBe('Allowed');
        expect(await decide(fleetInstance(), action, cpDlq('agentCalls')), action).not.toBe('Allowed');
        expect(await decide(fleetInstance(), action, agentQueue('rack1-node7')), action).not.toBe('Allowed');
        expect(await decide(fleetInstance(), action, fwQueue('team-a')), action).not.toBe('Allowed');
      }
    });

    it('what IAM cannot express: a queue not yet created may be created, tagged as itself, under another instance id', async () => {
      // The queue name is not compared with the instance id (no policy variable is the id alone):
      // an instance that guesses a future instance's id can take its queue name first
      // (docs/security.md, In AWS). Recorded here so a change to it is seen.
      const asA = tagging({ [INSTANCE_QUEUE_TAG]: instanceArn(INSTANCE_A) });
      expect(
        await decide(fleetInstance(), 'sqs:CreateQueue', agentQueue('i-0future000000000'), true, asA),
      ).toBe('Allowed');
    });
  });
});
