/**
 * Timers are delays, the deadlines they stand for are times (lib/control/timers.ts): after the
 * clock steps back, a timer arrives before its deadline. One that names its deadline waits again
 * for the rest instead of nudging a cycle that would still find the deadline ahead — and then
 * nothing would look again.
 */
import { describe, expect, it } from 'vitest';
import { setFilters } from '../../../lib/control/scheduler/filters.ts';
import { handleTimer } from '../../../lib/control/timers.ts';
import type { FrameworkRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import type { Item } from '../../../lib/ports/store.ts';
import { putAgent, putFramework, Q, type Sent, type TestControl, testControl } from './helpers.ts';

let delivered = 0;
/** Delivers `timer` as the timers queue does once its delay has passed. */
const deliver = (t: TestControl, timer: Sent) =>
  handleTimer(t.deps, {
    messageId: `timer-${++delivered}`,
    body: timer.message.body,
    senderId: 'control-plane',
    receiveCount: 1,
  });

const framework = async (t: TestControl, id: string) =>
  (await t.store.get<FrameworkRecord & Item>('frameworks', { frameworkId: id }))!;

describe('timers that arrive before their deadline', () => {
  it('a filter set while the clock was ahead: its timer waits again, then nudges the allocator', async () => {
    const t = testControl();
    const start = t.now;
    await putAgent(t, 'a1');
    await putFramework(t, 'fw');
    // A DECLINE refuses a1 for 10 s while the clock runs 30 s ahead.
    t.now = start + 30_000;
    await setFilters(t.deps, await framework(t, 'fw'), [{ agentId: 'a1', resources: parse('cpus:1') }], 10);
    const timer = t.bus.to(Q.timers).at(-1)!;
    expect(timer.body).toMatchObject({ type: 'FILTER_EXPIRED', until: start + 40_000 });
    expect(timer.message.delaySeconds).toBe(10);
    // Stepped back: the delay runs out at start + 10 s, 30 s before the filter ends.
    t.now = start + 10_000;
    await deliver(t, timer);
    expect(t.bus.to(Q.allocator)).toEqual([]);
    const again = t.bus.to(Q.timers).at(-1)!;
    expect(again).not.toBe(timer);
    expect(again.body).toEqual(timer.body);
    expect(again.message.delaySeconds).toBe(30);
    t.now += 30_000;
    await deliver(t, again);
    expect(t.bus.to(Q.allocator).map((s) => s.body)).toMatchObject([{ type: 'ALLOCATE', shard: 0 }]);
    expect(t.bus.to(Q.timers)).toHaveLength(2);
  });

  it('a timer with no deadline (sent before timers named one), or one past it, nudges at once', async () => {
    const t = testControl();
    const old = { v: 1, type: 'FILTER_EXPIRED', frameworkId: 'fw', agentId: 'a1' };
    await handleTimer(t.deps, {
      messageId: 'm1',
      body: JSON.stringify(old),
      senderId: 'cp',
      receiveCount: 1,
    });
    const due = { v: 1, type: 'OFFERS_EXPIRE', shard: 0, expiresAt: t.now };
    await handleTimer(t.deps, {
      messageId: 'm2',
      body: JSON.stringify(due),
      senderId: 'cp',
      receiveCount: 1,
    });
    expect(t.bus.to(Q.allocator)).toHaveLength(2);
    expect(t.bus.to(Q.timers)).toEqual([]);
  });

  it('a deadline further away than the timer could ever be is not waited for: the cycle judges it', async () => {
    const t = testControl({ offerTimeoutSeconds: 30 });
    const far = { v: 1, type: 'OFFERS_EXPIRE', shard: 0, expiresAt: t.now + 3_600_000 };
    await handleTimer(t.deps, {
      messageId: 'm1',
      body: JSON.stringify(far),
      senderId: 'cp',
      receiveCount: 1,
    });
    expect(t.bus.to(Q.allocator)).toHaveLength(1);
    expect(t.bus.to(Q.timers)).toEqual([]);
  });
});
