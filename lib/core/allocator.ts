/**
 * One allocation cycle in Mesos's offer model: every agent with enough free resources is offered
 * what each role may take of them, to the frameworks the sorter puts first — hierarchical DRF
 * over roles with weights, quota guarantees and limits, reservations, refusal filters, SUPPRESS
 * and minimum allocatable resources.
 *
 * This is the mechanism half of Mesos's hierarchical allocator
 * (`src/master/allocator/mesos/hierarchical.cpp`); who goes next is the sorter's business
 * (`./sorter/hierarchical.ts`). The function is pure: the caller reads agents, frameworks and
 * roles from the store, calls `allocate`, then makes each offer with a conditional write on the
 * agent's version, so two overlapping cycles (or shards) can never spend the same resources.
 *
 * Why these choices:
 * - An offer holds everything its role may take of the agent (Mesos's coarse-grained offers):
 *   the framework, not the master, decides how to pack its tasks, and declines what it does not
 *   want (with a filter). Without quotas or reservations that is the agent's entire free
 *   resources, one offer per agent. When a quota cap or a reservation leaves something over, the
 *   rest goes to the next framework in order in the same cycle.
 * - The offer is charged to the sorter as soon as it is made, so the next agent goes to whoever
 *   is now furthest behind: that is progressive filling, which is what DRF means.
 * - Quota (Mesos 1.9+ semantics). A role *consumes* what its frameworks hold unreserved (offered
 *   or used) plus everything reserved for it, allocated or not, counting its whole subtree.
 *   *Limits*: the unreserved part of an offer is capped so that no role on the path exceeds its
 *   limit. *Guarantees*: each agent is walked twice — first only the roles whose guarantee is
 *   unmet, then everyone — and everyone's unreserved share is capped so that the unreserved free
 *   resources left in the cluster still cover every unmet guarantee (the *headroom*). A role
 *   with an unmet guarantee may take headroom, up to what it is still owed. Hierarchically, a
 *   role is owed `need = max(guarantee − consumption, Σ children's need)`, so a parent's
 *   guarantee can be met by any role below it but never at the expense of a child's own.
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
 * - Per-cycle state is plain arrays and objects built once; the unreserved-only, quota-free
 *   path (nearly every agent in nearly every cluster) allocates nothing per agent but the offer.
 */
import type { FilterRecord } from './model.ts';
import {
  ANY_ROLE,
  contains,
  EMPTY,
  flatten,
  isEmpty,
  type Resources,
  resources,
  SCALARS,
  type ScalarsAndPorts,
  subtract,
  unreserved,
  withReserved,
} from './resources.ts';
import type { Quantities, RoleConfig } from './roles.ts';
import {
  createHierarchicalSorter,
  type HierarchicalSorter,
  type HierarchicalSorterOptions,
  isWithinRole,
  parentRole,
  type Scalars,
  scalarsOfResources,
  type TreeNode,
} from './sorter/hierarchical.ts';

export interface AllocationAgent {
  readonly agentId: string;
  readonly total: Resources;
  /** What is neither offered nor used by tasks. */
  readonly free: Resources;
  /** false for unreachable, draining or deactivated agents: they are offered nothing. */
  readonly active: boolean;
}

export interface AllocationFramework {
  readonly frameworkId: string;
  /** false for disconnected or wholly suppressed frameworks: they are offered nothing. */
  readonly active: boolean;
  /**
   * What the framework holds cluster-wide: outstanding offers plus resources of its tasks. When
   * `allocations` is absent it is all counted in the framework's first role.
   */
  readonly allocated: Resources;
  /** The framework's roles (default `['*']`). */
  readonly roles?: readonly string[];
  /** What it holds per role, when known (offers and tasks record their role). */
  readonly allocations?: Readonly<Record<string, Resources>>;
  /** Roles it asked not to be offered for (SUPPRESS), until REVIVE. */
  readonly suppressedRoles?: readonly string[];
  /** Per role, the smallest offers it wants: an offer must hold all of one of them. */
  readonly minAllocatable?: Readonly<Record<string, readonly Resources[]>>;
  /** Refusal filters by agent id. */
  readonly filters: Readonly<Record<string, FilterRecord>>;
}

