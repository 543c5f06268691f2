/**
 * An agent that comes back (lib/control/agent/register.ts: REGISTER with its tasks, and its status
 * updates), over the in-memory store: the registry's side of Mesos's re-registration tests.
 */
import { describe, expect, it } from 'vitest';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { markGone, markUnreachable } from '../../../lib/control/liveness.ts';
import { releaseTask } from '../../../lib/control/records/agents.ts';
import { forgetRoute } from '../../../lib/control/records/routes.ts';
import { runSweep } from '../../../lib/control/sweep.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import { parse, toWire } from '../../../lib/core/resources.ts';
import { accountingProblems } from '../../../lib/testing/invariants.ts';
import {
  agent,
  agentQueue,
  fwQueue,
  putAgent,
  putFramework,
  putTask,
  record,
  type TestControl,
  task,
  testControl,
} from './helpers.ts';

const AGENT = 'agent-principal';
const SOURCE = 'arn:aws:sqs:us-east-1:000:meso-agent-calls.fifo';
let n = 0;

/** Fresh ids per test: the registry caches routes per process for a few seconds. */
async function setup() {
  const id = `r${++n}`;
  const ids = { agent: `ag-${id}`, aware: `aware-${id}`, plain: `plain-${id}`, gone: `gone-${id}` };
  const t = testControl();
  await putFramework(t, ids.aware, { partitionAware: true });
  await putFramework(t, ids.plain, { partitionAware: false });
  await putFramework(t, ids.gone, { status: 'TORN_DOWN' });
  await putAgent(t, ids.agent);
  await putTask(t, ids.aware, 'ta', ids.agent);
  await putTask(t, ids.plain, 'tp', ids.agent);
  await putTask(t, ids.aware, 'tmissing', ids.agent);
  await putTask(t, ids.gone, 'torphan', ids.agent);
  for (const k of Object.values(ids)) {
    forgetRoute('agent', k);
    forgetRoute('framework', k);
  }
  return { t, ids };
}

const register = (
  t: TestControl,
  agentId: string,
  tasks: { frameworkId: string; taskId: string; state?: string }[],
) =>
  handleAgentCall(
    t.deps,
    record(
      {
        v: 1,
        type: 'REGISTER',
        agentId,
        hostname: 'h',
        resources: toWire(parse('cpus:4;mem:4096')),
        queueUrl: agentQueue(agentId),
        tasks,
      },
      AGENT,
      SOURCE,
    ),
  );

