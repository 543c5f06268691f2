/**
 * One allocation cycle in Mesos's coarse-grained offer model: every agent with enough free
 * resources is offered *all* of them, to one framework, chosen by the sorter (DRF by default).
 *
 * This is the mechanism half of Mesos's hierarchical allocator
 * (`src/master/allocator/mesos/hierarchical.cpp`); who goes next is the sorter's business
 * (`./sorter/`). The function is pure: the caller reads agents and frameworks from the store,
 * calls `allocate`, then makes each offer with a conditional write on the agent's version, so
 * two overlapping cycles can never spend the same resources.
 *
 * Why these choices:
 * - Whole-agent offers (not slices) are Mesos's offer model: the framework, not the master,
 *   decides how to pack its tasks, and declines what it does not want (with a filter).
 * - The offer is recorded in the sorter as soon as it is made, so the next agent goes to whoever
 *   is now furthest behind: that is progressive filling, which is what DRF means.
 * - Agents are visited in `shuffle` order (identity by default). Randomizing the order spreads
 *   frameworks across the cluster and reduces collisions between allocator shards working at the
 *   same time (Mesos shuffles agents each cycle; Nomad randomizes node order for the same reason).
 *   Randomness is a parameter so the core stays deterministic under test.
 * - Shares are computed against the totals of every agent in the input, active or not: a
 *   deactivated (unreachable) agent's tasks still count in their frameworks' allocations, as in
 *   Mesos, where an agent leaves the sorter's totals only when it is removed.
 * - A framework with an unexpired refusal filter for an agent is skipped for that agent unless
 *   more than it refused is now free (Mesos: the filter applies only while the offered resources
 *   are contained in the refused ones).
 */
import type { FilterRecord } from './model.ts';
import { contains, EMPTY, isEmpty, type Resources, resources } from './resources.ts';
import { createDrfSorter } from './sorter/drf.ts';
import type { SorterFactory } from './sorter/types.ts';

export interface AllocationAgent {
  readonly agentId: string;
  readonly total: Resources;
  /** What is neither offered nor used by tasks. */
  readonly free: Resources;
  /** false for unreachable or draining agents: they are offered nothing. */
  readonly active: boolean;
}

export interface AllocationFramework {
  readonly frameworkId: string;
  /** false for disconnected or suppressed frameworks: they are offered nothing. */
  readonly active: boolean;
  /** What the framework holds cluster-wide: outstanding offers plus resources of its tasks. */
  readonly allocated: Resources;
  /** Refusal filters by agent id. */
  readonly filters: Readonly<Record<string, FilterRecord>>;
}

export interface AllocationInput {
  /** ms since the epoch; filters whose `until` is <= now have expired. */
  readonly now: number;
  readonly agents: readonly AllocationAgent[];
  readonly frameworks: readonly AllocationFramework[];
  /**
   * The smallest free resources worth offering. Each non-zero scalar is an alternative: free
   * resources are allocatable when they reach *any* of them. Default `cpus:0.01|mem:32`, as Mesos's
   * `--min_allocatable_resources`. Ports are not considered.
   */
  readonly minAllocatable?: Resources;
  /**
   * The cluster totals shares are computed against. Default: the sum of `agents`' totals. Pass
   * it when `agents` is one shard of the cluster while `allocated` is cluster-wide, so shares
   * compare like with like.
   */
  readonly total?: Resources;
}

export interface AllocatedOffer {
  readonly frameworkId: string;
  readonly agentId: string;
  readonly resources: Resources;
}

export interface Allocation {
  readonly offers: AllocatedOffer[];
}

export interface AllocateOptions {
  /** Builds the sorter for the cluster totals. Default: {@link createDrfSorter}. */
  readonly sorter?: SorterFactory;
  /**
   * Returns the order to visit agents in: a permutation of `0..n-1` (throws otherwise).
   * Default: identity order.
   */
  readonly shuffle?: (n: number) => number[];
}

/** Mesos's default `--min_allocatable_resources`: cpus:0.01|mem:32 (in thousandths). */
export const DEFAULT_MIN_ALLOCATABLE: Resources = Object.freeze(resources({ cpus: 10, mem: 32_000 }));

/**
 * Whether `free` is worth offering: it reaches at least one non-zero scalar of `min`. With an
 * all-zero `min`, anything non-empty is allocatable.
 *
 * @example
 * isAllocatable(parse('cpus:0.005;mem:64')); // true: mem reaches 32
 */
