/**
 * Recent history for operators, kept in the meta table so the operator API can show it wherever
 * it runs: the allocator's last cycles (duration, offers, conflicts) and one utilisation sample
 * per minute for the last hour (used and offered of the cluster total). CloudWatch gets the same
 * figures as metrics (lib/lambda/from-env.ts); this is what the dashboard plots without
 * CloudWatch access, and what the local stack has at all.
 *
 * One small item (`stats#recent`), rewritten with `expect: 'any'`: two shards writing at once may
 * lose one entry, which is harmless for a view. The allocator writes it through
 * {@link CycleHistory}: one read and write every ten seconds or so, not one per cycle; the
 * utilisation sample costs one agents scan a minute at most.
 */
import type { AgentRecord } from '../core/model.ts';
import { add, EMPTY, flatten, type Resources } from '../core/resources.ts';
import type { Item } from '../ports/store.ts';
import type { CycleReport } from './allocation.ts';
import type { ControlDeps } from './deps.ts';

export const STATS_KEY = 'stats#recent';
export const MAX_CYCLES = 50;
export const SAMPLE_MS = 60_000;
export const SAMPLE_WINDOW_MS = 3_600_000;

export interface CycleEntry {
  readonly at: number;
  readonly shard: number;
  /** Wall time of the whole cycle: read, decide, write, send (ms). */
  readonly durationMs: number;
  readonly decideMs: number;
  readonly agents: number;
  readonly frameworks: number;
  readonly offers: number;
  readonly conflicts: number;
  readonly expired: number;
}

/** Cluster figures at one minute, in operator units (cpus, MB). */
export interface UtilisationSample {
  readonly at: number;
  readonly total: { cpus: number; mem: number };
  readonly used: { cpus: number; mem: number };
  readonly offered: { cpus: number; mem: number };
}

export interface RecentStats {
  readonly cycles: readonly CycleEntry[];
  readonly utilisation: readonly UtilisationSample[];
}

const EMPTY_STATS: RecentStats = { cycles: [], utilisation: [] };

export async function readRecentStats(deps: Pick<ControlDeps, 'store'>): Promise<RecentStats> {
  const item = await deps.store.get<Item>('meta', { key: STATS_KEY });
  if (!item) return EMPTY_STATS;
  return {
    cycles: Array.isArray(item.cycles) ? (item.cycles as CycleEntry[]) : [],
    utilisation: Array.isArray(item.utilisation) ? (item.utilisation as UtilisationSample[]) : [],
  };
}

const mb = (r: Resources) => {
  const f = flatten(r);
  return { cpus: f.cpus / 1000, mem: f.mem / 1000 };
};

/** One sample from the agent records (pure). */
export function utilisationOf(agents: readonly AgentRecord[], at: number): UtilisationSample {
  let total = EMPTY;
  let used = EMPTY;
  let offered = EMPTY;
  for (const a of agents) {
    if (a.status === 'GONE') continue;
    total = add(total, a.total);
    for (const t of Object.values(a.tasks)) used = add(used, t.resources);
    for (const o of Object.values(a.offers)) offered = add(offered, o.resources);
  }
  return { at, total: mb(total), used: mb(used), offered: mb(offered) };
}

/**
 * Utilisation gauges for CloudWatch, once a minute: per agent (used of its total, dominant
 * resource), per role (used and offered of the cluster, dominant resource), offers outstanding.
 */
export function publishGauges(deps: Pick<ControlDeps, 'metrics'>, agents: readonly AgentRecord[]): void {
  const measure = deps.metrics.measure?.bind(deps.metrics);
  if (!measure) return;
  let total = EMPTY;
  const byRole = new Map<string, Resources>();
  let offers = 0;
  for (const a of agents) {
    if (a.status === 'GONE') continue;
    total = add(total, a.total);
    let used = EMPTY;
    for (const t of Object.values(a.tasks)) {
      used = add(used, t.resources);
      byRole.set(t.role ?? '*', add(byRole.get(t.role ?? '*') ?? EMPTY, t.resources));
    }
    for (const o of Object.values(a.offers)) {
      offers++;
      byRole.set(o.role ?? '*', add(byRole.get(o.role ?? '*') ?? EMPTY, o.resources));
    }
    measure('AgentUtilisation', 100 * dominant(used, a.total), 'Percent', { agent: a.agentId });
  }
  for (const [role, r] of byRole) measure('RoleAllocation', 100 * dominant(r, total), 'Percent', { role });
  measure('OffersOutstanding', offers, 'Count');
}

/** The largest fraction of `total` that `r` takes in cpus or mem. */
function dominant(r: Resources, total: Resources): number {
  const a = flatten(r);
  const t = flatten(total);
  return Math.max(t.cpus > 0 ? a.cpus / t.cpus : 0, t.mem > 0 ? a.mem / t.mem : 0);
}

