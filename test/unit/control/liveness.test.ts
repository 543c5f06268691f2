/**
 * Agent liveness (lib/control/liveness.ts) over the in-memory store: the deadline plan, the
 * UNREACHABLE and GONE transitions and what frameworks are told, and crash safety — a handler that
 * dies after its write loses nothing, because the outbox and the `pending` marker let the sweep
 * finish the job.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTROL_CONFIG } from '../../../lib/control/deps.ts';
import {
  checkAgent,
  checkAgents,
  finishTransition,
  markGone,
  markUnreachable,
  pingTimeoutMs,
  planLiveness,
} from '../../../lib/control/liveness.ts';
import { drainOutbox } from '../../../lib/control/outbox.ts';
import { runSweep } from '../../../lib/control/sweep.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import type { AgentRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import type { Store } from '../../../lib/ports/store.ts';
import { agent, agentQueue, fwQueue, putAgent, putFramework, putTask, task, testControl } from './helpers.ts';

const TIMEOUT = pingTimeoutMs(DEFAULT_CONTROL_CONFIG); // 75 s

const agentAt = (agentId: string, over: Partial<AgentRecord>): AgentRecord => ({
  agentId,
  principal: 'p',
  hostname: 'h',
  queueUrl: agentQueue(agentId),
  total: parse('cpus:1'),
  attributes: {},
  status: 'ACTIVE',
  offers: {},
  tasks: {},
  registeredAt: 0,
  lastSeenAt: 0,
  shard: 0,
  version: 1,
  ...over,
});

describe('planLiveness', () => {
  it('an agent is unreachable after 5 missed 15 s pings (75 s), as Mesos', () => {
    expect(TIMEOUT).toBe(75_000);
    const now = 1_000_000;
    const plan = planLiveness(
      [agentAt('late', { lastSeenAt: now - 75_000 }), agentAt('fine', { lastSeenAt: now - 74_999 })],
      now,
      DEFAULT_CONTROL_CONFIG,
    );
    expect(plan.unreachable).toEqual(['late']);
  });

  it('a deadline before the next sweep gets one timer at that deadline; others wait for the sweep', () => {
    const now = 1_000_000;
    const plan = planLiveness(
      [
        agentAt('healthy', { lastSeenAt: now - 5_000 }), // deadline in 70 s: after the next sweep (60 s)
        agentAt('late', { lastSeenAt: now - 40_000 }), // deadline in 35 s
      ],
      now,
      DEFAULT_CONTROL_CONFIG,
    );
    expect(plan.unreachable).toEqual([]);
    expect(plan.checks).toEqual([{ agentId: 'late', delaySeconds: 35 }]);
  });

  it('an unreachable agent is gone after the unreachable timeout; pending transitions are finished', () => {
    const now = 10 ** 10;
    const plan = planLiveness(
      [
        agentAt('old', { status: 'UNREACHABLE', unreachableAt: now - 14 * 86_400_000 }),
        agentAt('recent', { status: 'UNREACHABLE', unreachableAt: now - 1000, pending: 'UNREACHABLE' }),
        agentAt('gone', { status: 'GONE', goneAt: now }),
      ],
      now,
      DEFAULT_CONTROL_CONFIG,
    );
    expect(plan.gone).toEqual(['old']);
    expect(plan.unfinished).toEqual(['recent']);
    expect(plan.unreachable).toEqual([]);
  });
});

async function cluster() {
  const t = testControl();
  await putFramework(t, 'aware', { partitionAware: true });
  await putFramework(t, 'plain', { partitionAware: false });
  await putFramework(t, 'away', {
    status: 'DISCONNECTED',
    disconnectedAt: t.now,
    failoverTimeoutSeconds: 3600,
  });
  await putAgent(t, 'a1', {
    offers: {
      'o1@a1': {
        offerId: 'o1@a1',
        frameworkId: 'aware',
        resources: parse('cpus:1'),
        expiresAt: t.now + 60_000,
      },
    },
  });
  await putTask(t, 'aware', 't-aware', 'a1');
  await putTask(t, 'plain', 't-plain', 'a1');
  await putTask(t, 'away', 't-away', 'a1');
  return t;
}

describe('an agent that stops heartbeating', () => {
  it('PartitionedSlave: becomes UNREACHABLE, its offers are rescinded, every framework gets FAILURE', async () => {
    const t = await cluster();
    t.now += TIMEOUT;
    expect(await markUnreachable(t.deps, 'a1', 'test')).toBe(true);
    const a = await agent(t, 'a1');
    expect(a.status).toBe('UNREACHABLE');
    expect(a.unreachableAt).toBe(t.now);
    expect(a.offers).toEqual({});
    expect(a.pending).toBeNull();
    // It keeps its tasks (and their resources): they may come back.
    expect(Object.keys(a.tasks).sort()).toEqual(
      [ledgerKey('aware', 't-aware'), ledgerKey('away', 't-away'), ledgerKey('plain', 't-plain')].sort(),
    );
    expect(t.bus.events(fwQueue('aware'))).toContainEqual({ v: 1, type: 'RESCIND', offerId: 'o1@a1' });
    for (const fw of ['aware', 'plain'])
      expect(t.bus.events(fwQueue(fw))).toContainEqual({ v: 1, type: 'FAILURE', agentId: 'a1' });
    // A disconnected framework hears nothing now; it gets the state when it subscribes again.
    expect(t.bus.events(fwQueue('away'))).toEqual([]);
    // The agent is told to register again, should it only be cut off.
    expect(t.bus.commands(agentQueue('a1'))).toContainEqual(
      expect.objectContaining({ type: 'REREGISTER', agentId: 'a1' }),
    );
    // The outbox is empty once everything is sent.
    expect((await t.store.scan('meta')).filter((i) => String(i.key).startsWith('outbox#'))).toEqual([]);
  });

  it('its tasks are TASK_UNREACHABLE for partition-aware frameworks and TASK_LOST for the rest', async () => {
    const t = await cluster();
    t.now += TIMEOUT;
    await markUnreachable(t.deps, 'a1', 'test');
    const aware = t.bus.events(fwQueue('aware')).find((e) => e.type === 'UPDATE');
    const plain = t.bus.events(fwQueue('plain')).find((e) => e.type === 'UPDATE');
    expect(aware).toMatchObject({
      status: {
        taskId: 't-aware',
        state: 'TASK_UNREACHABLE',
        reason: 'REASON_AGENT_REMOVED',
        source: 'SOURCE_MASTER',
        unreachableTime: t.now,
      },
    });
    expect(plain).toMatchObject({
      status: { taskId: 't-plain', state: 'TASK_LOST', reason: 'REASON_AGENT_REMOVED' },
    });
    // Every row is TASK_UNREACHABLE (so it can come back); what each framework was told is its status.
    for (const id of ['t-aware', 't-plain', 't-away']) {
      const row = await task(t, id === 't-aware' ? 'aware' : id === 't-plain' ? 'plain' : 'away', id);
      expect(row.state).toBe('TASK_UNREACHABLE');
    }
    expect((await task(t, 'plain', 't-plain')).status.state).toBe('TASK_LOST');
  });

  it('a heartbeat that arrives in time keeps it ACTIVE (the deadline is checked again)', async () => {
    const t = await cluster();
    t.now += TIMEOUT - 1;
    expect(await markUnreachable(t.deps, 'a1', 'test')).toBe(false);
    await checkAgent(t.deps, 'a1');
    expect((await agent(t, 'a1')).status).toBe('ACTIVE');
  });

  it('the sweep marks it, and a second sweep changes nothing', async () => {
    const t = await cluster();
    t.now += TIMEOUT + 5_000;
    const first = await runSweep(t.deps);
    expect(first.agents.unreachable).toBe(1);
    const sent = t.bus.sent.length;
    const second = await runSweep(t.deps);
    expect(second.agents.unreachable).toBe(0);
    // Only the sweep's own messages (nudge, heartbeats) the second time.
    expect(t.bus.sent.slice(sent).every((s) => ['ALLOCATE', 'HEARTBEAT'].includes(s.body.type))).toBe(true);
  });

  it('a late heartbeat gets a timer for its exact deadline, and the timer marks it', async () => {
    const t = await cluster();
    t.now += 40_000;
    const report = await checkAgents(t.deps);
    expect(report.timers).toBe(1);
    const timer = t.bus.sent.find((s) => s.body.type === 'AGENT_CHECK')!;
    expect(timer.message.delaySeconds).toBe(35);
    t.now += 35_000;
    await checkAgent(t.deps, 'a1');
    expect((await agent(t, 'a1')).status).toBe('UNREACHABLE');
  });
});

describe('crash safety of the transition', () => {
  it('a handler that dies after writing the agent loses nothing: the outbox and `pending` let the sweep finish', async () => {
    const t = await cluster();
    t.now += TIMEOUT;
    // SQS fails: the first write succeeded, then the handler dies.
    t.bus.failNext = 1;
    await expect(markUnreachable(t.deps, 'a1', 'test')).rejects.toThrow(/injected/);
    expect((await agent(t, 'a1')).status).toBe('UNREACHABLE');
    expect((await agent(t, 'a1')).pending).toBe('UNREACHABLE');
    expect((await task(t, 'aware', 't-aware')).state).toBe('TASK_RUNNING');
    // The next sweep, a minute later.
    t.now += 60_000;
    await runSweep(t.deps);
    expect((await agent(t, 'a1')).pending).toBeNull();
    expect((await task(t, 'aware', 't-aware')).state).toBe('TASK_UNREACHABLE');
    // What the framework's FIFO queue keeps (sends that got out before the crash are dropped as duplicates).
    const kept = t.bus.deduplicated(fwQueue('plain')).map((s) => s.body.type);
    expect(kept.filter((type) => type === 'FAILURE')).toHaveLength(1);
    expect(kept.filter((type) => type === 'UPDATE')).toHaveLength(1);
  });

  it('messages sent before a crash and again by the sweep carry the same deduplication ids (no doubles)', async () => {
    const t = await cluster();
    t.now += TIMEOUT;
    // Sends succeed, but deleting the outbox item fails: the sweep will send them again.
    const inner = t.deps.store;
    let failDeletes = true;
    const store: Store = {
      ...inner,
      get: inner.get.bind(inner),
      query: inner.query.bind(inner),
      scan: inner.scan.bind(inner),
      increment: inner.increment.bind(inner),
      write: async (ops) => {
        if (failDeletes && ops.some((o) => o.kind === 'delete')) throw new Error('crash');
        return inner.write(ops);
      },
    };
    const deps = { ...t.deps, store };
    await expect(markUnreachable(deps, 'a1', 'test')).rejects.toThrow('crash');
    failDeletes = false;
    t.now += 60_000;
    await finishTransition(deps, 'a1');
    const drained = await drainOutbox(deps);
    expect(drained.messages).toBeGreaterThan(0);
    // Twice on the wire, once in a FIFO queue.
    const all = t.bus.to(fwQueue('plain'));
    expect(all.length).toBeGreaterThan(t.bus.deduplicated(fwQueue('plain')).length);
    expect(t.bus.deduplicated(fwQueue('plain')).filter((s) => s.body.type === 'FAILURE')).toHaveLength(1);
  });

  it('a re-registration during the transition stops it: no task is marked after the agent is back', async () => {
    const t = await cluster();
    t.now += TIMEOUT;
    t.bus.failNext = 1;
    await expect(markUnreachable(t.deps, 'a1', 'test')).rejects.toThrow();
    // The agent comes back before the sweep: ACTIVE again, pending cleared (as REGISTER does).
    const a = await agent(t, 'a1');
    await t.store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: 'a1' },
        set: { status: 'ACTIVE', pending: null, unreachableAt: null },
        expect: a.version,
      },
    ]);
    expect(await finishTransition(t.deps, 'a1')).toBe(0);
    expect((await task(t, 'aware', 't-aware')).state).toBe('TASK_RUNNING');
  });
});

describe('GONE', () => {
  it('after the unreachable timeout its tasks are TASK_GONE (partition-aware) or TASK_LOST, and its accounting is emptied', async () => {
    const t = await cluster();
    t.now += TIMEOUT;
    await markUnreachable(t.deps, 'a1', 'test');
    t.bus.clear();
    t.now += DEFAULT_CONTROL_CONFIG.agentUnreachableTimeoutSeconds * 1000;
    const report = await checkAgents(t.deps);
    expect(report.gone).toBe(1);
    const a = await agent(t, 'a1');
    expect(a.status).toBe('GONE');
    expect(a.tasks).toEqual({});
    expect((await task(t, 'aware', 't-aware')).state).toBe('TASK_GONE');
    expect((await task(t, 'plain', 't-plain')).state).toBe('TASK_LOST');
    expect(t.bus.events(fwQueue('aware'))).toContainEqual(
      expect.objectContaining({
        status: expect.objectContaining({ state: 'TASK_GONE', reason: 'REASON_AGENT_REMOVED' }),
      }),
    );
  });

  it('an operator marks an active agent gone: TASK_GONE_BY_OPERATOR, FAILURE, and its tasks are killed', async () => {
    const t = await cluster();
    expect(await markGone(t.deps, 'a1', { byOperator: true })).toBe('gone');
    expect(await markGone(t.deps, 'a1', { byOperator: true })).toBe('already-gone');
    expect(await markGone(t.deps, 'nope', { byOperator: true })).toBe('unknown');
    expect((await task(t, 'aware', 't-aware')).state).toBe('TASK_GONE_BY_OPERATOR');
    expect((await task(t, 'aware', 't-aware')).status.reason).toBe('REASON_AGENT_REMOVED_BY_OPERATOR');
    expect((await task(t, 'plain', 't-plain')).state).toBe('TASK_LOST');
    expect(t.bus.events(fwQueue('aware'))).toContainEqual({ v: 1, type: 'FAILURE', agentId: 'a1' });
    const kills = t.bus.commands(agentQueue('a1')).filter((c) => c.type === 'KILL');
    expect(kills.map((k) => (k.type === 'KILL' ? k.taskId : '')).sort()).toEqual([
      't-aware',
      't-away',
      't-plain',
    ]);
    // The tasks ended before the agent was told to kill them: its TASK_KILLED comes too late to count.
    const order = t.bus.sent.map((x) => {
      const status = x.body.status as { state?: string } | undefined;
      return `${x.body.type}:${status?.state ?? x.body.taskId ?? ''}`;
    });
    const gone = order.indexOf('UPDATE:TASK_GONE_BY_OPERATOR');
    const firstKill = order.findIndex((o) => o.startsWith('KILL:'));
    expect(gone).toBeGreaterThanOrEqual(0);
    expect(gone).toBeLessThan(firstKill);
  });

  it('two frameworks with a task of the same id on it: each task is moved and killed, neither hides the other', async () => {
    const t = await cluster();
    await putTask(t, 'plain', 't-aware', 'a1');
    expect(Object.keys((await agent(t, 'a1')).tasks)).toHaveLength(4);
    expect(await markGone(t.deps, 'a1', { byOperator: true })).toBe('gone');
    expect((await task(t, 'aware', 't-aware')).state).toBe('TASK_GONE_BY_OPERATOR');
    expect((await task(t, 'plain', 't-aware')).state).toBe('TASK_LOST');
    // Two KILLs of `t-aware`, one per framework, with different deduplication ids (a FIFO queue
    // would drop the second of two with the same id).
    const kills = t.bus
      .deduplicated(agentQueue('a1'))
      .filter((s) => s.body.type === 'KILL' && s.body.taskId === 't-aware')
      .map((s) => s.body.frameworkId);
    expect(kills.sort()).toEqual(['aware', 'plain']);
    expect((await agent(t, 'a1')).tasks).toEqual({});
  });

  it('finishing in chunks: many tasks, several transactions, each within DynamoDB limits', async () => {
    const t = testControl();
    await putFramework(t, 'fw', { partitionAware: true });
    await putAgent(t, 'big', { total: parse('cpus:1000;mem:1000000') });
    for (let i = 0; i < 95; i++) await putTask(t, 'fw', `t${i}`, 'big');
    const sizes: number[] = [];
    const inner = t.deps.store;
    const deps = {
      ...t.deps,
      store: {
        ...inner,
        get: inner.get.bind(inner),
        query: inner.query.bind(inner),
        scan: inner.scan.bind(inner),
        increment: inner.increment.bind(inner),
        write: async (ops: Parameters<Store['write']>[0]) => {
          sizes.push(ops.length);
          return inner.write(ops);
        },
      },
    };
    t.now += TIMEOUT;
    await markUnreachable(deps, 'big', 'test');
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
    const rows = await t.store.query<{ state: string }>('tasks', { name: 'frameworkId', value: 'fw' });
    expect(rows.every((r) => r.state === 'TASK_UNREACHABLE')).toBe(true);
    expect(t.bus.events(fwQueue('fw')).filter((e) => e.type === 'UPDATE')).toHaveLength(95);
  });
});