export interface AllocationInput {
  /** ms since the epoch; filters whose `until` is <= now have expired. */
  readonly now: number;
  readonly agents: readonly AllocationAgent[];
  readonly frameworks: readonly AllocationFramework[];
  /** Weights, quotas and minimums of the roles that have any; others have weight 1 and no quota. */
  readonly roles?: readonly RoleConfig[];
  /**
   * The smallest free resources worth offering. Each non-zero scalar is an alternative: free
   * resources are allocatable when they reach *any* of them. Default `cpus:0.01|mem:32`, as Mesos's
   * `--min_allocatable_resources`. Ports are not considered.
   */
  readonly minAllocatable?: Resources;
  /**
   * The cluster totals shares are computed against. Default: the sum of `agents`' totals. Pass
   * it when `agents` is one shard of the cluster while `allocated` is cluster-wide, so shares
   * compare like with like (and the shard holds back its part of the quota headroom).
   */
  readonly total?: Resources;
  /**
   * Everything reserved per role across the cluster (what quota counts as consumed). Default:
   * from `agents`' totals. Pass it when `agents` is one shard.
   */
  readonly reservedTotals?: Readonly<Record<string, Resources>>;
  /**
   * What each role itself consumes for quota purposes (unreserved allocations plus reservations;
   * the allocator adds children into parents). Default: from `frameworks`' allocations and the
   * reservations. A sharded allocator passes what its own agents hold, with guarantees and limits
   * scaled to its part of the cluster, so shards deciding at the same time never exceed a limit
   * together (lib/control/allocation.ts); the headroom then needs no scaling either.
   */
  readonly quotaConsumption?: Readonly<Record<string, Resources>>;
}

export interface AllocatedOffer {
  readonly frameworkId: string;
  readonly agentId: string;
  /** The framework role the offer is allocated to. */
  readonly role: string;
  readonly resources: Resources;
}

export interface Allocation {
  readonly offers: AllocatedOffer[];
}

/** Why a framework (or a role, or an agent) was passed over on an agent; explain reads these. */
export type SkipReason =
  /** The agent is unreachable, draining or deactivated. */
  | 'agent-inactive'
  /** The agent's free resources are below the cluster minimum. */
  | 'agent-too-small'
  /** What is left of the agent is held back for roles with unmet guarantees (headroom). */
  | 'agent-held-back'
  /** Nothing the role may take of the agent reaches the minimum (details in `bound`). */
  | 'role-nothing-offerable'
  /** The framework refused this much of the agent until `until`. */
  | 'filtered'
  /** The offer would be below the framework's (or its role's) minimum for the role. */
  | 'below-minimum';

export interface TraceSkip {
  readonly agentId: string;
  readonly reason: SkipReason;
  readonly role?: string;
  readonly frameworkId?: string;
  /** For `filtered`: when the filter ends. */
  readonly until?: number;
  /**
   * For `role-nothing-offerable`: what capped the role — its (or an ancestor's) quota limit, the
   * headroom held back for other roles' guarantees, or that what is free is reserved for
   * other roles (or simply too little).
   */
  readonly bound?: 'limit' | 'headroom' | 'reserved-elsewhere' | 'too-small';
}

/** Hooks for `meso explain`: the allocator reports each decision as it makes it. */
export interface AllocationTrace {
  skip(event: TraceSkip): void;
  offer(offer: AllocatedOffer, share: number): void;
}

export interface AllocateOptions {
  /** Builds the sorter for the cluster totals. Default: {@link createHierarchicalSorter} (weighted DRF). */
  readonly sorter?: (total: Scalars, opts: HierarchicalSorterOptions) => HierarchicalSorter;
  /**
   * Returns the order to visit agents in: a permutation of `0..n-1` (throws otherwise).
   * Default: identity order.
   */
  readonly shuffle?: (n: number) => number[];
  readonly trace?: AllocationTrace;
}