/** `stats` with `cycle` (one or several) and/or `sample` added, trimmed to the limits (pure). */
export function withEntries(
  stats: RecentStats,
  now: number,
  cycle?: CycleEntry | readonly CycleEntry[],
  sample?: UtilisationSample,
): RecentStats {
  const added = cycle === undefined ? [] : Array.isArray(cycle) ? cycle : [cycle as CycleEntry];
  const cycles =
    added.length > 0
      ? [...stats.cycles, ...added].sort((a, b) => a.at - b.at).slice(-MAX_CYCLES)
      : stats.cycles;
  const utilisation = (sample ? [...stats.utilisation, sample] : stats.utilisation).filter(
    (s) => s.at > now - SAMPLE_WINDOW_MS,
  );
  return { cycles, utilisation };
}

const sampleDue = (stats: RecentStats, now: number): boolean => {
  const last = stats.utilisation.at(-1);
  return !last || now - last.at >= SAMPLE_MS;
};

/**
 * Records a cycle (when given) and a utilisation sample when the last is a minute old. Never
 * throws: a view must not fail the allocator or the sweep.
 */
export async function recordStats(deps: ControlDeps, cycle?: Omit<CycleEntry, 'at'>): Promise<void> {
  try {
    await writeStats(deps, deps.clock.now(), cycle ? [{ at: deps.clock.now(), ...cycle }] : []);
  } catch (e) {
    deps.log.warn('operator stats not recorded', { error: String(e) });
  }
}

/**
 * One read and one write of the history item: `cycles` added, and a utilisation sample when the
 * last is a minute old (from `agents` when given, else one scan). Returns when the item's last
 * sample was taken.
 */
async function writeStats(
  deps: ControlDeps,
  now: number,
  cycles: readonly CycleEntry[],
  agents?: readonly AgentRecord[],
): Promise<number | undefined> {
  const stats = await readRecentStats(deps);
  let sample: UtilisationSample | undefined;
  if (sampleDue(stats, now)) {
    const all = agents ?? (await deps.store.scan<AgentRecord & Item>('agents'));
    sample = utilisationOf(all, now);
    publishGauges(deps, all);
  }
  const lastSampleAt = sample?.at ?? stats.utilisation.at(-1)?.at;
  if (cycles.length === 0 && !sample) return lastSampleAt;
  const next = withEntries(stats, now, cycles, sample);
  await deps.store.write([
    { kind: 'put', table: 'meta', item: { key: STATS_KEY, ...next, updatedAt: now }, expect: 'any' },
  ]);
  return lastSampleAt;
}

/** Default: the allocator writes its cycle history at most every 10 s (but see {@link CycleHistory}). */
export const FLUSH_MS = 10_000;

/**
 * The allocator instance's cycle history, written to the history item off the hot path: a cycle
 * adds its entry in memory, and the item is read and rewritten only when
 * - the instance has not written it yet, or `flushMs` has passed since it did;
 * - the cycle changes from idle to busy or back (made offers, rescinded or lost a race, or did
 *   none of these) — so the dashboard sees a burst begin and end at once;
 * - a utilisation sample is due (a minute after the last: one agents scan).
 *
 * So a busy allocator costs one read and one write every `flushMs` instead of every cycle. What
 * is not yet written waits for the instance's next cycle (the sweep nudges every shard once a
 * minute); CloudWatch gets every cycle as it happens (`CycleDuration`).
 */
export class CycleHistory {
  #pending: CycleEntry[] = [];
  #flushedAt: number | undefined;
  #busy: boolean | undefined;
  #lastSampleAt: number | undefined;

  constructor(private readonly flushMs = FLUSH_MS) {}

  /** Adds a cycle; writes the history when due. Never throws. */
  async record(deps: ControlDeps, cycle: Omit<CycleEntry, 'at'>): Promise<void> {
    const now = deps.clock.now();
    this.#pending = [...this.#pending, { at: now, ...cycle }].slice(-MAX_CYCLES);
    const busy = cycle.offers > 0 || cycle.conflicts > 0 || cycle.expired > 0;
    const due =
      this.#flushedAt === undefined ||
      now - this.#flushedAt >= this.flushMs ||
      busy !== this.#busy ||
      this.#lastSampleAt === undefined ||
      now - this.#lastSampleAt >= SAMPLE_MS;
    if (!due) return;
    try {
      this.#lastSampleAt = await writeStats(deps, now, this.#pending);
      this.#pending = [];
      this.#flushedAt = now;
      this.#busy = busy;
    } catch (e) {
      deps.log.warn('operator stats not recorded', { error: String(e) });
    }
  }

  /** Entries not written yet. */
  get pending(): readonly CycleEntry[] {
    return this.#pending;
  }
}

/** A cycle's report as a history entry. */
export const cycleEntry = (
  shard: number,
  report: CycleReport,
  durationMs: number,
): Omit<CycleEntry, 'at'> => ({
  shard,
  durationMs,
  decideMs: report.decideMs,
  agents: report.agents,
  frameworks: report.frameworks,
  offers: report.offers,
  conflicts: report.conflicts,
  expired: report.expired,
});
