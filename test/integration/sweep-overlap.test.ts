/**
 * The local stack's sweep never overlaps itself. With a short period (the fault tests sweep every
 * second) a sweep slowed by a loaded machine used to be joined by the next one, and the next:
 * overlapping sweeps slowed each other and every handler in the process, and a partitioned agent
 * took several times its ping timeout to be noticed. Here the sweep's first read is held until the
 * test lets it go: the ticks meanwhile must be skipped (and counted), not started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../lib/ports/store.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe('the local sweep', () => {
  let h: Harness;
  let inFlight = 0;
  let most = 0;
  let done = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  // The sweep's first step reads the outbox (in the meta table); allocation cycles read roles there too.
  const held = (s: Store): Store => ({
    ...s,
    scan: async (table) => {
      if (table !== 'meta' || !new Error().stack?.includes('drainOutbox')) return s.scan(table);
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        await gate;
        return await s.scan(table);
      } finally {
        inFlight--;
        done++;
      }
    },
  });
  beforeAll(async () => {
    h = await startHarness({ agents: 0, controlPlane: { sweepIntervalMs: 50, wrap: { store: held } } });
  });
  afterAll(async () => {
    release();
    await h?.stop();
  });

  it('skips the ticks that come while a sweep is still running', async () => {
    await eventually(async () => (h.controlPlane.counters.get('SweepsSkipped') ?? 0) >= 5, 'skipped ticks');
    expect(most).toBe(1);
    expect(done).toBe(0);
    release();
    // Once the slow sweep is done, later ticks sweep again.
    await eventually(async () => done >= 3, 'later sweeps');
    expect(most).toBe(1);
  });
});
