/**
 * Agents that go silent and come back, against the emulators with real agents and processes
 * (Mesos's src/tests/partition_tests.cpp). Liveness is scaled down: agents heartbeat every second
 * and are UNREACHABLE after 5 missed heartbeats; the sweep runs every second.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runProgram } from '../../lib/cli/program.ts';
import { ledgerKey } from '../../lib/core/ledger.ts';
import type { AgentRecord, TaskRecord } from '../../lib/core/model.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { Offer, TaskStatus } from '../../lib/protocol/index.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { forceReregistration, partitionable } from './fault-kit.ts';
import { eventually, type Harness, Recorder, sleep, startHarness } from './harness.ts';

// 5 missed 1 s heartbeats: tight enough to be quick, loose enough not to fire on a loaded machine.
const LIVENESS = { heartbeatIntervalSeconds: 1, agentPingTimeouts: 5 };

async function framework(h: Harness, name: string, partitionAware: boolean) {
  const s = h.scheduler({ name, partitionAware });
  const r = new Recorder(s);
  const failures: string[] = [];
  s.on('failure', (f) => {
    failures.push(f.agentId ?? '');
  });
  await s.subscribe();
  return { s, r, failures };
}

/** Cuts the agent off once it has nothing in flight: a delete lost to the cut would hold that
 * task's FIFO group in its command queue for the queue's visibility timeout (30 s). */
async function quietCut(agent: { pendingStatusUpdates(): unknown[] }, net: { cut(): void }) {
  await eventually(async () => agent.pendingStatusUpdates().length === 0, 'acknowledgements');
  await sleep(500);
  net.cut();
}

async function launch(s: MesoScheduler, offer: Offer, taskId: string, command = 'sleep 300') {
  await s.accept(
    [offer.offerId],
    [{ taskId, agentId: offer.agentId, resources: { cpus: 0.1, mem: 16 }, command: { value: command } }],
    { refuseSeconds: 0 },
  );
}

const states = (r: Recorder, taskId: string) =>
  r.updates.filter((u) => u.taskId === taskId).map((u) => u.state);
const laterUpdate = (
  r: Recorder,
  taskId: string,
  from: TaskStatus['state'],
  want: (u: TaskStatus) => boolean,
) => {
  const list = r.updates.filter((u) => u.taskId === taskId);
  const i = list.findIndex((u) => u.state === from);
  return i >= 0 ? list.slice(i + 1).find(want) : undefined;
};
const row = (h: Harness, frameworkId: string, taskId: string) =>
  h.controlPlane.deps.store.get<TaskRecord & Item>('tasks', { frameworkId, taskId });
const agentRow = (h: Harness, agentId: string) =>
  h.controlPlane.deps.store.get<AgentRecord & Item>('agents', { agentId });

