import { describe, expect, it } from 'vitest';
import { type StatusUpdateInput, StatusUpdateManager } from '../../agent/status-updates.ts';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import { ManualTimers } from './helpers.ts';

interface Sent {
  readonly status: TaskStatus;
  readonly attempt: number;
  readonly at: number;
}

function setup(opts: { retryIntervalMs?: number; maxRetryIntervalMs?: number; failSends?: number } = {}) {
  const timers = new ManualTimers();
  const sent: Sent[] = [];
  const errors: unknown[] = [];
  let n = 0;
  let failures = opts.failSends ?? 0;
  const manager = new StatusUpdateManager({
    send: async (status, attempt) => {
      sent.push({ status, attempt, at: timers.now });
      if (failures > 0) {
        failures--;
        throw new Error('SQS is down');
      }
    },
    ids: { next: () => `u${++n}` },
    clock: { now: () => 1_000_000 + timers.now },
    timers,
    retryIntervalMs: opts.retryIntervalMs,
    maxRetryIntervalMs: opts.maxRetryIntervalMs,
    onError: (e) => errors.push(e),
  });
  return { timers, sent, errors, manager };
}

const upd = (taskId: string, state: TaskStatus['state']): StatusUpdateInput => ({
  taskId,
  frameworkId: 'fw',
  agentId: 'a1',
  state,
  source: 'SOURCE_EXECUTOR',
});

const brief = (s: Sent) => `${s.status.taskId}:${s.status.state}:${s.status.uuid}#${s.attempt}@${s.at}`;

