/**
 * The real call handlers (`handleSchedulerCall`, `handleAgentCall`) over the in-memory store,
 * driven by thousands of hostile messages from an identity that is not the victim's. Whatever
 * arrives: the handler returns (a throw would be retried, then dead-lettered, blocking the FIFO
 * group meanwhile), the victim's framework, agent and tasks are unchanged, nothing is sent to the
 * victim's queues, and a message the parser refuses changes nothing but the rejection counters.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { handleAgentCall } from '../../lib/control/agent-calls.ts';
import { idCountKey } from '../../lib/control/id-quota.ts';
import { ownQueueUrlProblem, rejectedCounterKey } from '../../lib/control/reject.ts';
import { handleSchedulerCall } from '../../lib/control/scheduler-calls.ts';
import { aclsFromJson } from '../../lib/core/acl.ts';
import { parse } from '../../lib/core/resources.ts';
import type { Item } from '../../lib/ports/store.ts';
import { AgentCallSchema, parseMessage, SchedulerCallSchema } from '../../lib/protocol/index.ts';
import {
  agentQueue,
  fwQueue,
  putAgent,
  putFramework,
  putTask,
  type TestControl,
  testControl,
} from '../unit/control/helpers.ts';
import {
  AGENT_TEMPLATES,
  ATTACKER_ACLS,
  ATTACKER_FRAMEWORK,
  HOARDER,
  handMade,
  junk,
  mutatedCall,
  OTHER_TENANTS_QUEUES,
  refusedCases,
  SCHEDULER_TEMPLATES,
  VICTIM,
} from './hostile.ts';

const ATTACKER = 'attacker';
const SCHED_TYPES = [
  'SUBSCRIBE',
  'TEARDOWN',
  'ACCEPT',
  'DECLINE',
  'REVIVE',
  'SUPPRESS',
  'KILL',
  'ACKNOWLEDGE',
  'RECONCILE',
  'HEARTBEAT',
  'READ_LOGS',
];
const AGENT_TYPES = ['REGISTER', 'HEARTBEAT', 'STATUS_UPDATE', 'LATEST_STATE', 'LOGS'];

type Tables = Map<string, Map<string, Item>>;
let t: TestControl;
let initial: Tables;
let seq = 0;

async function setup(config: Parameters<typeof testControl>[0] = {}): Promise<void> {
  t = testControl(config);
  await putFramework(t, VICTIM.framework, { principal: 'victim', roles: ['*', 'eng'] });
  // The attacker's own framework: valid calls in its own name may name the victim's ids.
  await putFramework(t, ATTACKER_FRAMEWORK, { principal: ATTACKER });
  await putAgent(t, VICTIM.agent, {
    principal: 'victim-agent',
    offers: {
      [VICTIM.offer]: {
        offerId: VICTIM.offer,
        frameworkId: VICTIM.framework,
        resources: parse('cpus:2;mem:512'),
        expiresAt: t.now + 60_000,
      },
    },
  });
  await putTask(t, VICTIM.framework, VICTIM.task, VICTIM.agent);
  initial = structuredClone(t.store.tables) as Tables;
}

function reset(): void {
  t.store.tables.clear();
  for (const [k, v] of structuredClone(initial)) t.store.tables.set(k as never, v);
  t.bus.clear();
}

const victimState = async () => ({
  framework: await t.store.get('frameworks', { frameworkId: VICTIM.framework }),
  agent: await t.store.get('agents', { agentId: VICTIM.agent }),
  tasks: await t.store.query('tasks', { name: 'frameworkId', value: VICTIM.framework }),
});
const withoutCounters = (tables: Tables) =>
  [...tables]
    .map(([name, rows]) => [name, [...rows].filter(([k]) => !k.startsWith('rejected#'))] as const)
    .filter(([, rows]) => rows.length > 0);

/** Runs one message from the attacker and checks every invariant; returns what went wrong, if anything. */
async function attack(queue: 'scheduler' | 'agent', body: string): Promise<void> {
  reset();
  const before = await victimState();
  const record = {
    messageId: `m${++seq}`,
    body,
    senderId: ATTACKER,
    receiveCount: 1,
    ...(queue === 'agent' ? { source: 'meso-agent-calls.fifo' } : {}),
  };
  // Not retried: the handler returns rather than throws.
  await (queue === 'scheduler' ? handleSchedulerCall : handleAgentCall)(t.deps, record);
  expect(await victimState()).toEqual(before);
  expect(t.bus.to(fwQueue(VICTIM.framework))).toEqual([]);
  expect(t.bus.to(agentQueue(VICTIM.agent))).toEqual([]);
  // No chunk of anyone's task output went anywhere.
  expect(t.bus.sent.filter((s) => s.body.type === 'LOGS' && 'data' in s.body)).toEqual([]);
  const parsed =
    queue === 'scheduler'
      ? parseMessage(SchedulerCallSchema, body, SCHED_TYPES)
      : parseMessage(AgentCallSchema, body, AGENT_TYPES);
  if (!parsed.ok) {
    // Refused by the parser: only the rejection counters changed; at most an ERROR went back.
    expect(withoutCounters(t.store.tables as Tables)).toEqual(withoutCounters(initial));
    expect(t.bus.sent.every((s) => s.body.type === 'ERROR')).toBe(true);
  }
}

