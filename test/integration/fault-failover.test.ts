/**
 * Frameworks that go away and come back, against the emulators with real agents and processes
 * (Mesos's src/tests/fault_tolerance_tests.cpp). Scaled down: HEARTBEAT events every second, a
 * framework silent for 5 of them is disconnected; the sweep runs every second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disconnectFramework } from '../../lib/control/failover.ts';
import type { AgentRecord, FrameworkRecord } from '../../lib/core/model.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { Offer } from '../../lib/protocol/index.ts';
import { SchedulerErrorEvent } from '../../lib/sdk/errors.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { eventually, type Harness, Recorder, startHarness } from './harness.ts';

const sleeper = (offer: Offer, taskId: string, command = 'sleep 300') => ({
  taskId,
  agentId: offer.agentId,
  resources: { cpus: 0.1, mem: 16 },
  command: { value: command },
});

describe('framework failover', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      agents: 2,
      control: {
        frameworkHeartbeatSeconds: 1,
        frameworkPingTimeouts: 5,
        heartbeatIntervalSeconds: 1,
        agentPingTimeouts: 10,
      },
      controlPlane: { sweepIntervalMs: 1000 },
    });
  });
  afterAll(async () => h?.stop());

  const fwRow = (id: string) =>
    h.controlPlane.deps.store.get<FrameworkRecord & Item>('frameworks', { frameworkId: id });
  async function launchThree(s: MesoScheduler, r: Recorder, prefix: string) {
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [0, 1, 2].map((i) => sleeper(offer, `${prefix}${i}`)),
      { refuseSeconds: 0 },
    );
    for (const i of [0, 1, 2]) await r.update(`${prefix}${i}`, 'TASK_RUNNING');
  }

  it('SchedulerFailover + SchedulerFailoverStatusUpdate: a new process gets its tasks, offers and pending updates back', async () => {
    const s1 = h.scheduler({ name: 'failover', failoverTimeoutSeconds: 60, autoAcknowledge: false });
    const r1 = new Recorder(s1);
    await s1.subscribe();
    const offer = await r1.takeOffer();
    await s1.accept(
      [offer.offerId],
      [sleeper(offer, 'f0'), sleeper(offer, 'f1'), sleeper(offer, 'f2', 'sleep 2')],
      { refuseSeconds: 0 },
    );
    // Nothing to fetch: each task's first update is RUNNING.
    for (const id of ['f0', 'f1', 'f2']) await r1.update(id, 'TASK_RUNNING');
    // The old process acknowledged nothing: every task's first update waits at its agent (f2's
    // FINISHED behind its RUNNING). It dies; the new one reads the same queue (the only one its
    // id may name).
    await s1.close();

    const s2 = h.scheduler({ name: 'failover', frameworkId: s1.frameworkId, failoverTimeoutSeconds: 60 });
    const r2 = new Recorder(s2);
    const started = Date.now();
    await s2.subscribe();
    // Every task's state comes back: resent by Meso, then the agents' updates flow again as they are acknowledged.
    await r2.until(() =>
      ['f0', 'f1'].every((id) => r2.updates.some((u) => u.taskId === id && u.state === 'TASK_RUNNING')),
    );
    const recoveredMs = Date.now() - started;
    await r2.update('f2', 'TASK_FINISHED');
    // Offers again, on the new queue.
    await r2.takeOffer();
    expect(recoveredMs).toBeLessThan(15_000);
    expect((await fwRow(s1.frameworkId))?.queueUrl).toBe(s2.queueUrl);
    await s2.teardown();
    await eventually(async () => h.agents.every((a) => a.runningTasks().length === 0), 'teardown');
  });

  it('a framework that stops polling is disconnected, keeps its tasks, gets no offers, and gets its state back on re-subscription', async () => {
    const { s: s1, r: r1 } = await h.framework({ name: 'away', failoverTimeoutSeconds: 60 });
    await launchThree(s1, r1, 'w');
    await s1.close();
    const disconnected = await eventually(async () => {
      const f = await fwRow(s1.frameworkId);
      return f?.status === 'DISCONNECTED' && f;
    }, 'the framework to be disconnected');
    // Its offers were taken back (one a cycle made as it went is taken back by the next sweep).
    await eventually(async () => {
      const agents = await h.controlPlane.deps.store.scan<AgentRecord & Item>('agents');
      return agents.flatMap((a) => Object.values(a.offers)).every((o) => o.frameworkId !== s1.frameworkId);
    }, 'its offers to be taken back');
    expect(
      h.agents.flatMap((a) => a.runningTasks()).filter((t) => t.frameworkId === s1.frameworkId),
    ).toHaveLength(3);
    expect(disconnected.disconnectedAt).toBeTypeOf('number');

    // A task ends while it is away: applied, held for it.
    const w0 = h.agents.map((a) => a.task(s1.frameworkId, 'w0')).find((t) => !!t)!;
    w0.kill(0);

    const s2 = h.scheduler({
      name: 'away',
      frameworkId: s1.frameworkId,
      failoverTimeoutSeconds: 60,
    });
    const r2 = new Recorder(s2);
    const started = Date.now();
    await s2.subscribe();
    await r2.until(() =>
      ['w1', 'w2'].every((id) => r2.updates.some((u) => u.taskId === id && u.state === 'TASK_RUNNING')),
    );
    await r2.update('w0', 'TASK_KILLED');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await fwRow(s1.frameworkId))?.status).toBe('ACTIVE');
    await r2.takeOffer();
    await s2.teardown();
    await eventually(async () => h.agents.every((a) => a.runningTasks().length === 0), 'teardown');
  });

  it('SchedulerReregisterAfterFailoverTimeout: when the timeout ends its tasks are killed, resources freed, and the id is refused', async () => {
    const { s: s1, r: r1 } = await h.framework({ name: 'expire', failoverTimeoutSeconds: 2 });
    await launchThree(s1, r1, 'x');
    await s1.close();
    await eventually(
      async () => (await fwRow(s1.frameworkId))?.status === 'TORN_DOWN',
      'the failover timeout',
      20_000,
    );
    expect((await fwRow(s1.frameworkId))?.removedReason).toBe('failover timeout');
    await eventually(
      async () => h.agents.every((a) => a.runningTasks().length === 0),
      'its tasks to be killed',
    );
    await eventually(async () => {
      const agents = await h.controlPlane.deps.store.scan<AgentRecord & Item>('agents');
      return agents.every((a) => Object.values(a.tasks).every((t) => t.frameworkId !== s1.frameworkId));
    }, 'its resources to be freed');
    const s2 = h.scheduler({
      name: 'expire',
      frameworkId: s1.frameworkId,
    });
    await expect(s2.subscribe({ timeoutMs: 20_000 })).rejects.toMatchObject({ code: 'FRAMEWORK_TORN_DOWN' });
    await s2.close();
    expect(h.violations).toEqual([]);
  });

  it('DisconnectedSchedulerLaunchLost: a launch from a disconnected framework is TASK_LOST, and the SDK subscribes again', async () => {
    const s = h.scheduler({ name: 'late', failoverTimeoutSeconds: 60 });
    const r = new Recorder(s);
    const subscribed: number[] = [];
    s.on('subscribed', () => {
      subscribed.push(Date.now());
    });
    await s.subscribe();
    const offer = await r.takeOffer();
    await disconnectFramework(h.controlPlane.deps, s.frameworkId, 'test', { force: true });
    await s.accept([offer.offerId], [sleeper(offer, 'l1')]);
    const lost = await r.update('l1', 'TASK_LOST');
    expect(lost).toMatchObject({ reason: 'REASON_MASTER_DISCONNECTED', source: 'SOURCE_MASTER' });
    await r.until(() =>
      r.errors.some((e) => e instanceof SchedulerErrorEvent && e.code === 'FRAMEWORK_DISCONNECTED'),
    );
    await eventually(
      async () => subscribed.length >= 2 && (await fwRow(s.frameworkId))?.status === 'ACTIVE',
      're-subscription',
    );
    expect(h.agents.flatMap((a) => a.runningTasks()).some((t) => t.taskId === 'l1')).toBe(false);
    await s.teardown();
  });

  it('TEARDOWN kills all its tasks at once and frees their resources', async () => {
    const { s, r } = await h.framework({ name: 'teardown' });
    await launchThree(s, r, 'td');
    await s.teardown();
    await eventually(
      async () => h.agents.every((a) => a.runningTasks().length === 0),
      'its tasks to be killed',
    );
    await eventually(async () => {
      const agents = await h.controlPlane.deps.store.scan<AgentRecord & Item>('agents');
      return agents.every((a) => Object.keys(a.tasks).length === 0);
    }, 'resources to be freed');
    expect((await fwRow(s.frameworkId))?.status).toBe('TORN_DOWN');
    expect(h.violations).toEqual([]);
  });
});