describe('re-registration of an unreachable agent', () => {
  it('ReregisterSlavePartitionAware / NotPartitionAware: its tasks are RUNNING again and both kinds of framework are told', async () => {
    const { t, ids } = await setup();
    t.now += 100_000;
    await markUnreachable(t.deps, ids.agent, 'test');
    expect((await task(t, ids.aware, 'ta')).state).toBe('TASK_UNREACHABLE');
    t.bus.clear();
    await register(t, ids.agent, [
      { frameworkId: ids.aware, taskId: 'ta', state: 'TASK_RUNNING' },
      { frameworkId: ids.plain, taskId: 'tp', state: 'TASK_RUNNING' },
      { frameworkId: ids.gone, taskId: 'torphan', state: 'TASK_RUNNING' },
    ]);
    const a = await agent(t, ids.agent);
    expect(a).toMatchObject({ status: 'ACTIVE', unreachableAt: null, pending: null });
    expect((await task(t, ids.aware, 'ta')).state).toBe('TASK_RUNNING');
    expect((await task(t, ids.plain, 'tp')).state).toBe('TASK_RUNNING');
    for (const [fw, id] of [
      [ids.aware, 'ta'],
      [ids.plain, 'tp'],
    ] as const) {
      expect(t.bus.events(fwQueue(fw))).toContainEqual({
        v: 1,
        type: 'UPDATE',
        status: expect.objectContaining({
          taskId: id,
          state: 'TASK_RUNNING',
          reason: 'REASON_AGENT_REREGISTERED',
          source: 'SOURCE_MASTER',
        }),
      });
    }
    const commands = t.bus.commands(agentQueue(ids.agent));
    expect(commands[0]).toMatchObject({ type: 'REGISTERED' });
    // The task of a removed framework is killed; the one it did not list is asked about.
    expect(commands).toContainEqual({ v: 1, type: 'KILL', frameworkId: ids.gone, taskId: 'torphan' });
    expect(commands).toContainEqual({
      v: 1,
      type: 'RECONCILE',
      tasks: [{ frameworkId: ids.aware, taskId: 'tmissing', ifUnknown: 'TASK_GONE' }],
    });
    // The accounting keeps what may still run.
    expect(Object.keys(a.tasks).sort()).toEqual(
      [ledgerKey(ids.aware, 'ta'), ledgerKey(ids.aware, 'tmissing'), ledgerKey(ids.plain, 'tp')].sort(),
    );
  });

  it('a redelivered REGISTER changes nothing more and tells the frameworks nothing new', async () => {
    const { t, ids } = await setup();
    t.now += 100_000;
    await markUnreachable(t.deps, ids.agent, 'test');
    const reg = record(
      {
        v: 1,
        type: 'REGISTER',
        agentId: ids.agent,
        hostname: 'h',
        resources: toWire(parse('cpus:4;mem:4096')),
        queueUrl: agentQueue(ids.agent),
        tasks: [{ frameworkId: ids.aware, taskId: 'ta', state: 'TASK_RUNNING' }],
      },
      AGENT,
      SOURCE,
      'reg-1',
    );
    await handleAgentCall(t.deps, reg);
    const before = t.bus.deduplicated(fwQueue(ids.aware)).length;
    await handleAgentCall(t.deps, reg);
    expect(t.bus.deduplicated(fwQueue(ids.aware)).length).toBe(before);
  });

  it('SpuriousSlaveReregistration: an agent that registers again while registered keeps its running tasks', async () => {
    const { t, ids } = await setup();
    await register(t, ids.agent, [
      { frameworkId: ids.aware, taskId: 'ta', state: 'TASK_RUNNING' },
      { frameworkId: ids.plain, taskId: 'tp', state: 'TASK_RUNNING' },
      { frameworkId: ids.aware, taskId: 'tmissing', state: 'TASK_RUNNING' },
    ]);
    expect((await task(t, ids.aware, 'ta')).state).toBe('TASK_RUNNING');
    expect(t.bus.events(fwQueue(ids.aware)).filter((e) => e.type === 'UPDATE')).toEqual([]);
    expect((await agent(t, ids.agent)).status).toBe('ACTIVE');
  });

  it('a REGISTER that lists a task whose end was already released does not charge it again (no over-commit)', async () => {
    // The race the chaos run found: the agent lists `ta` running in a REGISTER; `ta` ends, its
    // terminal update releases it from the ledger (before that update's row write), and the
    // allocator offers the freed cpus. The REGISTER, handled now, reads a RUNNING row — but the
    // ledger no longer holds the task, and charging it again would exceed the agent's total.
    const { t, ids } = await setup(); // four tasks of cpus:1 fill the agent's cpus:4
    expect(await releaseTask(t.store, ids.agent, ids.aware, 'ta')).toBe(true);
    const offer = {
      offerId: `o1@${ids.agent}`,
      frameworkId: ids.plain,
      role: '*',
      resources: parse('cpus:1;mem:128'),
      expiresAt: t.now + 60_000,
    };
    await t.store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: ids.agent },
        set: { offers: { [offer.offerId]: offer } },
        expect: (await agent(t, ids.agent)).version,
      },
    ]);
    expect(accountingProblems(await agent(t, ids.agent))).toEqual([]);
    await register(t, ids.agent, [
      { frameworkId: ids.aware, taskId: 'ta', state: 'TASK_RUNNING' },
      { frameworkId: ids.plain, taskId: 'tp', state: 'TASK_RUNNING' },
      { frameworkId: ids.aware, taskId: 'tmissing', state: 'TASK_RUNNING' },
    ]);
    const after = await agent(t, ids.agent);
    expect(accountingProblems(after)).toEqual([]);
    expect(Object.keys(after.tasks).sort()).toEqual(
      [ledgerKey(ids.aware, 'tmissing'), ledgerKey(ids.gone, 'torphan'), ledgerKey(ids.plain, 'tp')].sort(),
    );
    expect(Object.keys(after.offers)).toEqual([offer.offerId]);
    // Not killed either: it has ended, and its own update settles the row.
    const kills = t.bus.commands(agentQueue(ids.agent)).filter((c) => c.type === 'KILL');
    expect(kills.map((k) => (k as { taskId: string }).taskId)).not.toContain('ta');
  });

  it('a gone agent may not register again; what it runs is killed', async () => {
    const { t, ids } = await setup();
    await markGone(t.deps, ids.agent, { byOperator: true });
    t.bus.clear();
    await register(t, ids.agent, [
      { frameworkId: ids.aware, taskId: 'ta', state: 'TASK_RUNNING' },
      { frameworkId: ids.plain, taskId: 'tp', state: 'TASK_RUNNING' },
      { frameworkId: ids.aware, taskId: 'tmissing', state: 'TASK_RUNNING' },
    ]);
    expect((await agent(t, ids.agent)).status).toBe('GONE');
    const commands = t.bus.commands(agentQueue(ids.agent));
    expect(commands).toContainEqual({ v: 1, type: 'KILL', frameworkId: ids.aware, taskId: 'ta' });
    expect(commands).toContainEqual(expect.objectContaining({ type: 'ERROR', code: 'AGENT_GONE' }));
  });
});