beforeAll(() => setup());

describe('hostile input against the real handlers', () => {
  it.each(handMade())('%s', async (_name, queue, body) => {
    await attack(queue, body);
  });

  it('scheduler calls: valid calls naming the victim, mutated with hostile values (property)', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedCall(SCHEDULER_TEMPLATES), (body) => attack('scheduler', body)),
      { numRuns: 2000 },
    );
  });

  it('agent calls: valid calls naming the victim, mutated with hostile values (property)', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedCall(AGENT_TEMPLATES), (body) => attack('agent', body)),
      { numRuns: 1000 },
    );
  });

  it.each(OTHER_TENANTS_QUEUES)(
    "another tenant's queue is not $kind $id's: $queueUrl",
    ({ kind, id, queueUrl }) => {
      expect(ownQueueUrlProblem(t.deps.config, kind, queueUrl, id)).toMatch(/is not the queue of/);
      expect(
        ownQueueUrlProblem(t.deps.config, kind, queueUrl.replace(/-[^-]+\.fifo$/, `-${id}.fifo`), id),
      ).toBeUndefined();
    },
  );

  it('arbitrary JSON and text on both queues (property)', async () => {
    await fc.assert(
      fc.asyncProperty(junk, fc.constantFrom('scheduler' as const, 'agent' as const), (body, q) =>
        attack(q, body),
      ),
      { numRuns: 1000 },
    );
  });
});

/**
 * Refused outright: with the ACLs of {@link ATTACKER_ACLS} and an identity at its id cap, each of
 * these gets exactly one rejection of its code and changes nothing at all — not the victim's
 * records, not the attacker's, not the tables' other rows — and sends nothing to the victim.
 */
describe('hostile calls refused with no state change', () => {
  const CAP = 3;
  let baseline: Tables;
  beforeAll(async () => {
    await setup({ acls: aclsFromJson(ATTACKER_ACLS), maxIdsPerIdentity: CAP });
    for (const kind of ['framework', 'agent'] as const)
      await t.store.write([
        { kind: 'put', table: 'meta', item: { key: idCountKey(kind, HOARDER), ids: CAP }, expect: 'absent' },
      ]);
    initial = structuredClone(t.store.tables) as Tables;
    baseline = initial;
  });

  it.each(refusedCases())('$name: $code', async ({ queue, body, group, senderId, code }) => {
    reset();
    const counterKey = rejectedCounterKey(
      queue === 'scheduler' ? 'scheduler-calls' : 'agent-calls',
      code as never,
    );
    const count = async () => Number((await t.store.get<Item>('meta', { key: counterKey }))?.count ?? 0);
    const before = await count();
    const record = {
      messageId: `m${++seq}`,
      body,
      senderId: senderId ?? ATTACKER,
      receiveCount: 1,
      groupId: group,
    };
    await (queue === 'scheduler' ? handleSchedulerCall : handleAgentCall)(t.deps, record);
    expect(await count()).toBe(before + 1);
    expect(withoutCounters(t.store.tables as Tables)).toEqual(withoutCounters(baseline));
    expect(t.bus.to(fwQueue(VICTIM.framework))).toEqual([]);
    expect(t.bus.to(agentQueue(VICTIM.agent))).toEqual([]);
    // At most an ERROR back to the sender; never an ALLOCATE, LAUNCH, KILL or anything else.
    expect(t.bus.sent.filter((m) => m.body.type !== 'ERROR')).toEqual([]);
  });
});