// Each test waits on events through a cut, a liveness timeout and a return, with the agent's
// update retries in between: well inside a minute alone, more than one on a machine running
// several suites at once. Waiting longer costs nothing when they pass.
describe('partitioned agents', { timeout: 180_000 }, () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 0, control: LIVENESS, controlPlane: { sweepIntervalMs: 1000 } });
  });
  afterAll(async () => h?.stop());

  it('PartitionedSlave + ReregisterSlavePartitionAware: TASK_UNREACHABLE and FAILURE, then RUNNING again when it returns', async () => {
    const net = partitionable(h.cluster.aws);
    // A failing test must not leave its agent cut off for the tests after it.
    onTestFinished(() => net.heal());
    const agent = await h.startAgent({ sqs: net.client });
    const { s, r, failures } = await framework(h, 'aware', true);
    await launch(s, await r.takeOffer(agent.agentId), 'p1');
    await r.update('p1', 'TASK_RUNNING');

    await quietCut(agent, net);
    const cutAt = Date.now();
    const unreachable = await r.update('p1', 'TASK_UNREACHABLE');
    const detectedMs = Date.now() - cutAt;
    expect(unreachable).toMatchObject({
      reason: 'REASON_AGENT_REMOVED',
      source: 'SOURCE_MASTER',
      agentId: agent.agentId,
    });
    expect(unreachable.unreachableTime).toBeTypeOf('number');
    // Not before 5 heartbeats were missed. (How soon after depends on the machine's load: 18 s
    // under a loaded run's, so no upper bound is asserted; the test's timeout bounds it.)
    expect(detectedMs).toBeGreaterThanOrEqual(4_000);
    await r.until(() => failures.includes(agent.agentId));
    const a = await agentRow(h, agent.agentId);
    expect(a?.status).toBe('UNREACHABLE');
    expect(a?.offers).toEqual({});
    // Its resources are not offered while it is away.
    const offersBefore = r.offers.filter((o) => o.agentId === agent.agentId).length;

    net.heal();
    await r.until(() => !!laterUpdate(r, 'p1', 'TASK_UNREACHABLE', (u) => u.state === 'TASK_RUNNING'));
    const back = laterUpdate(r, 'p1', 'TASK_UNREACHABLE', (u) => u.state === 'TASK_RUNNING')!;
    expect(back.reason).toBe('REASON_AGENT_REREGISTERED');
    expect((await agentRow(h, agent.agentId))?.status).toBe('ACTIVE');
    expect((await row(h, s.frameworkId, 'p1'))?.state).toBe('TASK_RUNNING');
    expect(agent.runningTasks().map((t) => t.taskId)).toContain('p1');
    expect(offersBefore).toBeGreaterThanOrEqual(0);

    await s.kill('p1');
    expect((await r.terminal('p1')).state).toBe('TASK_KILLED');
    await s.teardown();
    expect(h.violations).toEqual([]);
  });

  it('ReregisterSlaveNotPartitionAware: TASK_LOST while away, TASK_RUNNING again when it returns', async () => {
    const net = partitionable(h.cluster.aws);
    // A failing test must not leave its agent cut off for the tests after it.
    onTestFinished(() => net.heal());
    const agent = await h.startAgent({ sqs: net.client });
    const { s, r } = await framework(h, 'plain', false);
    await launch(s, await r.takeOffer(agent.agentId), 'n1');
    await r.update('n1', 'TASK_RUNNING');
    await quietCut(agent, net);
    const lost = await r.update('n1', 'TASK_LOST');
    expect(lost.reason).toBe('REASON_AGENT_REMOVED');
    expect(states(r, 'n1')).not.toContain('TASK_UNREACHABLE');
    net.heal();
    await r.until(() => !!laterUpdate(r, 'n1', 'TASK_LOST', (u) => u.state === 'TASK_RUNNING'));
    await s.kill('n1');
    await r.until(() => states(r, 'n1').includes('TASK_KILLED'));
    await s.teardown();
  });

  it('TaskCompletedOnPartitionedAgent: a task that ends while its agent is away is reported when it returns', async () => {
    const net = partitionable(h.cluster.aws);
    // A failing test must not leave its agent cut off for the tests after it.
    onTestFinished(() => net.heal());
    const agent = await h.startAgent({ sqs: net.client });
    const { s, r } = await framework(h, 'completed', false);
    // Listened for before anything can end it: under load the task's 6 s may run out before
    // Meso has marked it lost, and an end emitted before the listener would never be seen.
    const ended = new Promise<void>((resolve) =>
      agent.on('taskTerminated', (_fw, taskId) => taskId === 'c1' && resolve()),
    );
    await launch(s, await r.takeOffer(agent.agentId), 'c1', 'sleep 6');
    await r.update('c1', 'TASK_RUNNING');
    await quietCut(agent, net);
    await r.update('c1', 'TASK_LOST');
    await ended;
    net.heal();
    const finished = await r.update('c1', 'TASK_FINISHED');
    expect(finished.source).not.toBe('SOURCE_MASTER');
    // Explicit reconciliation: Meso keeps the task, so it answers its real end (Mesos, which
    // forgets acknowledged tasks, answers TASK_LOST here).
    const seen = r.updates.length;
    await s.reconcile([{ taskId: 'c1', agentId: agent.agentId }]);
    await r.until(() => r.updates.slice(seen).some((u) => u.taskId === 'c1'));
    const answer = r.updates.slice(seen).find((u) => u.taskId === 'c1')!;
    expect(answer).toMatchObject({ state: 'TASK_FINISHED', reason: 'REASON_RECONCILIATION' });
    await eventually(
      async () => !(await agentRow(h, agent.agentId))?.tasks[ledgerKey(s.frameworkId, 'c1')],
      'the resources to be freed',
    );
    await s.teardown();
  });

  it('SpuriousSlaveReregistration: an agent that registers again while registered keeps its tasks running', async () => {
    const agent = await h.startAgent();
    const { s, r } = await framework(h, 'spurious', true);
    await launch(s, await r.takeOffer(agent.agentId), 's1');
    await r.update('s1', 'TASK_RUNNING');
    await forceReregistration(h, agent.agentId);
    const seen = r.updates.length;
    await s.reconcile([{ taskId: 's1', agentId: agent.agentId }]);
    await r.until(() => r.updates.slice(seen).some((u) => u.taskId === 's1'));
    expect(r.updates.slice(seen).find((u) => u.taskId === 's1')).toMatchObject({
      state: 'TASK_RUNNING',
      reason: 'REASON_RECONCILIATION',
    });
    expect(states(r, 's1')).not.toContain('TASK_LOST');
    expect(agent.runningTasks().map((t) => t.taskId)).toContain('s1');
    await s.teardown();
    await eventually(async () => agent.runningTasks().length === 0, 'teardown to kill the task');
  });

  it('an operator marks an agent gone (meso mark-agent-gone): TASK_GONE_BY_OPERATOR, and it may not come back', async () => {
    const agent = await h.startAgent();
    const { s, r, failures } = await framework(h, 'operator', true);
    await launch(s, await r.takeOffer(agent.agentId), 'g1');
    await r.update('g1', 'TASK_RUNNING');
    const out: string[] = [];
    const io = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => out.push(t) },
      onInterrupt: () => () => {},
      exit: (c: number): never => {
        throw new Error(`exit ${c}`);
      },
    };
    const code = await runProgram(['mark-agent-gone', agent.agentId], {
      io,
      agentGone: { loadConfig: () => h.cluster },
    });
    expect(code).toBe(0);
    expect(out.join('')).toMatch(/is gone; 1 task marked gone/);
    const gone = await r.update('g1', 'TASK_GONE_BY_OPERATOR');
    expect(gone.reason).toBe('REASON_AGENT_REMOVED_BY_OPERATOR');
    await r.until(() => failures.includes(agent.agentId));
    // The live agent was told to kill its task.
    await eventually(async () => agent.runningTasks().length === 0, 'the task to be killed');
    expect((await agentRow(h, agent.agentId))?.status).toBe('GONE');
    await s.teardown();
  });
});

