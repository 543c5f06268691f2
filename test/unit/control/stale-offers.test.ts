/**
 * Offers an allocation cycle takes back although they have not reached their expiry
 * (lib/core/offer-expiry.ts): offers made while the clock was ahead of where it is now, and
 * offers a framework still holds after it went away. Either would otherwise hold its agent's
 * resources past the expiry timer, so that a framework subscribing meanwhile got no offer.
 */
import { describe, expect, it } from 'vitest';
import { AgentView } from '../../../lib/control/agent-view.ts';
import { runAllocationCycle } from '../../../lib/control/allocation.ts';
import { handleTimer } from '../../../lib/control/timers.ts';
import type { AgentRecord, OfferRecord } from '../../../lib/core/model.ts';
import { CLOCK_AHEAD_MS, offerEnd } from '../../../lib/core/offer-expiry.ts';
import { parse } from '../../../lib/core/resources.ts';
import type { Item } from '../../../lib/ports/store.ts';
import type { SchedulerEvent } from '../../../lib/protocol/index.ts';
import { fwQueue, putAgent, putFramework, Q, type Sent, type TestControl, testControl } from './helpers.ts';

const TIMEOUT_S = 30;

const agent = async (t: TestControl) => (await t.store.get<AgentRecord & Item>('agents', { agentId: 'a1' }))!;
const offersTo = (t: TestControl, fw: string) =>
  t.bus
    .events(fwQueue(fw))
    .flatMap((e: SchedulerEvent) => (e.type === 'OFFERS' ? e.offers : []))
    .map((o) => o.offerId);
const rescindsTo = (t: TestControl, fw: string) =>
  t.bus.events(fwQueue(fw)).flatMap((e: SchedulerEvent) => (e.type === 'RESCIND' ? [e.offerId] : []));

/** Delivers the last timer started, as the timers queue does once its delay has passed. */
async function fireLastTimer(t: TestControl): Promise<Sent> {
  const timer = t.bus.to(Q.timers).at(-1)!;
  await handleTimer(t.deps, {
    messageId: `timer-${t.bus.sent.length}`,
    body: timer.message.body,
    senderId: 'cp',
    receiveCount: 1,
  });
  return timer;
}

