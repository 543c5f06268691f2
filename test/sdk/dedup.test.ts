import { describe, expect, it } from 'vitest';
import type { SchedulerEvent } from '../../lib/protocol/scheduler.ts';
import { BoundedMap, dedupKey } from '../../lib/sdk/dedup.ts';

describe('BoundedMap', () => {
  it('forgets the oldest entries beyond its capacity', () => {
    const m = new BoundedMap<string, number>(3);
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) m.set(k, i);
    expect(m.size).toBe(3);
    expect(m.has('a')).toBe(false);
    expect(m.get('d')).toBe(3);
  });

  it('setting a key again makes it the newest', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2).set('a', 3).set('c', 4);
    expect(m.has('a')).toBe(true);
    expect(m.has('b')).toBe(false);
  });

  it('needs a positive capacity', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
  });
});

describe('dedupKey', () => {
  const update = (uuid?: string): SchedulerEvent => ({
    v: 1,
    type: 'UPDATE',
    status: {
      taskId: 't',
      frameworkId: 'f',
      agentId: 'a',
      state: 'TASK_RUNNING',
      source: 'SOURCE_AGENT',
      timestamp: 1,
      ...(uuid ? { uuid } : {}),
    },
  });

  it('keys updates by uuid, whatever message carried them', () => {
    expect(dedupKey(update('u1'), 'm1')).toBe(dedupKey(update('u1'), 'm2'));
    expect(dedupKey(update('u1'), 'm1')).not.toBe(dedupKey(update('u2'), 'm1'));
  });

  it('keys everything else by SQS message id', () => {
    expect(dedupKey(update(), 'm1')).toBe('message:m1');
    expect(dedupKey({ v: 1, type: 'HEARTBEAT' }, 'm1')).toBe('message:m1');
  });
});
