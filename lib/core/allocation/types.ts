/**
 * What an allocation cycle reads and returns: the agents, frameworks and roles the caller read
 * from the store, the offers to make, and the trace `meso explain` listens to.
 */
import type { FilterRecord } from '../model.ts';
import type { Resources } from '../resources.ts';
import type { RoleConfig } from '../roles.ts';
import type { SorterFactory } from '../sorter/types.ts';

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
  /** Builds the sorter for the cluster totals. Default: `createHierarchicalSorter` (weighted DRF). */
  readonly sorter?: SorterFactory;
  /**
   * Returns the order to visit agents in: a permutation of `0..n-1` (throws otherwise).
   * Default: identity order.
   */
  readonly shuffle?: (n: number) => number[];
  readonly trace?: AllocationTrace;
}