describe('stale offers', () => {
  it('after the clock steps back, the next cycle takes back what a cycle made while it was ahead', async () => {
    const t = testControl({ offerTimeoutSeconds: TIMEOUT_S });
    const view = new AgentView();
    const start = t.now;
    await putAgent(t, 'a1', { total: parse('cpus:2;mem:1024') });
    await putFramework(t, 'fw-a');
    // The clock runs 31 s ahead while a cycle offers the agent to fw-a…
    t.now = start + 31_000;
    expect((await runAllocationCycle(t.deps, 0, { view })).offers).toBe(1);
    const [first] = offersTo(t, 'fw-a');
    expect(first).toBeDefined();
    // …then steps back, and a cycle runs (any nudge: a framework subscribing, a task ending).
    t.now = start + 1_000;
    const report = await runAllocationCycle(t.deps, 0, { view });
    // It takes the offer back and offers the resources again, to expire one timeout from now.
    expect(report.expired).toBe(1);
    expect(rescindsTo(t, 'fw-a')).toEqual([first]);
    expect(report.offers).toBe(1);
    const offers = Object.values((await agent(t)).offers);
    expect(offers).toHaveLength(1);
    expect(offers[0]!.offerId).not.toBe(first);
    expect(offers[0]!.expiresAt).toBe(t.now + TIMEOUT_S * 1000);
    expect(t.counters.get('StaleOffersRescinded{why=clock-ahead}')).toBe(1);
  });

  it('an expiry timer that fires before its offers expire (the clock went back) waits again, then they are rescinded', async () => {
    const t = testControl({ offerTimeoutSeconds: TIMEOUT_S });
    const view = new AgentView();
    const start = t.now;
    await putAgent(t, 'a1', { total: parse('cpus:2;mem:1024') });
    await putFramework(t, 'fw-a');
    t.now = start + 20_000;
    await runAllocationCycle(t.deps, 0, { view });
    const [first] = offersTo(t, 'fw-a');
    // Stepped back 20 s: the timer's delay runs out 20 s before the offers' expiry, which is
    // within an offer timeout, so no cycle would take them back yet.
    t.now = start + TIMEOUT_S * 1000;
    const nudges = t.bus.to(Q.allocator).length;
    const timer = await fireLastTimer(t);
    expect(timer.body).toMatchObject({ type: 'OFFERS_EXPIRE', shard: 0 });
    // No nudge: the timer is started again for the 20 s left.
    expect(t.bus.to(Q.allocator)).toHaveLength(nudges);
    const again = t.bus.to(Q.timers).at(-1)!;
    expect(again).not.toBe(timer);
    expect(again.body).toEqual(timer.body);
    expect(again.message.delaySeconds).toBe(20);
    t.now += 20_000;
    await fireLastTimer(t);
    expect(t.bus.to(Q.allocator).at(-1)!.body).toMatchObject({ type: 'ALLOCATE', shard: 0 });
    const report = await runAllocationCycle(t.deps, 0, { view });
    expect(report.expired).toBe(1);
    expect(rescindsTo(t, 'fw-a')).toEqual([first]);
  });

  it('a framework subscribing right after the clock stepped back is offered what a clock-ahead offer held', async () => {
    const t = testControl({ offerTimeoutSeconds: TIMEOUT_S });
    const view = new AgentView();
    const start = t.now;
    await putAgent(t, 'a1', { total: parse('cpus:2;mem:1024') });
    await putFramework(t, 'fw-a');
    t.now = start + 31_000;
    await runAllocationCycle(t.deps, 0, { view });
    // fw-a goes away (its removal took its offers back) and fw-b subscribes, after the step back.
    t.now = start + 1_000;
    await t.store.write([
      {
        kind: 'patch',
        table: 'frameworks',
        key: { frameworkId: 'fw-a' },
        set: { status: 'TORN_DOWN' },
        expect: 'exists',
      },
    ]);
    await putFramework(t, 'fw-b');
    // A cycle that read fw-a as ACTIVE wrote it one more offer (made by the clock ahead).
    const a = await agent(t);
    await t.store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: 'a1' },
        set: {
          offers: {
            late: {
              offerId: 'late',
              frameworkId: 'fw-a',
              role: '*',
              resources: a.total,
              expiresAt: start + 31_000 + TIMEOUT_S * 1000,
            } satisfies OfferRecord,
          },
        },
        expect: a.version,
      },
    ]);
    const report = await runAllocationCycle(t.deps, 0, { view });
    expect(report.expired).toBe(1);
    expect(offersTo(t, 'fw-b')).toHaveLength(1);
    expect(Object.values((await agent(t)).offers).map((o) => o.frameworkId)).toEqual(['fw-b']);
  });

  it('an offer a removed framework still holds is taken back before its expiry, and its resources offered', async () => {
    const t = testControl({ offerTimeoutSeconds: TIMEOUT_S });
    await putAgent(t, 'a1', { total: parse('cpus:2;mem:1024') });
    await putFramework(t, 'gone', { status: 'TORN_DOWN' });
    await putFramework(t, 'fw-b');
    const a = await agent(t);
    await t.store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: 'a1' },
        set: {
          offers: {
            stray: {
              offerId: 'stray',
              frameworkId: 'gone',
              role: '*',
              resources: a.total,
              expiresAt: t.now + TIMEOUT_S * 1000,
            } satisfies OfferRecord,
          },
        },
        expect: a.version,
      },
    ]);
    const report = await runAllocationCycle(t.deps, 0);
    expect(report.expired).toBe(1);
    expect(offersTo(t, 'fw-b')).toHaveLength(1);
    // Nothing is sent to a framework that is gone.
    expect(t.bus.to(fwQueue('gone'))).toEqual([]);
    expect(t.counters.get('StaleOffersRescinded{why=framework-away}')).toBe(1);
  });

  it('an offer from a clock a little ahead, of an active framework, stands', async () => {
    const t = testControl({ offerTimeoutSeconds: TIMEOUT_S });
    const start = t.now;
    await putAgent(t, 'a1', { total: parse('cpus:2;mem:1024') });
    await putFramework(t, 'fw-a');
    await putFramework(t, 'fw-b');
    // Made by an instance whose clock is 1 s ahead of this one's.
    t.now = start + 1_000;
    await runAllocationCycle(t.deps, 0);
    const before = (await agent(t)).offers;
    expect(Object.keys(before)).toHaveLength(1);
    t.now = start;
    const report = await runAllocationCycle(t.deps, 0);
    expect(report.expired).toBe(0);
    expect((await agent(t)).offers).toEqual(before);
    expect(t.bus.events(fwQueue('fw-a')).some((e) => e.type === 'RESCIND')).toBe(false);
    expect(t.bus.events(fwQueue('fw-b')).some((e) => e.type === 'RESCIND')).toBe(false);
  });

  it('offerEnd: expiry, a clock ahead by more than the allowance, a framework away', () => {
    const now = 1_000_000;
    const timeout = 30_000;
    expect(offerEnd({ expiresAt: now }, now, timeout)).toBe('expired');
    expect(offerEnd({ expiresAt: now + 1 }, now, timeout)).toBeUndefined();
    expect(offerEnd({ expiresAt: now + timeout + CLOCK_AHEAD_MS }, now, timeout)).toBeUndefined();
    expect(offerEnd({ expiresAt: now + timeout + CLOCK_AHEAD_MS + 1 }, now, timeout)).toBe('clock-ahead');
    expect(offerEnd({ expiresAt: now + 1 }, now, timeout, { status: 'ACTIVE' })).toBeUndefined();
    expect(offerEnd({ expiresAt: now + 1 }, now, timeout, { status: 'DISCONNECTED' })).toBe('framework-away');
    expect(offerEnd({ expiresAt: now + 1 }, now, timeout, { status: 'TORN_DOWN' })).toBe('framework-away');
  });
});
