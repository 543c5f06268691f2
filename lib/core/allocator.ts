/**
 * One allocation cycle in Mesos's offer model: every agent with enough free resources is offered
 * what each role may take of it, to the frameworks the sorter puts first — hierarchical DRF over
 * roles with weights, quota guarantees and limits, reservations, refusal filters, SUPPRESS and
 * minimum allocatable resources.
 *
 * This is the mechanism half of Mesos's hierarchical allocator
 * (`src/master/allocator/mesos/hierarchical.cpp`); who goes next is the sorter's business
 * (`./sorter/`). The function is pure: the caller reads agents, frameworks and roles from the
 * store, calls `allocate`, then makes each offer with a conditional write on the agent's
 * version, so two overlapping cycles (or shards) can never spend the same resources.
 *
 * The cycle, stage by stage (each in its own file under `./allocation/`):
 * 0. `cycle.ts` — what the cycle starts from: cluster totals, the sorter's role tree with every
 *    framework charged what it holds, and the quota tree (`role-tree.ts`, Mesos's `RoleTree`)
 *    with what each role consumes and is owed.
 * 1. `stages.ts`, for each agent in `shuffle` order: *guarantees first* (only roles still owed
 *    part of their guarantee), then *everyone* (capped so the headroom for unmet guarantees
 *    stays), offer after offer until the agent is spent — Mesos's `__generateOffers`.
 * `eligibility.ts` holds the checks every stage uses (minimums, refusal filters); `types.ts` what
 * goes in and comes out.
 *
 * Why these choices:
 * - An offer holds everything its role may take of the agent (Mesos's coarse-grained offers):
 *   the framework, not the master, decides how to pack its tasks, and declines what it does not
 *   want (with a filter). Without quotas or reservations that is the agent's entire free
 *   resources, one offer per agent. When a quota cap or a reservation leaves something over, the
 *   rest goes to the next framework in order in the same cycle.
 * - The offer is charged to the sorter as soon as it is made, so the next agent goes to whoever
 *   is now furthest behind: that is progressive filling, which is what DRF means.
 * - Reserved resources go only to frameworks in the reservation's role or below it (`eng`
 *   reservations are usable by `eng/web`); they are outside quota caps and headroom, which count
 *   them as consumed already.
 * - Agents are visited in `shuffle` order (identity by default). Randomizing the order spreads
 *   frameworks across the cluster and reduces collisions between allocator shards (Mesos
 *   shuffles agents each cycle; Nomad randomizes node order for the same reason). Randomness is
 *   a parameter so the core stays deterministic under test.
 * - Shares are computed against the totals of every agent in the input, active or not (or the
 *   `total` given, for a shard): a deactivated agent's tasks still count in their frameworks'
 *   allocations, as in Mesos, where an agent leaves the sorter's totals only when removed.
 * - A framework with an unexpired refusal filter for an agent is skipped for that agent unless
 *   the offer would hold more than it refused (Mesos: the filter applies only while the offered
 *   resources are contained in the refused ones). Passing a framework costs one hash lookup in
 *   its filters (≈ 30 ns even in maps of thousands), and the walk stops at the first eligible
 *   one: a cluster full of filters costs what the filters in front of each winner cost, never a
 *   scan of every filter (Mesos's cycle slowed down as refusal filters piled up). An index of
 *   all filters by agent, built each cycle, was measured too: the walk got no faster and
 *   building it cost more than the lookups it saved.
 * - Per-cycle state is plain objects built once; the unreserved-only, quota-free path (nearly
 *   every agent in nearly every cluster) allocates nothing per agent but the offer.
 */
import { prepareCycle } from './allocation/cycle.ts';
import { AgentOffers } from './allocation/stages.ts';
import type { AllocatedOffer, AllocateOptions, Allocation, AllocationInput } from './allocation/types.ts';

export {
  DEFAULT_MIN_ALLOCATABLE,
  isAllocatable,
  isFiltered,
  meetsMinimum,
} from './allocation/eligibility.ts';
export type {
  AllocatedOffer,
  AllocateOptions,
  Allocation,
  AllocationAgent,
  AllocationFramework,
  AllocationInput,
  AllocationTrace,
  SkipReason,
  TraceSkip,
} from './allocation/types.ts';

/**
 * Runs one allocation cycle and returns the offers to make.
 *
 * @example
 * const { offers } = allocate({
 *   now: clock.now(),
 *   agents: [{ agentId: 'a1', total: parse('cpus:4;mem:8192'), free: parse('cpus:4;mem:8192'), active: true }],
 *   frameworks: [{ frameworkId: 'f1', active: true, allocated: EMPTY, filters: {} }],
 * });
 * // offers: [{ frameworkId: 'f1', agentId: 'a1', role: '*', resources: parse('cpus:4;mem:8192') }]
 */
export function allocate(input: AllocationInput, options: AllocateOptions = {}): Allocation {
  const offers: AllocatedOffer[] = [];
  const cycle = prepareCycle(input, options);
  if (cycle === undefined) return { offers };
  const { agents } = input;
  const stages = new AgentOffers(cycle, offers);
  const order = visitOrder(agents.length, options.shuffle);
  for (let k = 0; k < agents.length; k++) {
    const index = order ? order[k]! : k;
    stages.offerAgent(agents[index]!, index);
  }
  return { offers };
}

/** The order to visit agents in: `shuffle(n)`, checked to be a permutation of 0..n-1. */
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
