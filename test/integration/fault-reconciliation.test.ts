/**
 * Reconciliation against the emulators with real agents and processes: framework ↔ registry
 * (Mesos's src/tests/reconciliation_tests.cpp) and registry ↔ agent when an agent registers again
 * (src/tests/master_slave_reconciliation_tests.cpp).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskStatus } from '../../lib/protocol/index.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { droppingBus, forceReregistration, partitionable } from './fault-kit.ts';
import { eventually, type Harness, type Recorder, sleep, startHarness } from './harness.ts';

/** LAUNCHes the test wants lost on the way to the agent (Mesos tests drop RunTaskMessage). */
const dropLaunch = new Set<string>();

describe('reconciliation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      agents: 1,
      control: { heartbeatIntervalSeconds: 1, agentPingTimeouts: 10 },
      controlPlane: {
        wrap: {
          bus: (b) =>
            droppingBus(b, (_q, body) => {
              const t = body.task as { taskId?: string } | undefined;
              return body.type === 'LAUNCH' && !!t?.taskId && dropLaunch.has(t.taskId);
            }).bus,
        },
      },
    });
  });
  afterAll(async () => h?.stop());

  const framework = (name: string, partitionAware: boolean, autoAcknowledge = true) =>
    h.framework({ name, partitionAware, autoAcknowledge });

  /** The answers to one RECONCILE (updates with REASON_RECONCILIATION after `from`). */
  async function reconcile(
    s: { reconcile: (t?: { taskId: string; agentId?: string }[]) => Promise<void> },
    r: Recorder,
    tasks: { taskId: string; agentId?: string }[],
    expected: number,
  ): Promise<TaskStatus[]> {
    const from = r.updates.length;
    await s.reconcile(tasks);
    const answers = () => r.updates.slice(from).filter((u) => u.reason === 'REASON_RECONCILIATION');
    await r.until(() => answers().length >= expected);
    await sleep(300); // nothing more should come
    return answers();
  }

  async function runTask(s: MesoScheduler, r: Recorder, taskId: string, command: string) {
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [{ taskId, agentId: offer.agentId, resources: { cpus: 0.1, mem: 16 }, command: { value: command } }],
      { refuseSeconds: 0 },
    );
    return offer.agentId;
  }

  it('UnknownTask / UnknownTaskPartitionAware: a task the cluster never saw is TASK_LOST, or TASK_UNKNOWN when partition-aware', async () => {
    const plain = await framework('unknown', false);
    expect((await reconcile(plain.s, plain.r, [{ taskId: 'never' }], 1))[0]).toMatchObject({
      taskId: 'never',
      state: 'TASK_LOST',
      source: 'SOURCE_MASTER',
    });
    const aware = await framework('unknown-pa', true);
    expect((await reconcile(aware.s, aware.r, [{ taskId: 'never' }], 1))[0]?.state).toBe('TASK_UNKNOWN');
    // Named on a registered agent: TASK_GONE (Mesos case 3).
    const agentId = h.agents[0]!.agentId;
    expect((await reconcile(aware.s, aware.r, [{ taskId: 'never', agentId }], 1))[0]?.state).toBe(
      'TASK_GONE',
    );
    await plain.s.teardown();
    await aware.s.teardown();
  });

  it('ImplicitNonTerminalTask / ImplicitTerminalTask: implicit reconciliation names running tasks and not ended ones', async () => {
    const { s, r } = await framework('implicit', false);
    await runTask(s, r, 'run', 'sleep 300');
    await runTask(s, r, 'done', 'true');
    await r.update('run', 'TASK_RUNNING');
    await r.update('done', 'TASK_FINISHED');
    const answers = await reconcile(s, r, [], 1);
    expect(answers.map((a) => [a.taskId, a.state])).toEqual([['run', 'TASK_RUNNING']]);
    expect(answers[0]?.uuid).toBeUndefined();
    // Explicitly, Meso still knows the ended one.
    expect((await reconcile(s, r, [{ taskId: 'done' }], 1))[0]?.state).toBe('TASK_FINISHED');
    await s.teardown();
  });

  it('UnacknowledgedTerminalTask: a terminal update keeps coming from its agent until the framework acknowledges it', async () => {
    const { s, r } = await framework('unacked', false, false);
    // Acknowledge everything but the terminal update.
    s.on('update', async (u) => {
      if (u.state !== 'TASK_FINISHED') await s.acknowledge(u);
    });
    const agent = h.agents[0]!;
    // Listened for from the start: a resend that comes before the framework has read the first
    // send (a loaded machine) must not be missed.
    const resending = new Promise<TaskStatus>((resolve) =>
      agent.on(
        'statusSent',
        (st, attempt) => st.taskId === 'fin' && st.state === 'TASK_FINISHED' && attempt > 0 && resolve(st),
      ),
    );
    await runTask(s, r, 'fin', 'true');
    const finished = await r.update('fin', 'TASK_FINISHED');
    // Not acknowledged: the agent still holds it and resends it.
    const resent = await resending;
    expect(resent.uuid).toBe(finished.uuid);
    // Every update before it was acknowledged (manually), so it is the only one pending.
    await s.acknowledge(finished);
    await eventually(
      async () => !agent.pendingStatusUpdates().some((u) => u.taskId === 'fin'),
      'the acknowledgement',
    );
    await s.teardown();
  });

  it('ReconcileLostTask: a launch lost on its way to the agent is TASK_LOST from the agent when it registers again', async () => {
    const { s, r } = await framework('lost-launch', false);
    dropLaunch.add('dropped');
    const agentId = await runTask(s, r, 'dropped', 'sleep 300');
    await launchLost(h, s.frameworkId, 'dropped');
    await forceReregistration(h, agentId);
    const lost = await r.update('dropped', 'TASK_LOST');
    expect(lost).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_RECONCILIATION' });
    await s.teardown();
  });

  it('ReconcileDroppedTask: for a partition-aware framework it is TASK_DROPPED', async () => {
    const { s, r } = await framework('dropped-launch', true);
    dropLaunch.add('dropped-pa');
    const agentId = await runTask(s, r, 'dropped-pa', 'sleep 300');
    await launchLost(h, s.frameworkId, 'dropped-pa');
    await forceReregistration(h, agentId);
    const dropped = await r.update('dropped-pa', 'TASK_DROPPED');
    expect(dropped).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_RECONCILIATION' });
    await s.teardown();
  });
});