describe('status updates around partitions', () => {
  const update = (
    t: TestControl,
    agentId: string,
    frameworkId: string,
    taskId: string,
    state: string,
    uuid: string,
  ) =>
    handleAgentCall(
      t.deps,
      record(
        {
          v: 1,
          type: 'STATUS_UPDATE',
          agentId,
          status: { taskId, frameworkId, agentId, state, source: 'SOURCE_EXECUTOR', uuid, timestamp: t.now },
        },
        AGENT,
        SOURCE,
      ),
    );

  it('TaskCompletedOnPartitionedAgent: an update that gets through from an unreachable agent is applied and forwarded', async () => {
    const { t, ids } = await setup();
    t.now += 100_000;
    await markUnreachable(t.deps, ids.agent, 'test');
    t.bus.clear();
    await update(t, ids.agent, ids.plain, 'tp', 'TASK_FINISHED', 'fin-1');
    expect((await task(t, ids.plain, 'tp')).state).toBe('TASK_FINISHED');
    expect(t.bus.events(fwQueue(ids.plain))).toContainEqual(
      expect.objectContaining({
        type: 'UPDATE',
        status: expect.objectContaining({ state: 'TASK_FINISHED', uuid: 'fin-1' }),
      }),
    );
    expect((await agent(t, ids.agent)).tasks[ledgerKey(ids.plain, 'tp')]).toBeUndefined();
    expect(Object.keys((await agent(t, ids.agent)).tasks)).toHaveLength(3);
  });

  it('a TASK_UNREACHABLE sent late (from the outbox) after the task finished is followed by its real end', async () => {
    const { t, ids } = await setup();
    t.now += 100_000;
    // The transition's UPDATEs are written, but the handler dies before sending them.
    const send = t.bus.send.bind(t.bus);
    let down = true;
    t.bus.send = async (q, m) => {
      if (down && m.some((x) => x.body.includes('TASK_LOST'))) throw new Error('crash');
      return send(q, m);
    };
    await expect(markUnreachable(t.deps, ids.agent, 'test')).rejects.toThrow('crash');
    down = false;
    // The agent's TASK_FINISHED gets through and is forwarded at once...
    await update(t, ids.agent, ids.plain, 'tp', 'TASK_FINISHED', 'fin-late');
    // ...and the sweep sends the stale TASK_LOST afterwards, then the row's current state.
    t.now += 60_000;
    await runSweep(t.deps);
    const updates = t.bus
      .deduplicated(fwQueue(ids.plain))
      .filter((m) => m.body.type === 'UPDATE')
      .map((m) => (m.body as unknown as { status: { state: string; reason?: string } }).status);
    expect(updates.map((u) => u.state)).toEqual(['TASK_FINISHED', 'TASK_LOST', 'TASK_FINISHED']);
    expect(updates.at(-1)?.reason).toBe('REASON_RECONCILIATION');
  });

  it('an update for a disconnected framework is applied but neither forwarded nor acknowledged', async () => {
    const { t, ids } = await setup();
    await t.store.write([
      {
        kind: 'patch',
        table: 'frameworks',
        key: { frameworkId: ids.plain },
        set: { status: 'DISCONNECTED', disconnectedAt: t.now },
        expect: 'exists',
      },
    ]);
    forgetRoute('framework', ids.plain);
    await update(t, ids.agent, ids.plain, 'tp', 'TASK_FINISHED', 'fin-2');
    expect((await task(t, ids.plain, 'tp')).state).toBe('TASK_FINISHED');
    expect(t.bus.events(fwQueue(ids.plain))).toEqual([]);
    expect(t.bus.commands(agentQueue(ids.agent)).filter((c) => c.type === 'ACKNOWLEDGE')).toEqual([]);
    // Its resources are free all the same.
    expect((await agent(t, ids.agent)).tasks[ledgerKey(ids.plain, 'tp')]).toBeUndefined();
    expect(Object.keys((await agent(t, ids.agent)).tasks)).toHaveLength(3);
  });
});
