/**
 * Framework failover (lib/control/failover.ts and the SUBSCRIBE/TEARDOWN/RECONCILE/KILL calls)
 * over the in-memory store: disconnection, the failover timeout, removal, and what a framework
 * that comes back gets — checked call by call, without emulators.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTROL_CONFIG } from '../../../lib/control/deps.ts';
import {
  checkFrameworks,
  disconnectFramework,
  frameworkTimeoutMs,
  onFailoverTimeout,
  planFailover,
  removeFramework,
} from '../../../lib/control/failover.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import { handleTimer } from '../../../lib/control/timers.ts';
import type { FrameworkRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import { QueueGoneError } from '../../../lib/ports/bus.ts';
import {
  agent,
  agentQueue,
  framework,
  fwQueue,
  putAgent,
  putFramework,
  putTask,
  Q,
  record,
  type TestControl,
  task,
  testControl,
} from './helpers.ts';

const FW = 'fw-principal';
const call = (t: TestControl, body: object, messageId?: string) =>
  handleSchedulerCall(t.deps, record({ v: 1, ...body }, FW, undefined, messageId));

async function setup(over: Partial<FrameworkRecord> = {}) {
  const t = testControl();
  await putFramework(t, 'fw', { failoverTimeoutSeconds: 600, ...over });
  await putFramework(t, 'other');
  await putAgent(t, 'a1', {
    offers: {
      'o1@a1': { offerId: 'o1@a1', frameworkId: 'fw', resources: parse('cpus:1'), expiresAt: t.now + 60_000 },
    },
  });
  await putTask(t, 'fw', 't1', 'a1');
  await putTask(t, 'fw', 't2', 'a1', 'TASK_FINISHED');
  return t;
}

describe('planFailover', () => {
  const base = { frameworkId: 'f', subscribedAt: 0, failoverTimeoutSeconds: 30 } as FrameworkRecord;
  it('a framework silent for 3 heartbeat periods (180 s) is disconnected', () => {
    expect(frameworkTimeoutMs(DEFAULT_CONTROL_CONFIG)).toBe(180_000);
    const plan = planFailover(
      [
        { ...base, frameworkId: 'quiet', status: 'ACTIVE', lastSeenAt: 0 },
        { ...base, frameworkId: 'chatty', status: 'ACTIVE', lastSeenAt: 1 },
      ],
      180_000,
      DEFAULT_CONTROL_CONFIG,
    );
    expect(plan.disconnect).toEqual(['quiet']);
  });
  it('a disconnected framework is removed when its failover timeout ends; a deadline before the next sweep gets a timer', () => {
    const plan = planFailover(
      [
        { ...base, frameworkId: 'over', status: 'DISCONNECTED', disconnectedAt: 0 },
        { ...base, frameworkId: 'soon', status: 'DISCONNECTED', disconnectedAt: 20_000 },
        {
          ...base,
          frameworkId: 'later',
          status: 'DISCONNECTED',
          disconnectedAt: 20_000,
          failoverTimeoutSeconds: 3600,
        },
      ],
      30_000,
      DEFAULT_CONTROL_CONFIG,
    );
    expect(plan.remove).toEqual(['over']);
    expect(plan.timers).toEqual([{ frameworkId: 'soon', disconnectedAt: 20_000, delaySeconds: 20 }]);
  });
});

describe('disconnection and the failover timeout', () => {
  it('a silent framework is DISCONNECTED: its offers are taken back, its tasks kept, a timer started', async () => {
    const t = await setup();
    t.now += frameworkTimeoutMs(DEFAULT_CONTROL_CONFIG);
    // The other framework answered its heartbeats.
    await t.store.write([
      {
        kind: 'patch',
        table: 'frameworks',
        key: { frameworkId: 'other' },
        set: { lastSeenAt: t.now },
        expect: 'exists',
      },
    ]);
    const report = await checkFrameworks(t.deps);
    expect(report.disconnected).toBe(1);
    const f = await framework(t, 'fw');
    expect(f.status).toBe('DISCONNECTED');
    expect(f.disconnectedAt).toBe(t.now);
    expect((await agent(t, 'a1')).offers).toEqual({});
    expect((await task(t, 'fw', 't1')).state).toBe('TASK_RUNNING');
    expect(t.bus.commands(agentQueue('a1'))).toEqual([]);
    expect(t.bus.sent.find((s) => s.body.type === 'FAILOVER_TIMEOUT')?.message.delaySeconds).toBe(600);
    // It gets no HEARTBEAT any more; the other framework does.
    expect(t.bus.events(fwQueue('fw')).filter((e) => e.type === 'HEARTBEAT')).toEqual([]);
    expect(t.bus.events(fwQueue('other')).filter((e) => e.type === 'HEARTBEAT')).toHaveLength(1);
  });

  it('a framework whose event queue is gone is disconnected at the next sweep', async () => {
    const t = await setup();
    const send = t.bus.send.bind(t.bus);
    t.bus.send = async (q, m) => {
      if (q === fwQueue('fw')) throw new QueueGoneError('gone');
      return send(q, m);
    };
    await checkFrameworks(t.deps);
    expect((await framework(t, 'fw')).status).toBe('DISCONNECTED');
  });

  it('SchedulerReregisterAfterFailoverTimeout: when the timeout ends its tasks are killed and it cannot subscribe again', async () => {
    const t = await setup();
    t.now += frameworkTimeoutMs(DEFAULT_CONTROL_CONFIG);
    await disconnectFramework(t.deps, 'fw', 'test');
    const disconnectedAt = (await framework(t, 'fw')).disconnectedAt!;
    // Too early: nothing.
    await onFailoverTimeout(t.deps, { frameworkId: 'fw', disconnectedAt });
    expect((await framework(t, 'fw')).status).toBe('DISCONNECTED');
    t.now += 600_000;
    await onFailoverTimeout(t.deps, { frameworkId: 'fw', disconnectedAt });
    const f = await framework(t, 'fw');
    expect(f.status).toBe('TORN_DOWN');
    expect(f.removedReason).toBe('failover timeout');
    expect(t.bus.commands(agentQueue('a1'))).toEqual([
      { v: 1, type: 'KILL', frameworkId: 'fw', taskId: 't1' },
    ]);
    await call(t, {
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: 'fw',
        name: 'fw',
        roles: ['*'],
        failoverTimeoutSeconds: 0,
        queueUrl: fwQueue('fw'),
        partitionAware: false,
      },
    });
    expect(t.bus.events(fwQueue('fw')).filter((e) => e.type === 'ERROR' || e.type === 'SUBSCRIBED')).toEqual([
      expect.objectContaining({ type: 'ERROR', code: 'FRAMEWORK_TORN_DOWN', call: 'SUBSCRIBE' }),
    ]);
  });

  it('a failover timeout of 0 (the default) removes the framework as soon as it disconnects', async () => {
    const t = await setup({ failoverTimeoutSeconds: 0 });
    t.now += frameworkTimeoutMs(DEFAULT_CONTROL_CONFIG);
    await checkFrameworks(t.deps);
    expect((await framework(t, 'fw')).status).toBe('TORN_DOWN');
  });

  it('a stale timer (the framework came back and left again) changes nothing', async () => {
    const t = await setup();
    await disconnectFramework(t.deps, 'fw', 'test', { force: true });
    t.now += 10 ** 9;
    await onFailoverTimeout(t.deps, { frameworkId: 'fw', disconnectedAt: 1 });
    expect((await framework(t, 'fw')).status).toBe('DISCONNECTED');
  });

  it('TEARDOWN removes at once, and a redelivered TEARDOWN sends the same kills (deduplicated)', async () => {
    const t = await setup();
    await call(t, { type: 'TEARDOWN', frameworkId: 'fw' }, 'td-1');
    await call(t, { type: 'TEARDOWN', frameworkId: 'fw' }, 'td-1');
    expect((await framework(t, 'fw')).status).toBe('TORN_DOWN');
    expect(t.bus.commands(agentQueue('a1'))).toHaveLength(2);
    expect(t.bus.deduplicated(agentQueue('a1'))).toHaveLength(1);
    expect(await removeFramework(t.deps, 'nope', 'x', 'x')).toBe('unknown');
  });
});

describe('a framework that comes back', () => {
  const resubscribe = (t: TestControl, queue: string, messageId = 'sub-2') =>
    call(
      t,
      {
        type: 'SUBSCRIBE',
        framework: {
          frameworkId: 'fw',
          name: 'fw',
          roles: ['*'],
          failoverTimeoutSeconds: 600,
          queueUrl: queue,
          partitionAware: false,
        },
      },
      messageId,
    );

  it('SchedulerFailover: the new process (on the queue derived from its id) is ACTIVE again and is not told it failed over', async () => {
    const t = await setup();
    await disconnectFramework(t.deps, 'fw', 'test', { force: true });
    await resubscribe(t, fwQueue('fw'));
    const f = await framework(t, 'fw');
    expect(f).toMatchObject({ status: 'ACTIVE', queueUrl: fwQueue('fw'), disconnectedAt: null });
    const events = t.bus.events(fwQueue('fw'));
    expect(events.find((e) => e.type === 'SUBSCRIBED')).toMatchObject({ frameworkId: 'fw' });
    // The queue is shared with the old process: an ERROR there would reach the new one.
    expect(events.some((e) => e.type === 'ERROR')).toBe(false);
    expect(t.bus.sent.some((s) => s.body.type === 'ALLOCATE')).toBe(true);
  });

  it('SchedulerFailover: a record stored with another queue URL (the origin changed) has that queue told "Framework failed over"', async () => {
    const old = 'http://sqs.old/000/meso-fw-fw.fifo';
    const t = await setup({ queueUrl: old });
    await resubscribe(t, fwQueue('fw'));
    expect((await framework(t, 'fw')).queueUrl).toBe(fwQueue('fw'));
    expect(t.bus.events(old)).toContainEqual(
      expect.objectContaining({
        type: 'ERROR',
        code: 'FRAMEWORK_FAILED_OVER',
        message: 'Framework failed over',
      }),
    );
  });

  it('SchedulerFailoverStatusUpdate: the new queue gets the latest status of each live task, uuid and all, and recent terminal ones', async () => {
    const t = await setup();
    t.now += 11 * 60_000; // t2 ended 11 minutes ago: its agent stopped resending long since
    await putTask(t, 'fw', 't3', 'a1', 'TASK_FAILED'); // ended just now
    await resubscribe(t, fwQueue('fw'));
    const updates = t.bus.events(fwQueue('fw')).filter((e) => e.type === 'UPDATE');
    expect(updates).toEqual([
      {
        v: 1,
        type: 'UPDATE',
        status: expect.objectContaining({ taskId: 't1', state: 'TASK_RUNNING', uuid: 'u-t1-TASK_RUNNING' }),
      },
      {
        v: 1,
        type: 'UPDATE',
        status: expect.objectContaining({ taskId: 't3', state: 'TASK_FAILED', uuid: 'u-t3-TASK_FAILED' }),
      },
    ]);
  });

  it('offers outstanding stay with a framework that subscribes again on its own queue (a resend cannot be told from a new process)', async () => {
    const t = await setup();
    await resubscribe(t, fwQueue('fw'));
    expect(Object.keys((await agent(t, 'a1')).offers)).toEqual(['o1@a1']);
    expect(t.bus.events(fwQueue('fw')).some((e) => e.type === 'RESCIND')).toBe(false);
  });

  it('offers outstanding are rescinded when the stored queue was another (the old process had them)', async () => {
    const t = await setup({ queueUrl: 'http://sqs.old/000/meso-fw-fw.fifo' });
    await resubscribe(t, fwQueue('fw'));
    expect((await agent(t, 'a1')).offers).toEqual({});
    expect(t.bus.events(fwQueue('fw'))).toContainEqual({ v: 1, type: 'RESCIND', offerId: 'o1@a1' });
  });

  it('a redelivered SUBSCRIBE sends the same messages under the same deduplication ids', async () => {
    const t = await setup();
    await resubscribe(t, fwQueue('fw'), 'sub-x');
    await resubscribe(t, fwQueue('fw'), 'sub-x');
    const q = fwQueue('fw');
    const kept = t.bus.deduplicated(q).map((s) => s.body.type);
    expect(kept.filter((k) => k === 'SUBSCRIBED')).toHaveLength(1);
    expect(kept.filter((k) => k === 'UPDATE')).toHaveLength(2);
    expect(t.bus.to(q).filter((s) => s.body.type === 'UPDATE')).toHaveLength(4);
  });
});

describe('calls of a disconnected framework', () => {
  /** An ACCEPT launching task `late` on offer o1@a1. */
  const acceptLate = (t: TestControl) =>
    call(t, {
      type: 'ACCEPT',
      frameworkId: 'fw',
      offerIds: ['o1@a1'],
      operations: [
        {
          type: 'LAUNCH',
          tasks: [{ taskId: 'late', agentId: 'a1', resources: { cpus: 1 }, command: { value: 'true' } }],
        },
      ],
    });

  it('DisconnectedSchedulerLaunchLost: a launch gets TASK_LOST (REASON_MASTER_DISCONNECTED) and an ERROR to subscribe again', async () => {
    const t = await setup();
    await disconnectFramework(t.deps, 'fw', 'test', { force: true });
    await acceptLate(t);
    const events = t.bus.events(fwQueue('fw'));
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'UPDATE',
        status: expect.objectContaining({
          taskId: 'late',
          state: 'TASK_LOST',
          reason: 'REASON_MASTER_DISCONNECTED',
          source: 'SOURCE_MASTER',
        }),
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'ERROR', code: 'FRAMEWORK_DISCONNECTED', call: 'ACCEPT' }),
    );
    expect(await task(t, 'fw', 'late')).toBeUndefined();
  });

  it('DisconnectedSchedulerLaunchDropped: partition-aware frameworks get TASK_DROPPED', async () => {
    const t = await setup({ partitionAware: true });
    await disconnectFramework(t.deps, 'fw', 'test', { force: true });
    await acceptLate(t);
    expect(t.bus.events(fwQueue('fw'))).toContainEqual(
      expect.objectContaining({
        status: expect.objectContaining({ state: 'TASK_DROPPED', reason: 'REASON_MASTER_DISCONNECTED' }),
      }),
    );
  });

  it('a HEARTBEAT call keeps a framework connected; calls are counted at most every half period', async () => {
    const t = await setup();
    t.now += 29_000;
    await call(t, { type: 'HEARTBEAT', frameworkId: 'fw' });
    expect((await framework(t, 'fw')).lastSeenAt).toBe(t.now - 29_000); // not yet worth a write
    t.now += 2_000;
    await call(t, { type: 'HEARTBEAT', frameworkId: 'fw' });
    expect((await framework(t, 'fw')).lastSeenAt).toBe(t.now);
  });
});