describe('an agent unreachable for too long', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      agents: 0,
      control: { ...LIVENESS, agentUnreachableTimeoutSeconds: 3 },
      controlPlane: { sweepIntervalMs: 1000 },
    });
  });
  afterAll(async () => h?.stop());

  it('is GONE after the unreachable timeout and its tasks TASK_GONE; it cannot register again', async () => {
    const net = partitionable(h.cluster.aws);
    // A failing test must not leave its agent cut off for the tests after it.
    onTestFinished(() => net.heal());
    const agent = await h.startAgent({ sqs: net.client });
    const { s, r } = await framework(h, 'timeout', true);
    await launch(s, await r.takeOffer(agent.agentId), 'u1');
    await r.update('u1', 'TASK_RUNNING');
    await quietCut(agent, net);
    await r.update('u1', 'TASK_UNREACHABLE');
    const gone = await r.update('u1', 'TASK_GONE');
    expect(gone.reason).toBe('REASON_AGENT_REMOVED');
    const a = await eventually(async () => {
      const x = await agentRow(h, agent.agentId);
      return x?.pending === null && x;
    }, 'the transition to finish');
    expect(a.status).toBe('GONE');
    expect(a.tasks).toEqual({});
    net.heal();
    // Back on the network it is told it is gone and its task is killed.
    await eventually(async () => agent.runningTasks().length === 0, 'its task to be killed', 20_000);
    expect((await agentRow(h, agent.agentId))?.status).toBe('GONE');
    await s.teardown();
  });
});
