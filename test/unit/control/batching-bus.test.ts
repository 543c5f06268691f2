import { describe, expect, it } from 'vitest';
import { BatchingBus } from '../../../lib/control/batching-bus.ts';
import { type Bus, type OutboundMessage, QueueGoneError } from '../../../lib/ports/bus.ts';

/** A bus that records each call; queues named in `gone` no longer exist, `fail` ones throw. */
function recordingBus(opts: { gone?: string[]; fail?: string[] } = {}) {
  const calls: { queueUrl: string; bodies: string[] }[] = [];
  const bus: Bus = {
    async send(queueUrl: string, messages: readonly OutboundMessage[]) {
      if (opts.gone?.includes(queueUrl)) throw new QueueGoneError(queueUrl);
      if (opts.fail?.includes(queueUrl)) throw new Error('throttled');
      calls.push({ queueUrl, bodies: messages.map((m) => m.body) });
    },
  };
  return { bus, calls };
}
const m = (body: string): OutboundMessage => ({ body, groupId: 'g', dedupId: body });

describe('BatchingBus', () => {
  it('holds deferred messages and sends them in one call per queue, in order', async () => {
    const { bus, calls } = recordingBus();
    const b = new BatchingBus(bus, () => {});
    b.defer('q1', [m('a')]);
    b.defer('q2', [m('x')]);
    b.defer('q1', [m('b'), m('c')]);
    expect(calls).toEqual([]);
    await b.finish();
    expect(calls).toEqual([
      { queueUrl: 'q1', bodies: ['a', 'b', 'c'] },
      { queueUrl: 'q2', bodies: ['x'] },
    ]);
  });

  it('sends more than ten messages for one queue ten at a time, in order', async () => {
    const { bus, calls } = recordingBus();
    const b = new BatchingBus(bus, () => {});
    const bodies = Array.from({ length: 12 }, (_, i) => `m${i}`);
    for (const body of bodies) b.defer('q', [m(body)]);
    await b.finish();
    expect(calls.map((c) => c.bodies)).toEqual([bodies.slice(0, 10), bodies.slice(10)]);
  });

  it('keeps only the first message of a once-key until the next flush', async () => {
    const { bus, calls } = recordingBus();
    const b = new BatchingBus(bus, () => {});
    b.defer('alloc', [m('n1')], 'shard-0');
    b.defer('alloc', [m('n2')], 'shard-0');
    b.defer('alloc', [m('n3')], 'shard-1');
    await b.flush();
    b.defer('alloc', [m('n4')], 'shard-0');
    await b.finish();
    expect(calls.map((c) => c.bodies)).toEqual([['n1', 'n3'], ['n4']]);
  });

  it('sends what it holds before a direct send, so order is kept', async () => {
    const { bus, calls } = recordingBus();
    const b = new BatchingBus(bus, () => {});
    b.defer('q', [m('held')]);
    await b.send('q', [m('direct')]);
    expect(calls.map((c) => c.bodies)).toEqual([['held'], ['direct']]);
  });

  it('runs afterFlush work only once the held messages are out, and sends what it defers', async () => {
    const { bus, calls } = recordingBus();
    const b = new BatchingBus(bus, () => {});
    const seen: number[] = [];
    b.defer('q', [m('update')]);
    b.afterFlush(async () => {
      seen.push(calls.length);
      b.defer('q', [m('follow-up')]);
    });
    await b.finish();
    expect(seen).toEqual([1]);
    expect(calls.map((c) => c.bodies)).toEqual([['update'], ['follow-up']]);
  });

  it('drops messages to a queue that is gone (and says so) but throws on any other failure', async () => {
    const { bus, calls } = recordingBus({ gone: ['fw-gone'], fail: ['broken'] });
    const gone: [string, number][] = [];
    const b = new BatchingBus(bus, (q, n) => gone.push([q, n]));
    b.defer('fw-gone', [m('a'), m('b')]);
    b.defer('ok', [m('c')]);
    await b.finish();
    expect(gone).toEqual([['fw-gone', 2]]);
    expect(calls).toEqual([{ queueUrl: 'ok', bodies: ['c'] }]);
    b.defer('broken', [m('d')]);
    await expect(b.finish()).rejects.toThrow('throttled');
  });

  it('still runs afterFlush work when a send failed, then reports the failure', async () => {
    const { bus, calls } = recordingBus({ fail: ['broken'] });
    const b = new BatchingBus(bus, () => {});
    let ran = false;
    b.defer('broken', [m('update')]);
    b.afterFlush(async () => {
      ran = true;
      b.defer('ok', [m('follow-up')]);
    });
    await expect(b.finish()).rejects.toThrow('throttled');
    expect(ran).toBe(true);
    expect(calls).toEqual([{ queueUrl: 'ok', bodies: ['follow-up'] }]);
  });
});