describe('StatusUpdateManager', () => {
  it('sends at once, stamped with a uuid and a timestamp', () => {
    const { manager, sent } = setup();
    const s = manager.update(upd('t1', 'TASK_RUNNING'));
    expect(s).toMatchObject({ uuid: 'u1', timestamp: 1_000_000, state: 'TASK_RUNNING' });
    expect(sent.map(brief)).toEqual(['t1:TASK_RUNNING:u1#0@0']);
    expect(manager.pending()).toEqual([s]);
  });

  it('resends an unacknowledged update with doubling backoff up to the maximum, until acked', () => {
    const { manager, sent, timers } = setup({ retryIntervalMs: 10_000, maxRetryIntervalMs: 60_000 });
    manager.update(upd('t1', 'TASK_RUNNING'));
    timers.advance(10 * 60_000);
    expect(sent.map((s) => [s.attempt, s.at])).toEqual([
      [0, 0],
      [1, 10_000],
      [2, 30_000],
      [3, 70_000],
      [4, 130_000], // capped at 60 s from here on
      [5, 190_000],
      [6, 250_000],
      [7, 310_000],
      [8, 370_000],
      [9, 430_000],
      [10, 490_000],
      [11, 550_000],
    ]);
    expect(sent.every((s) => s.status.uuid === 'u1')).toBe(true);
    expect(manager.acknowledge('fw', 't1', 'u1')).toBe(true);
    const count = sent.length;
    timers.advance(60 * 60_000);
    expect(sent.length).toBe(count);
    expect(manager.pending()).toEqual([]);
    expect(timers.size).toBe(0);
  });

  it('defaults to Mesos intervals: 10 s doubling to 10 min', () => {
    const { manager } = setup();
    expect([0, 1, 2, 5, 6, 7, 50].map((a) => manager.retryDelayMs(a))).toEqual([
      10_000, 20_000, 40_000, 320_000, 600_000, 600_000, 600_000,
    ]);
  });

  it("keeps each task's updates in order: only the head is in flight", () => {
    const { manager, sent, timers } = setup();
    const a1 = manager.update(upd('a', 'TASK_STARTING'));
    const a2 = manager.update(upd('a', 'TASK_RUNNING'));
    const a3 = manager.update(upd('a', 'TASK_FINISHED'));
    const b1 = manager.update(upd('b', 'TASK_STARTING'));
    expect(sent.map(brief)).toEqual(['a:TASK_STARTING:u1#0@0', 'b:TASK_STARTING:u4#0@0']);
    expect(manager.inFlight()).toEqual([a1, b1]);

    // Acknowledging an update that is queued but not at the head changes nothing.
    expect(manager.acknowledge('fw', 'a', a2.uuid!)).toBe(false);
    timers.advance(10_000);
    expect(sent.slice(2).map(brief)).toEqual(['a:TASK_STARTING:u1#1@10000', 'b:TASK_STARTING:u4#1@10000']);

    expect(manager.acknowledge('fw', 'a', a1.uuid!)).toBe(true);
    expect(sent.slice(4).map(brief)).toEqual(['a:TASK_RUNNING:u2#0@10000']);
    expect(manager.acknowledge('fw', 'a', a2.uuid!)).toBe(true);
    expect(manager.acknowledge('fw', 'a', a3.uuid!)).toBe(true);
    expect(sent.slice(5).map(brief)).toEqual(['a:TASK_FINISHED:u3#0@10000']);
    expect(manager.pending()).toEqual([b1]);
  });

  it('the next update of a stream starts its own backoff from the first interval', () => {
    const { manager, sent, timers } = setup({ retryIntervalMs: 100, maxRetryIntervalMs: 1000 });
    const first = manager.update(upd('a', 'TASK_STARTING'));
    manager.update(upd('a', 'TASK_RUNNING'));
    timers.advance(700); // resends at 100, 300, 700
    manager.acknowledge('fw', 'a', first.uuid!);
    timers.advance(100);
    expect(sent.slice(4).map(brief)).toEqual(['a:TASK_RUNNING:u2#0@700', 'a:TASK_RUNNING:u2#1@800']);
  });

  it('ignores acknowledgements for unknown uuids, tasks and frameworks', () => {
    const { manager, timers, sent } = setup();
    const s = manager.update(upd('t1', 'TASK_RUNNING'));
    expect(manager.acknowledge('fw', 't1', 'nope')).toBe(false);
    expect(manager.acknowledge('fw', 'other', s.uuid!)).toBe(false);
    expect(manager.acknowledge('other-fw', 't1', s.uuid!)).toBe(false);
    timers.advance(10_000);
    expect(sent.length).toBe(2);
    expect(manager.acknowledge('fw', 't1', s.uuid!)).toBe(true);
    expect(manager.acknowledge('fw', 't1', s.uuid!)).toBe(false); // a duplicate ack
  });

  it('keeps retrying when sending fails', async () => {
    const { manager, sent, timers, errors } = setup({ failSends: 2 });
    manager.update(upd('t1', 'TASK_RUNNING'));
    timers.advance(10_000);
    timers.advance(20_000);
    await Promise.resolve();
    expect(sent.map((s) => s.attempt)).toEqual([0, 1, 2]);
    expect(errors).toHaveLength(2);
    expect(manager.pending()).toHaveLength(1);
  });

  it('a send that throws synchronously is reported, not thrown', () => {
    const timers = new ManualTimers();
    const errors: unknown[] = [];
    const manager = new StatusUpdateManager({
      send: () => {
        throw new Error('boom');
      },
      timers,
      onError: (e) => errors.push(e),
    });
    expect(() => manager.update(upd('t1', 'TASK_RUNNING'))).not.toThrow();
    return Promise.resolve().then(() => expect(errors).toHaveLength(1));
  });

  it('retryNow resends every in-flight update at once', () => {
    const { manager, sent } = setup();
    manager.update(upd('a', 'TASK_RUNNING'));
    manager.update(upd('b', 'TASK_RUNNING'));
    manager.retryNow();
    expect(sent.map(brief)).toEqual([
      'a:TASK_RUNNING:u1#0@0',
      'b:TASK_RUNNING:u2#0@0',
      'a:TASK_RUNNING:u1#1@0',
      'b:TASK_RUNNING:u2#1@0',
    ]);
  });

  it('stop cancels all retries', () => {
    const { manager, sent, timers } = setup();
    manager.update(upd('a', 'TASK_RUNNING'));
    manager.stop();
    expect(timers.size).toBe(0);
    timers.advance(60 * 60_000);
    manager.update(upd('b', 'TASK_RUNNING'));
    expect(sent).toHaveLength(1);
  });
});
