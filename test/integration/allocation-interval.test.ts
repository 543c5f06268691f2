/**
 * The allocation interval against the emulators, with real agents: two frameworks that launch one
 * task per offer and decline every leftover with `refuseSeconds: 0` get the DRF split of the
 * cluster, and once it is full the leftovers they keep declining are offered again once per
 * cycle — not every few milliseconds, each time holding the leftover as an outstanding offer that
 * counts in the decliner's share.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Offer } from '../../lib/protocol/index.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { type Harness, startHarness } from './harness.ts';

const TASK = { cpus: 0.5, mem: 64 };
const SLOTS = 8; // 2 agents × 2 cpus / 0.5
const INTERVAL_S = 1;

interface Declining {
  readonly offers: Offer[];
  readonly launched: string[];
  /** Resolves when the framework has been offered `n` offers it could not use. */
  declined(n: number): Promise<void>;
  declinedCount(): number;
}

/** Declines counted over several frameworks, with waiters on the total. */
class Tally {
  count = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  add(): void {
    this.count++;
    this.waiters = this.waiters.filter((w) => {
      if (this.count < w.n) return true;
      w.resolve();
      return false;
    });
  }
  /** Resolves once the total reaches `n`. */
  reach(n: number): Promise<void> {
    return this.count >= n ? Promise.resolve() : new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

/** One task per offer while the framework wants more; every leftover declined with refuseSeconds 0. */
function oneTaskPerOffer(s: MesoScheduler, name: string, total: Tally): Declining {
  const offers: Offer[] = [];
  const launched: string[] = [];
  let declined = 0;
  let waiters: { n: number; resolve: () => void }[] = [];
  s.on('offers', async (batch) => {
    for (const offer of batch) {
      offers.push(offer);
      const fits = (offer.resources.cpus ?? 0) + 1e-9 >= TASK.cpus && (offer.resources.mem ?? 0) >= TASK.mem;
      if (fits && launched.length < SLOTS) {
        const taskId = `${name}-${launched.length}`;
        launched.push(taskId);
        await s.accept(
          [offer.offerId],
          [{ taskId, agentId: offer.agentId, resources: TASK, command: { value: 'sleep 600' } }],
          { refuseSeconds: 0 },
        );
      } else {
        await s.decline([offer.offerId], 0);
        declined++;
        total.add();
        waiters = waiters.filter((w) => {
          if (declined < w.n) return true;
          w.resolve();
          return false;
        });
      }
    }
  });
  return {
    offers,
    launched,
    declinedCount: () => declined,
    declined: (n) =>
      declined >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
  };
}

describe('allocation interval', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      agents: 2,
      agentResources: 'cpus:2;mem:1024;disk:1024',
      control: { allocationIntervalSeconds: INTERVAL_S },
    });
  });
  afterAll(async () => h?.stop());

  it('keeps the DRF split with a framework declining leftovers with refuseSeconds 0, re-offering once per cycle', async () => {
    const sa = h.scheduler({ name: 'packer' });
    const sb = h.scheduler({ name: 'decliner' });
    const declines = new Tally();
    const a = oneTaskPerOffer(sa, 'a', declines);
    const b = oneTaskPerOffer(sb, 'b', declines);
    const running = new Set<string>();
    let full: () => void = () => {};
    const isFull = new Promise<void>((r) => (full = r));
    for (const s of [sa, sb]) {
      s.on('update', (u) => {
        if (u.state === 'TASK_RUNNING') running.add(u.taskId);
        if (running.size >= SLOTS) full();
      });
    }
    await Promise.all([sa.subscribe(), sb.subscribe()]);
    await isFull;

    // The DRF split: equal shares, so equal task counts, and nothing over-committed.
    expect(running.size).toBe(SLOTS);
    expect(a.launched.length).toBe(SLOTS / 2);
    expect(b.launched.length).toBe(SLOTS / 2);
    expect(h.violations).toEqual([]);

    // The cluster is full; both keep declining the memory left over with refuseSeconds 0. Each
    // cycle offers each agent's leftover once, so the offers they get are bounded by the cycles
    // that could have run in the time it took (one per interval, plus the one at the start).
    const from = performance.now();
    const before = a.declinedCount() + b.declinedCount();
    // Six more declines, by either: with equal shares DRF breaks the tie by a fixed order, so
    // which framework gets the leftovers depends on when the declines land, not on fairness.
    await declines.reach(declines.count + 6);
    const cycles = Math.floor((performance.now() - from) / (INTERVAL_S * 1000)) + 1;
    const offered = a.declinedCount() + b.declinedCount() - before;
    expect(offered).toBeLessThanOrEqual(2 * (cycles + 1));
    expect(h.controlPlane.counters.get('AllocationNudgesCoalesced') ?? 0).toBeGreaterThan(0);
    expect(h.violations).toEqual([]);
  });
});