export function isAllocatable(free: Resources, min: Resources = DEFAULT_MIN_ALLOCATABLE): boolean {
  let anyMin = false;
  if (min.cpus > 0) {
    if (free.cpus >= min.cpus) return true;
    anyMin = true;
  }
  if (min.mem > 0) {
    if (free.mem >= min.mem) return true;
    anyMin = true;
  }
  if (min.disk > 0) {
    if (free.disk >= min.disk) return true;
    anyMin = true;
  }
  if (min.gpus > 0) {
    if (free.gpus >= min.gpus) return true;
    anyMin = true;
  }
  return !anyMin && !isEmpty(free);
}

/**
 * Whether a refusal filter keeps an agent's `free` resources from its framework at `now`: it has
 * not expired (`now < until`) and the free resources are no more than were refused.
 *
 * @example
 * isFiltered({ until: 10_000, resources: parse('cpus:2') }, parse('cpus:1'), 5_000); // true
 */
export function isFiltered(filter: FilterRecord | undefined, free: Resources, now: number): boolean {
  return filter !== undefined && now < filter.until && contains(filter.resources, free);
}

function visitOrder(
  n: number,
  shuffle: ((n: number) => number[]) | undefined,
): ArrayLike<number> | undefined {
  if (!shuffle) return undefined;
  const order = shuffle(n);
  if (order.length !== n) throw new RangeError(`shuffle(${n}) returned ${order.length} indices`);
  const seen = new Uint8Array(n);
  for (const i of order) {
    if (!Number.isInteger(i) || i < 0 || i >= n || seen[i] === 1) {
      throw new RangeError(`shuffle(${n}) must return a permutation of 0..${n - 1}`);
    }
    seen[i] = 1;
  }
  return order;
}

/**
 * Runs one allocation cycle and returns the offers to make: at most one per agent, each of the
 * agent's entire free resources, to the eligible framework the sorter puts first.
 *
 * @example
 * const { offers } = allocate({
 *   now: clock.now(),
 *   agents: [{ agentId: 'a1', total: parse('cpus:4;mem:8192'), free: parse('cpus:4;mem:8192'), active: true }],
 *   frameworks: [{ frameworkId: 'f1', active: true, allocated: EMPTY, filters: {} }],
 * });
 * // offers: [{ frameworkId: 'f1', agentId: 'a1', resources: parse('cpus:4;mem:8192') }]
 */
export function allocate(input: AllocationInput, options: AllocateOptions = {}): Allocation {
  const { now, agents, frameworks } = input;
  const min = input.minAllocatable ?? DEFAULT_MIN_ALLOCATABLE;
  const offers: AllocatedOffer[] = [];

  // Only scalars matter to shares, so sum them directly rather than merging every agent's ports.
  let cpus = 0;
  let mem = 0;
  let disk = 0;
  let gpus = 0;
  const seen = new Set<string>();
  for (const a of agents) {
    // A duplicate would be offered its free resources twice: a bug in the caller.
    if (seen.has(a.agentId)) throw new RangeError(`agent "${a.agentId}" appears twice`);
    seen.add(a.agentId);
    cpus += a.total.cpus;
    mem += a.total.mem;
    disk += a.total.disk;
    gpus += a.total.gpus;
  }
  const total = input.total ?? { cpus, mem, disk, gpus, ports: EMPTY.ports };
  const sorter = (options.sorter ?? createDrfSorter)(total);

  // Inactive frameworks are never offered anything, so they need not be sorted at all.
  // Frameworks without filters (the common case) skip the filter lookup entirely.
  const filtersOf = new Map<string, Readonly<Record<string, FilterRecord>>>();
  for (const f of frameworks) {
    if (!f.active) continue;
    sorter.add(f.frameworkId);
    if (!isEmpty(f.allocated)) sorter.allocated(f.frameworkId, f.allocated);
    for (const _ in f.filters) {
      filtersOf.set(f.frameworkId, f.filters);
      break;
    }
  }
  if (sorter.size === 0) return { offers };

  // One predicate for the whole cycle, reading the current agent from these two variables, so
  // walking the sorter allocates nothing per agent.
  let agentId = '';
  let free: Resources = EMPTY;
  const eligible = (frameworkId: string): boolean => {
    const filters = filtersOf.get(frameworkId);
    if (filters === undefined || !Object.hasOwn(filters, agentId)) return true;
    return !isFiltered(filters[agentId], free, now);
  };

  const order = visitOrder(agents.length, options.shuffle);
  for (let k = 0; k < agents.length; k++) {
    const agent = agents[order ? order[k]! : k]!;
    if (!agent.active || !isAllocatable(agent.free, min)) continue;
    agentId = agent.agentId;
    free = agent.free;
    const frameworkId = sorter.first(eligible);
    if (frameworkId === undefined) continue;
    offers.push({ frameworkId, agentId, resources: free });
    sorter.allocated(frameworkId, free);
  }
  return { offers };
}
