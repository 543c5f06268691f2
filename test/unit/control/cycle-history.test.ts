/**
 * The allocator's cycle history (lib/control/operator-stats.ts, CycleHistory): written to the
 * operator's history item every `flushMs`, when a cycle turns from busy to idle or back, and when
 * a utilisation sample is due — not once per cycle — and nothing recorded is lost.
 */
import { describe, expect, it } from 'vitest';
import { CycleHistory, readRecentStats, STATS_KEY } from '../../../lib/control/operator-stats.ts';
import type { Item, WriteOp } from '../../../lib/ports/store.ts';
import { putAgent, testControl } from './helpers.ts';

const entry = (offers: number) => ({
  shard: 0,
  durationMs: 5,
  decideMs: 1,
  agents: 1,
  frameworks: 1,
  offers,
  conflicts: 0,
  expired: 0,
});

function countingHistoryWrites(t: ReturnType<typeof testControl>): { writes: number } {
  const c = { writes: 0 };
  const write = t.store.write.bind(t.store);
  t.store.write = async (ops: readonly WriteOp[]) => {
    if (ops.some((o) => o.kind === 'put' && (o.item as Item).key === STATS_KEY)) c.writes++;
    return write(ops);
  };
  return c;
}

describe('the allocator’s cycle history', () => {
  it('writes a busy allocator’s cycles every flush period, all of them', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    const c = countingHistoryWrites(t);
    const history = new CycleHistory(10_000);
    for (let i = 0; i < 25; i++) {
      await history.record(t.deps, entry(1));
      t.now += 1000;
    }
    // The first cycle, then one write every 10 s: at 0, 10 and 20 s — not 25.
    expect(c.writes).toBe(3);
    expect(history.pending).toHaveLength(4);
    const stats = await readRecentStats(t.deps);
    expect(stats.cycles).toHaveLength(21);
    expect(stats.utilisation).toHaveLength(1);
    t.now += 10_000;
    await history.record(t.deps, entry(1));
    expect((await readRecentStats(t.deps)).cycles).toHaveLength(26);
  });

  it('writes at once when the allocator turns idle or busy again', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    const c = countingHistoryWrites(t);
    const history = new CycleHistory(10_000);
    await history.record(t.deps, entry(1));
    t.now += 1000;
    await history.record(t.deps, entry(1));
    expect(c.writes).toBe(1);
    t.now += 1000;
    await history.record(t.deps, entry(0)); // idle now
    expect(c.writes).toBe(2);
    expect((await readRecentStats(t.deps)).cycles.map((x) => x.offers)).toEqual([1, 1, 0]);
    t.now += 1000;
    await history.record(t.deps, entry(0));
    expect(c.writes).toBe(2);
    t.now += 1000;
    await history.record(t.deps, entry(2)); // busy again
    expect(c.writes).toBe(3);
  });

  it('keeps what it could not write, and writes it next time', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    const history = new CycleHistory(10_000);
    t.store.failNextWrites = 1;
    await history.record(t.deps, entry(1));
    expect(history.pending).toHaveLength(1);
    t.now += 1000;
    await history.record(t.deps, entry(1));
    expect(history.pending).toHaveLength(0);
    expect((await readRecentStats(t.deps)).cycles).toHaveLength(2);
  });
});