/** Mesos's default `--min_allocatable_resources`: cpus:0.01|mem:32 (in thousandths). */
export const DEFAULT_MIN_ALLOCATABLE: Resources = Object.freeze(resources({ cpus: 10, mem: 32_000 }));

/**
 * Whether `free` is worth offering: it reaches at least one non-zero scalar of `min`. With an
 * all-zero `min`, anything non-empty is allocatable. Reserved and unreserved count together.
 *
 * @example
 * isAllocatable(parse('cpus:0.005;mem:64')); // true: mem reaches 32
 */
export function isAllocatable(free: Resources, min: Resources = DEFAULT_MIN_ALLOCATABLE): boolean {
  const f = free.reserved === undefined ? free : flatten(free);
  let anyMin = false;
  if (min.cpus > 0) {
    if (f.cpus >= min.cpus) return true;
    anyMin = true;
  }
  if (min.mem > 0) {
    if (f.mem >= min.mem) return true;
    anyMin = true;
  }
  if (min.disk > 0) {
    if (f.disk >= min.disk) return true;
    anyMin = true;
  }
  if (min.gpus > 0) {
    if (f.gpus >= min.gpus) return true;
    anyMin = true;
  }
  return !anyMin && !isEmpty(f);
}

/**
 * Whether an offer meets a list of minimums (Mesos's `min_allocatable_resources`): it holds all
 * of at least one of them (reserved and unreserved counted together, ports ignored). An empty
 * list is always met.
 *
 * @example
 * meetsMinimum(parse('cpus:1;mem:512'), [parse('cpus:2'), parse('cpus:1;mem:256')]); // true
 */
export function meetsMinimum(offer: Resources, alternatives: readonly Resources[]): boolean {
  if (alternatives.length === 0) return true;
  const f = offer.reserved === undefined ? offer : flatten(offer);
  for (const m0 of alternatives) {
    const m = m0.reserved === undefined ? m0 : flatten(m0);
    if (f.cpus >= m.cpus && f.mem >= m.mem && f.disk >= m.disk && f.gpus >= m.gpus) return true;
  }
  return false;
}

/**
 * Whether a refusal filter keeps `offered` resources from its framework at `now`: it has not
 * expired (`now < until`) and the offer is no more than was refused.
 *
 * @example
 * isFiltered({ until: 10_000, resources: parse('cpus:2') }, parse('cpus:1'), 5_000); // true
 */
