import { describe, expect, it } from 'vitest';
import { AllocationPacer } from '../../../lib/control/allocation-interval.ts';

/** A pacer on a fake clock whose sleep advances the clock (and records how long it slept). */
function pacer(intervalMs = 1000) {
  let now = 10_000;
  const slept: number[] = [];
  const p = new AllocationPacer({
    intervalMs,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  });
  return { p, slept, advance: (ms: number) => (now += ms), now: () => now };
}

describe('AllocationPacer', () => {
  it('runs the first nudge of a shard at once', async () => {
    const { p, slept, now } = pacer();
    expect(await p.admit(0, now())).toBe(now());
    expect(slept).toEqual([]);
  });

  it('drops a batch whose nudges were all sent before the last completed cycle began', async () => {
    const { p, advance, now } = pacer();
    const sentEarly = now() - 500;
    const start = (await p.admit(0, now()))!;
    p.completed(0, start);
    advance(50);
    expect(await p.admit(0, sentEarly)).toBeUndefined();
  });

  it('waits out the interval for a nudge sent after the last cycle began', async () => {
    const { p, slept, advance, now } = pacer();
    const start = (await p.admit(0, now()))!;
    p.completed(0, start);
    advance(300);
    const next = await p.admit(0, now());
    expect(slept).toEqual([700]);
    expect(next).toBe(start + 1000);
  });

  it('forgets a last cycle ahead of a clock that went back: the next nudge runs at once, none is dropped', async () => {
    const { p, slept, advance, now } = pacer();
    const start = (await p.admit(0, now()))!;
    p.completed(0, start);
    advance(-30_000); // the clock went back 30 s
    const sent = now() + 10; // a nudge sent after the step, on the queue's clock
    advance(20);
    expect(await p.admit(0, sent)).toBe(now());
    expect(slept).toEqual([]);
  });

  it('runs at once after an idle interval', async () => {
    const { p, slept, advance, now } = pacer();
    p.completed(0, (await p.admit(0, now()))!);
    advance(5000);
    expect(await p.admit(0, now())).toBe(now());
    expect(slept).toEqual([]);
  });

  it('does not drop a batch again after a cycle that failed (never completed)', async () => {
    const { p, advance, now } = pacer();
    const sent = now();
    await p.admit(0, sent); // the cycle then throws: completed() is never called
    advance(10);
    expect(await p.admit(0, sent)).toBeDefined();
  });

  it('runs a redelivered batch even when it looks served, and keeps shards apart', async () => {
    const { p, advance, now } = pacer();
    const sent = now() - 1000;
    p.completed(0, (await p.admit(0, now()))!);
    advance(2000);
    expect(await p.admit(0, sent, true)).toBeDefined();
    expect(await p.admit(1, sent)).toBeDefined();
  });

  it('does not take a nudge within the clock allowance before a cycle as served by it', async () => {
    const { p, advance, now } = pacer();
    const start = (await p.admit(0, now()))!;
    p.completed(0, start);
    advance(2000);
    expect(await p.admit(0, start - 50)).toBeDefined();
  });

  it('with interval 0 never waits', async () => {
    const { p, slept, now } = pacer(0);
    p.completed(0, (await p.admit(0, now()))!);
    expect(await p.admit(0, now())).toBeDefined();
    expect(slept).toEqual([]);
  });
});