/** Waits until the registry has launched the task (and its LAUNCH was lost on the way). */
async function launchLost(h: Harness, frameworkId: string, taskId: string): Promise<void> {
  await eventually(
    async () => !!(await h.controlPlane.deps.store.get('tasks', { frameworkId, taskId })),
    'the launch',
  );
  await sleep(500);
}

describe('agent ↔ registry reconciliation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 0, control: { heartbeatIntervalSeconds: 1, agentPingTimeouts: 10 } });
  });
  afterAll(async () => h?.stop());

  it('ReconcileRace: a stale REGISTER that misses a launched task does not make it lost', async () => {
    const net = partitionable(h.cluster.aws);
    const agent = await h.startAgent({ sqs: net.client });
    const { s, r } = await h.framework({ name: 'race', partitionAware: false });
    const offer = await r.takeOffer(agent.agentId);
    // The agent registers again, but its REGISTER (listing no task) is held back...
    net.holdRegisters();
    await h.controlPlane.deps.bus.send(agent.queueUrl, [
      {
        body: JSON.stringify({ v: 1, type: 'REREGISTER', agentId: agent.agentId, reason: 'test' }),
        groupId: 'control',
        dedupId: `race-${Date.now()}`,
      },
    ]);
    await eventually(async () => net.held > 0, 'the REGISTER to be held');
    // ...while a task is launched on it, and arrives after the launch.
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'racer',
          agentId: agent.agentId,
          resources: { cpus: 0.1, mem: 16 },
          command: { value: 'sleep 3' },
        },
      ],
    );
    await eventually(async () => agent.runningTasks().some((t) => t.taskId === 'racer'), 'the launch');
    const registered = new Promise<void>((resolve) => agent.once('registered', () => resolve()));
    net.release();
    await registered;
    const end = await r.terminal('racer');
    expect(end.state).toBe('TASK_FINISHED');
    expect(r.updates.filter((u) => u.taskId === 'racer').map((u) => u.state)).not.toContain('TASK_LOST');
    await s.teardown();
  });

  it('RecoveredAgent: an agent that restarts without its tasks has them reconciled to an end, and its resources freed', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'meso-agent-'));
    const first = await h.startAgent({ workDir });
    const { s, r } = await h.framework({ name: 'restart', partitionAware: true });
    const offer = await r.takeOffer(first.agentId);
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'orphan',
          agentId: first.agentId,
          resources: { cpus: 0.1, mem: 16 },
          command: { value: 'sleep 300' },
        },
      ],
    );
    await r.update('orphan', 'TASK_RUNNING');
    await eventually(async () => first.pendingStatusUpdates().length === 0, 'acknowledgements');
    // The node dies with its tasks; the agent comes back with the same id.
    first.killAllNow();
    await first.stop();
    // Its last long poll (2 s) must end first: an abandoned receive can still take a message and
    // hide its FIFO group for the queue's visibility timeout (30 s).
    await sleep(2_500);
    const second = await h.startAgent({ workDir });
    expect(second.agentId).toBe(first.agentId);
    const end = await r.terminal('orphan');
    expect(['TASK_GONE', 'TASK_LOST', 'TASK_FAILED', 'TASK_KILLED']).toContain(end.state);
    await eventually(async () => {
      const a = await h.controlPlane.deps.store.get<{ tasks: object }>('agents', { agentId: first.agentId });
      return a && Object.keys(a.tasks).length === 0;
    }, 'its resources to be freed');
    await s.teardown();
  });
});