describe('KILL and RECONCILE', () => {
  it('UnknownKillTask: a KILL of an unknown task is answered as reconciliation answers it', async () => {
    const t = await setup();
    await call(t, { type: 'KILL', frameworkId: 'fw', taskId: 'ghost', agentId: 'a1' });
    expect(t.bus.events(fwQueue('fw'))).toEqual([
      expect.objectContaining({
        type: 'UPDATE',
        status: expect.objectContaining({
          taskId: 'ghost',
          state: 'TASK_LOST',
          reason: 'REASON_RECONCILIATION',
        }),
      }),
    ]);
  });

  it('a KILL for a task on an unreachable agent is remembered and also waits in its queue', async () => {
    const t = await setup();
    const a = await agent(t, 'a1');
    await t.store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: 'a1' },
        set: { status: 'UNREACHABLE', unreachableAt: t.now },
        expect: a.version,
      },
    ]);
    await call(t, { type: 'KILL', frameworkId: 'fw', taskId: 't1' });
    expect((await task(t, 'fw', 't1')).killRequested).toBe(true);
    expect(t.bus.commands(agentQueue('a1'))).toEqual([
      { v: 1, type: 'KILL', frameworkId: 'fw', taskId: 't1' },
    ]);
  });

  it('ImplicitNonTerminalTask / ImplicitTerminalTask: implicit reconciliation names every task that has not ended, and only those', async () => {
    const t = await setup();
    await putTask(t, 'fw', 't3', 'a1', 'TASK_UNREACHABLE');
    await call(t, { type: 'RECONCILE', frameworkId: 'fw', tasks: [] });
    const updates = t.bus.events(fwQueue('fw')).filter((e) => e.type === 'UPDATE');
    expect(
      updates.map((u) => (u.type === 'UPDATE' ? [u.status.taskId, u.status.state, u.status.reason] : [])),
    ).toEqual([['t1', 'TASK_RUNNING', 'REASON_RECONCILIATION']]);
  });

  it('explicit reconciliation: the latest known state of each named task, the unknown-task answer for the rest', async () => {
    const t = await setup({ partitionAware: true });
    await call(t, {
      type: 'RECONCILE',
      frameworkId: 'fw',
      tasks: [{ taskId: 't1' }, { taskId: 't2' }, { taskId: 'never', agentId: 'a1' }, { taskId: 'nowhere' }],
    });
    const states = Object.fromEntries(
      t.bus
        .events(fwQueue('fw'))
        .flatMap((e) => (e.type === 'UPDATE' ? [[e.status.taskId, e.status.state]] : [])),
    );
    expect(states).toEqual({
      t1: 'TASK_RUNNING',
      t2: 'TASK_FINISHED',
      never: 'TASK_GONE',
      nowhere: 'TASK_UNKNOWN',
    });
  });
});