export function isFiltered(filter: FilterRecord | undefined, offered: Resources, now: number): boolean {
  return filter !== undefined && now < filter.until && contains(filter.resources, offered);
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

const zero = (): Scalars => ({ cpus: 0, mem: 0, disk: 0, gpus: 0 });

/** Per-role state for one cycle, hung on the role's sorter node. */
class RoleState {
  /** This role and every role above it, nearest first, ending with the root's state. */
  path: RoleState[] = [];
  /** States on `path` that have a limit. */
  limited: RoleState[] = [];
  guarantee: Quantities | undefined = undefined;
  limit: Quantities | undefined = undefined;
  min: readonly Resources[] | undefined = undefined;
  /** Consumption of the subtree: unreserved allocations plus everything reserved. */
  c: Scalars = zero();
  /** What the subtree is still owed (see the file comment). */
  need: Scalars = zero();
  /** Σ need of child roles. */
  childNeed: Scalars = zero();
  /** max(0, guarantee − consumption − childNeed): owed to the role beyond its children's due. */
  excess: Scalars = zero();
  excessAny = false;
  /** Roles in this subtree (itself included) with `excessAny`. */
  excessBelow = 0;
  children: RoleState[] = [];
  depth = 0;
  /** The offer this role would get on the current agent, for `stamp`. */
  stamp = -1;
  offer: Resources | undefined = undefined;
  bound: TraceSkip['bound'] = undefined;

  constructor(
    readonly role: string,
    readonly node: TreeNode,
    readonly parent: RoleState | undefined,
  ) {}
}

/** Per-leaf state: the framework in one of its roles. */
interface LeafState {
  readonly fw: AllocationFramework;
  readonly rs: RoleState;
  /** The framework's refusal filters by agent id (undefined when it has none). */
  readonly filters: Readonly<Record<string, FilterRecord>> | undefined;
  readonly min: readonly Resources[] | undefined;
  /** The agent index it was last offered on (one offer per leaf per agent per cycle). */
  served: number;
}

function addScalars(to: Scalars, r: Scalars, sign = 1): void {
  to.cpus += sign * r.cpus;
  to.mem += sign * r.mem;
  to.disk += sign * r.disk;
  to.gpus += sign * r.gpus;
}

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
  const { now, agents, frameworks } = input;
  const trace = options.trace;
  const min = input.minAllocatable ?? DEFAULT_MIN_ALLOCATABLE;
  const offers: AllocatedOffer[] = [];

  // Cluster totals (reserved and unreserved alike) for shares; reservations per role for quota.
  const shardTotal = zero();
  let anyReserved = false;
  const seen = new Set<string>();
  for (const a of agents) {
    // A duplicate would be offered its free resources twice: a bug in the caller.
    if (seen.has(a.agentId)) throw new RangeError(`agent "${a.agentId}" appears twice`);
    seen.add(a.agentId);
    const t = a.total;
    if (t.reserved === undefined) {
      shardTotal.cpus += t.cpus;
      shardTotal.mem += t.mem;
      shardTotal.disk += t.disk;
      shardTotal.gpus += t.gpus;
    } else {
      anyReserved = true;
      addScalars(shardTotal, scalarsOfResources(t));
    }
  }
  const total = input.total ? scalarsOfResources(input.total) : shardTotal;

  const configs = new Map<string, RoleConfig>();
  let quota = false;
  for (const c of input.roles ?? []) {
    configs.set(c.role, c);
    if (c.guarantee !== undefined || c.limit !== undefined) quota = true;
  }
  const weights = new Map<string, number>();
  for (const c of configs.values()) if (c.weight !== undefined) weights.set(c.role, c.weight);
  const sorter = (options.sorter ?? createHierarchicalSorter)(total, { weights });

  // Role states, created with their ancestors; the root's state aggregates the whole cluster.
  const rootState = new RoleState('', sorter.root, undefined);
  rootState.path = [rootState];
  const states = new Map<string, RoleState>([['', rootState]]);
  const stateOf = (role: string): RoleState => {
    const existing = states.get(role);
    if (existing) return existing;
    const parent = stateOf(parentRole(role));
    const s = new RoleState(role, sorter.role(role), parent);
    s.path = [s, ...parent.path];
    s.depth = parent.depth + 1;
    parent.children.push(s);
    const c = configs.get(role);
    if (c) {
      s.guarantee = c.guarantee;
      s.limit = c.limit;
      s.min = c.minAllocatable;
    }
    s.limited = s.path.filter((p) => p.limit !== undefined);
    s.node.data = s;
    states.set(role, s);
    return s;
  };
  for (const role of configs.keys()) stateOf(role);

  // Frameworks: a leaf per (active framework, unsuppressed role); every allocation is charged.
  let anyLeaf = false;
  for (const f of frameworks) {
    const roles = f.roles && f.roles.length > 0 ? f.roles : [ANY_ROLE];
    const suppressed =
      f.suppressedRoles && f.suppressedRoles.length > 0 ? new Set(f.suppressedRoles) : undefined;
    let filters: Readonly<Record<string, FilterRecord>> | undefined;
    for (const _ in f.filters) {
      filters = f.filters;
      break;
    }
    const seenRoles = new Set<string>();
    for (let i = 0; i < roles.length; i++) {
      const role = roles[i]!;
      if (seenRoles.has(role)) continue;
      seenRoles.add(role);
      const rs = stateOf(role);
      const alloc = f.allocations
        ? Object.hasOwn(f.allocations, role)
          ? f.allocations[role]!
          : EMPTY
        : i === 0
          ? f.allocated
          : EMPTY;
      let node: TreeNode;
      if (f.active && (suppressed === undefined || !suppressed.has(role))) {
        node = sorter.addLeaf(role, f.frameworkId);
        const state: LeafState = {
          fw: f,
          rs,
          filters,
          min: f.minAllocatable && Object.hasOwn(f.minAllocatable, role) ? f.minAllocatable[role] : rs.min,
          served: -1,
        };
        node.data = state;
        anyLeaf = true;
      } else {
        node = sorter.group(role);
      }
      if (!isEmpty(alloc)) {
        sorter.charge(node, alloc.reserved === undefined ? alloc : scalarsOfResources(alloc));
        if (quota && !input.quotaConsumption) addScalars(rs.c, unreserved(alloc));
      }
    }
    // Allocations in roles the framework no longer has still count for those roles.
    if (f.allocations) {
      for (const role of Object.keys(f.allocations)) {
        if (seenRoles.has(role)) continue;
        const alloc = f.allocations[role]!;
        if (isEmpty(alloc)) continue;
        const rs = stateOf(role);
        sorter.charge(sorter.group(role), scalarsOfResources(alloc));
        if (quota && !input.quotaConsumption) addScalars(rs.c, unreserved(alloc));
      }
    }
  }
  if (!anyLeaf) return { offers };

  // Quota: consumption (own + reserved, then up the tree), need and excess, bottom-up.
  const H = zero(); // unreserved free on active agents not yet offered
  const frac = { cpus: 1, mem: 1, disk: 1, gpus: 1 };
  if (quota) {
    if (input.quotaConsumption) {
      for (const role of Object.keys(input.quotaConsumption))
        addScalars(stateOf(role).c, scalarsOfResources(input.quotaConsumption[role]!));
    } else if (input.reservedTotals) {
      for (const role of Object.keys(input.reservedTotals))
        addScalars(stateOf(role).c, scalarsOfResources(input.reservedTotals[role]!));
    } else if (anyReserved) {
      for (const a of agents) {
        const res = a.total.reserved;
        if (res !== undefined) for (const role of Object.keys(res)) addScalars(stateOf(role).c, res[role]!);
      }
    }
    const all = [...states.values()].sort((x, y) => y.depth - x.depth);
    for (const s of all) if (s.parent) addScalars(s.parent.c, s.c);
    for (const s of all) {
      recomputeNeed(s);
      if (s.parent) addScalars(s.parent.childNeed, s.need);
    }
    for (const s of all) if (s.excessAny) for (const p of s.path) p.excessBelow++;
    for (const a of agents) {
      if (!a.active) continue;
      H.cpus += a.free.cpus;
      H.mem += a.free.mem;
      H.disk += a.free.disk;
      H.gpus += a.free.gpus;
    }
    if (input.total && !input.quotaConsumption) {
      for (const name of SCALARS)
        frac[name] = total[name] > 0 ? Math.min(1, shardTotal[name] / total[name]) : 1;
    }
  }

  // The current agent, read by the callbacks below (so walking allocates nothing per agent).
  let agentIndex = 0;
  let agentId = '';
  let free: Resources = EMPTY;
  let freeUnreserved: ScalarsAndPorts = EMPTY;
  let stamp = 0;

  /** Required headroom for this shard (scalar `name`). */
  const required = (name: keyof Scalars): number => Math.ceil(rootState.need[name] * frac[name]);

  /** The unreserved part role `rs` may take: free, capped by limits and by guarantee headroom. */
  const capped = (rs: RoleState): ScalarsAndPorts => {
    const u = freeUnreserved;
    let cpus = u.cpus;
    let mem = u.mem;
    let disk = u.disk;
    let gpus = u.gpus;
    let byLimit = false;
    let byHeadroom = false;
    for (const a of rs.limited) {
      const l = a.limit!;
      if (l.cpus !== undefined && cpus > l.cpus - a.c.cpus)
        [cpus, byLimit] = [Math.max(0, l.cpus - a.c.cpus), true];
      if (l.mem !== undefined && mem > l.mem - a.c.mem) [mem, byLimit] = [Math.max(0, l.mem - a.c.mem), true];
      if (l.disk !== undefined && disk > l.disk - a.c.disk)
        [disk, byLimit] = [Math.max(0, l.disk - a.c.disk), true];
      if (l.gpus !== undefined && gpus > l.gpus - a.c.gpus)
        [gpus, byLimit] = [Math.max(0, l.gpus - a.c.gpus), true];
    }
    if (
      rootState.need.cpus > 0 ||
      rootState.need.mem > 0 ||
      rootState.need.disk > 0 ||
      rootState.need.gpus > 0
    ) {
      const rho = zero();
      for (const a of rs.path) if (a.excessAny) addScalars(rho, a.excess);
      const cap = (name: keyof Scalars, x: number): number => {
        const n = required(name);
        if (n <= 0) return x;
        const allowed = rho[name] + Math.max(0, H[name] - n);
        if (x > allowed) {
          byHeadroom = true;
          return Math.max(0, allowed);
        }
        return x;
      };
      cpus = cap('cpus', cpus);
      mem = cap('mem', mem);
      disk = cap('disk', disk);
      gpus = cap('gpus', gpus);
    }
    rs.bound = byLimit ? 'limit' : byHeadroom ? 'headroom' : undefined;
    if (cpus === u.cpus && mem === u.mem && disk === u.disk && gpus === u.gpus) return u;
    const any = cpus > 0 || mem > 0 || disk > 0 || gpus > 0;
    return { cpus, mem, disk, gpus, ports: any ? u.ports : EMPTY.ports };
  };

  /** What role `rs` would be offered of the current agent, or undefined if below the minimum. */
  const offerFor = (rs: RoleState): Resources | undefined => {
    if (rs.stamp === stamp) return rs.offer;
    rs.stamp = stamp;
    let o: Resources;
    if (!quota && free.reserved === undefined) {
      o = free;
      rs.bound = undefined;
    } else {
      const base = quota ? capped(rs) : freeUnreserved;
      const res = free.reserved;
      if (res === undefined) o = base;
      else {
        const usable: [string, ScalarsAndPorts][] = [];
        for (const role of Object.keys(res)) if (isWithinRole(rs.role, role)) usable.push([role, res[role]!]);
        o = usable.length === 0 ? base : withReserved(base, usable);
      }
    }
    if (isAllocatable(o, min)) {
      rs.offer = o;
    } else {
      rs.offer = undefined;
      if (rs.bound === undefined) rs.bound = free.reserved !== undefined ? 'reserved-elsewhere' : 'too-small';
    }
    return rs.offer;
  };

  const leafOk = (leaf: TreeNode): boolean => {
    const st = leaf.data as LeafState;
    if (st.served === agentIndex) return false;
    const offer = offerFor(st.rs);
    if (offer === undefined) return false;
    if (st.min !== undefined && !meetsMinimum(offer, st.min)) {
      trace?.skip({ agentId, reason: 'below-minimum', role: st.rs.role, frameworkId: st.fw.frameworkId });
      return false;
    }
    const filters = st.filters;
    if (filters !== undefined && Object.hasOwn(filters, agentId)) {
      const f = filters[agentId]!;
      if (isFiltered(f, offer, now)) {
        trace?.skip({
          agentId,
          reason: 'filtered',
          role: st.rs.role,
          frameworkId: st.fw.frameworkId,
          until: f.until,
        });
        return false;
      }
    }
    return true;
  };

  /** Phase 2 (everyone): a role's group is entered when the role has something to offer. */
  const enterAny = (node: TreeNode): boolean => {
    if (node.kind !== 'group') return true;
    const rs = node.parent!.data as RoleState;
    if (offerFor(rs) !== undefined) return true;
    trace?.skip({
      agentId,
      reason: 'role-nothing-offerable',
      role: rs.role,
      ...(rs.bound ? { bound: rs.bound } : {}),
    });
    return false;
  };

  // Phase 1 (unmet guarantees first): enter only subtrees with a role still owed something.
  let owedDepth = 0;
  const enterOwed = (node: TreeNode): boolean => {
    if (node.kind === 'group') return owedDepth > 0 && offerFor(node.parent!.data as RoleState) !== undefined;
    const rs = node.data as RoleState;
    if (owedDepth > 0) {
      owedDepth++;
      return true;
    }
    if (rs.excessAny) {
      owedDepth = 1;
      return true;
    }
    return rs.excessBelow > 0;
  };
  const leaveOwed = (node: TreeNode): void => {
    if (node.kind !== 'group' && owedDepth > 0) owedDepth--;
  };

  /** After an offer of `x` unreserved to `rs`: consumption, need and excess up the path. */
  const consume = (rs: RoleState, x: Scalars): void => {
    for (const a of rs.path) addScalars(a.c, x);
    for (const a of rs.path) {
      const before = a.need;
      const wasOwed = a.excessAny;
      recomputeNeed(a);
      if (a.parent) {
        const p = a.parent.childNeed;
        p.cpus += a.need.cpus - before.cpus;
        p.mem += a.need.mem - before.mem;
        p.disk += a.need.disk - before.disk;
        p.gpus += a.need.gpus - before.gpus;
      }
      if (wasOwed !== a.excessAny) for (const p of a.path) p.excessBelow += a.excessAny ? 1 : -1;
    }
    addScalars(H, x, -1);
  };

  /** Whether anyone not owed a guarantee could get something of the current agent. */
  const surplusOffered = (): boolean => {
    if (free.reserved !== undefined) return true;
    const u = freeUnreserved;
    const s = (name: keyof Scalars): number => {
      const n = required(name);
      return n <= 0 ? u[name] : Math.min(u[name], Math.max(0, H[name] - n));
    };
    return isAllocatable(
      { cpus: s('cpus'), mem: s('mem'), disk: s('disk'), gpus: s('gpus'), ports: EMPTY.ports },
      min,
    );
  };

  const order = visitOrder(agents.length, options.shuffle);
  for (let k = 0; k < agents.length; k++) {
    const idx = order ? order[k]! : k;
    const agent = agents[idx]!;
    if (!agent.active) {
      trace?.skip({ agentId: agent.agentId, reason: 'agent-inactive' });
      continue;
    }
    if (!isAllocatable(agent.free, min)) {
      if (trace && !isEmpty(agent.free)) trace.skip({ agentId: agent.agentId, reason: 'agent-too-small' });
      continue;
    }
    agentIndex = idx;
    agentId = agent.agentId;
    free = agent.free;
    freeUnreserved = unreserved(free);
    for (;;) {
      stamp++;
      let chosen: TreeNode | undefined;
      if (quota && rootState.excessBelow > 0) {
        owedDepth = 0;
        chosen = sorter.walk(leafOk, enterOwed, leaveOwed);
      }
      if (chosen === undefined) {
        if (quota && !surplusOffered()) {
          trace?.skip({ agentId, reason: 'agent-held-back' });
          break;
        }
        chosen = sorter.walk(leafOk, enterAny);
      }
      if (chosen === undefined) break;
      const st = chosen.data as LeafState;
      const offer = st.rs.offer!;
      const made: AllocatedOffer = {
        frameworkId: st.fw.frameworkId,
        agentId,
        role: st.rs.role,
        resources: offer,
      };
      offers.push(made);
      st.served = agentIndex;
      sorter.charge(chosen, offer.reserved === undefined ? offer : scalarsOfResources(offer));
      trace?.offer(made, chosen.share);
      if (quota) consume(st.rs, unreserved(offer));
      if (offer === free) break;
      free = subtract(free, offer);
      freeUnreserved = unreserved(free);
      if (!isAllocatable(free, min)) break;
    }
  }
  return { offers };
}

/** need = max(guarantee − consumption, Σ children's need), ≥ 0; excess = what only this role can fill. */
function recomputeNeed(s: RoleState): void {
  const g = s.guarantee;
  const need = zero();
  const excess = zero();
  let any = false;
  for (const name of SCALARS) {
    const child = s.childNeed[name];
    const gv = g?.[name];
    const own = gv === undefined ? Number.NEGATIVE_INFINITY : gv - s.c[name];
    need[name] = Math.max(0, own, child);
    const e = own - child;
    if (e > 0) {
      excess[name] = e;
      any = true;
    }
  }
  s.need = need;
  s.excess = excess;
  s.excessAny = any;
}
