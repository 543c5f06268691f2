/**
 * Offer filters against the emulators, with real agents and the real SDK: DECLINE with
 * refuse_seconds, REVIVE, SUPPRESS, and offer expiry with RESCIND.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainNow } from '../../lib/control/operator.ts';
import type { FrameworkRecord } from '../../lib/core/model.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { Offer } from '../../lib/protocol/index.ts';
import { eventually, type Harness, sleep, startHarness } from './harness.ts';

describe('offer filters', () => {
  let h: Harness;
  beforeAll(async () => {
    // Short offer timeout for the expiry test; the others answer every offer well within it.
    h = await startHarness({ agents: 1, control: { offerTimeoutSeconds: 4 } });
  });
  afterAll(async () => h?.stop());

  const fwRecord = (id: string) =>
    h.controlPlane.deps.store.get<FrameworkRecord & Item>('frameworks', { frameworkId: id });

  it('DECLINE with refuse_seconds keeps the agent from the framework that long, then offers it again', async () => {
    const { s, r } = await h.framework({ name: 'decliner' });
    const first = await r.takeOffer();
    const declinedAt = Date.now();
    await s.decline([first.offerId], 3);
    const again = await r.takeOffer(first.agentId);
    const waited = Date.now() - declinedAt;
    // Not before the filter ends (3 s, less a little clock slack), and it does come back.
    expect(waited).toBeGreaterThanOrEqual(2_500);
    expect(again.offerId).not.toBe(first.offerId);
    expect(again.resources).toEqual(first.resources);
    await s.decline([again.offerId], 0);
    await s.teardown();
  });

  it('an invalid refuse_seconds means the default (5 s); a huge one is capped', async () => {
    const { s, r } = await h.framework({ name: 'odd-decliner' });
    const o = await r.takeOffer();
    const before = Date.now();
    await s.decline([o.offerId], -1);
    const rec = await eventually(async () => {
      const f = await fwRecord(s.frameworkId);
      return f && Object.keys(f.filters).length > 0 ? f : undefined;
    }, 'the filter to be recorded');
    const until = rec.filters[o.agentId]!.until;
    expect(until - before).toBeGreaterThanOrEqual(4_000);
    expect(until - before).toBeLessThan(15_000);
    await s.revive();
    const o2 = await r.takeOffer(o.agentId);
    await s.decline([o2.offerId], 1e12);
    const capped = await eventually(async () => {
      const f = await fwRecord(s.frameworkId);
      return (f?.filters[o.agentId]?.until ?? 0) > until + 60_000 ? f : undefined;
    }, 'the capped filter');
    expect(capped.filters[o.agentId]!.until - Date.now()).toBeLessThanOrEqual(31_536_000_000);
    await s.teardown();
  });

  it('REVIVE clears filters: a long-declined agent is offered again at once', async () => {
    const { s, r } = await h.framework({ name: 'reviver' });
    const first = await r.takeOffer();
    await s.decline([first.offerId], 600);
    await sleep(1_500);
    expect(r.offers).toEqual([]); // filtered for 10 minutes
    const revivedAt = Date.now();
    await s.revive();
    const again = await r.takeOffer(first.agentId);
    expect(Date.now() - revivedAt).toBeLessThan(10_000);
    expect((await fwRecord(s.frameworkId))!.filters).toEqual({});
    await s.decline([again.offerId], 0);
    await s.teardown();
  });

  it('SUPPRESS stops offers (free resources stay unoffered) until REVIVE; explain says so', async () => {
    const { s, r } = await h.framework({ name: 'suppressor' });
    const first = await r.takeOffer();
    await s.suppress();
    await eventually(
      async () => ((await fwRecord(s.frameworkId))?.suppressedRoles ?? []).includes('*'),
      'the suppression',
    );
    await s.decline([first.offerId], 0); // no filter at all: only SUPPRESS keeps offers away
    await sleep(2_000);
    expect(r.offers).toEqual([]);
    const { explanation } = await explainNow(h.controlPlane.deps, { framework: s.frameworkId });
    expect(explanation.frameworks[0]!.findings[0]!.code).toBe('suppressed');
    await s.revive();
    const again = await r.takeOffer(first.agentId);
    expect((await fwRecord(s.frameworkId))!.suppressedRoles).toEqual([]);
    await s.decline([again.offerId], 0);
    await s.teardown();
  });

  it('an offer nobody answers expires: RESCIND after the offer timeout, then a new offer', async () => {
    const { s, r } = await h.framework({ name: 'sleeper' });
    const offer: Offer = await r.takeOffer();
    const t0 = Date.now();
    await r.until(() => r.rescinds.includes(offer.offerId));
    const after = Date.now() - t0;
    expect(after).toBeGreaterThanOrEqual(2_500);
    expect(offer.expiresAt - Date.now()).toBeLessThanOrEqual(0);
    const next = await r.takeOffer(offer.agentId);
    expect(next.offerId).not.toBe(offer.offerId);
    // Accepting the expired offer launches nothing.
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'late',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'true' },
        },
      ],
    );
    const dropped = await r.update('late');
    expect(dropped.state).toBe('TASK_DROPPED');
    await s.decline([next.offerId], 0);
    await s.teardown();
    expect(h.violations).toEqual([]);
  });
});