describe('a framework with its own short heartbeat interval (meso run)', () => {
  const subscribe = (t: TestControl, over: Record<string, unknown> = {}, messageId = 'sub-1') =>
    call(
      t,
      {
        type: 'SUBSCRIBE',
        framework: {
          frameworkId: 'run',
          name: 'meso-run',
          roles: ['*'],
          failoverTimeoutSeconds: 0,
          queueUrl: fwQueue('run'),
          partitionAware: false,
          heartbeatIntervalSeconds: 2,
          ...over,
        },
      },
      messageId,
    );
  const checks = (t: TestControl) =>
    t.bus.to(Q.timers).filter((s) => s.body.type === 'FRAMEWORK_CHECK' && s.body.frameworkId === 'run');
  const fire = (t: TestControl) =>
    handleTimer(t.deps, record({ v: 1, type: 'FRAMEWORK_CHECK', frameworkId: 'run' }, 'timers'));

  it('SUBSCRIBED grants it, and a FRAMEWORK_CHECK timer watches its silence from the start', async () => {
    const t = testControl();
    await subscribe(t);
    const subscribed = t.bus.events(fwQueue('run')).find((e) => e.type === 'SUBSCRIBED');
    expect(subscribed).toMatchObject({ heartbeatIntervalSeconds: 2 });
    expect((await framework(t, 'run')).heartbeatIntervalSeconds).toBe(2);
    expect(checks(t).map((s) => s.message.delaySeconds)).toEqual([6]);
  });

  it('one no shorter than the cluster’s is the cluster’s: no timers, the sweep watches it', async () => {
    const t = testControl();
    await subscribe(t, { heartbeatIntervalSeconds: 120 });
    expect(t.bus.events(fwQueue('run')).find((e) => e.type === 'SUBSCRIBED')).toMatchObject({
      heartbeatIntervalSeconds: 60,
    });
    expect((await framework(t, 'run')).heartbeatIntervalSeconds).toBeUndefined();
    expect(checks(t)).toEqual([]);
  });

  it('one shorter than the protocol allows is refused', async () => {
    const t = testControl();
    await subscribe(t, { heartbeatIntervalSeconds: 1 });
    expect(t.bus.events(fwQueue('run'))).toContainEqual(
      expect.objectContaining({ type: 'ERROR', call: 'SUBSCRIBE' }),
    );
    expect(await t.store.get('frameworks', { frameworkId: 'run' })).toBeUndefined();
  });

  it('its HEARTBEAT calls keep it ACTIVE, each counted one re-arming the timer', async () => {
    const t = testControl();
    await subscribe(t);
    for (let i = 0; i < 5; i++) {
      t.now += 2_000;
      await call(t, { type: 'HEARTBEAT', frameworkId: 'run' });
      await fire(t);
    }
    expect((await framework(t, 'run')).status).toBe('ACTIVE');
    expect(checks(t)).toHaveLength(6);
  });

  it('silent for three of its periods (6 s), it is disconnected by the timer, and (failover timeout 0) removed: its offers back, its task killed', async () => {
    const t = testControl();
    await subscribe(t);
    await putAgent(t, 'a1', {
      offers: {
        'o1@a1': {
          offerId: 'o1@a1',
          frameworkId: 'run',
          resources: parse('cpus:1'),
          expiresAt: t.now + 60_000,
        },
      },
    });
    await putTask(t, 'run', 't1', 'a1');
    t.now += 5_999;
    await fire(t);
    expect((await framework(t, 'run')).status).toBe('ACTIVE');
    t.now += 1;
    await fire(t);
    expect((await framework(t, 'run')).status).toBe('TORN_DOWN');
    expect((await t.store.get('agents', { agentId: 'a1' }))?.offers).toEqual({});
    expect(t.bus.commands(agentQueue('a1'))).toContainEqual(
      expect.objectContaining({ type: 'KILL', frameworkId: 'run', taskId: 't1' }),
    );
  });

  it('with a failover timeout it is only disconnected (offers taken back), and can come back within it', async () => {
    const t = testControl();
    await subscribe(t, { failoverTimeoutSeconds: 5 });
    t.now += 6_000;
    await fire(t);
    expect((await framework(t, 'run')).status).toBe('DISCONNECTED');
    expect(t.bus.to(Q.timers).find((s) => s.body.type === 'FAILOVER_TIMEOUT')?.message.delaySeconds).toBe(5);
    await subscribe(t, { failoverTimeoutSeconds: 5 }, 'sub-2');
    expect((await framework(t, 'run')).status).toBe('ACTIVE');
  });

  it('the sweep disconnects it too if its timer was lost', async () => {
    const t = testControl();
    await subscribe(t, { failoverTimeoutSeconds: 5 });
    t.now += 6_000;
    await checkFrameworks(t.deps);
    expect((await framework(t, 'run')).status).toBe('DISCONNECTED');
  });
});
