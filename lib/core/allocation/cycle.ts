/**
 * What a cycle starts from: the cluster's totals, the sorter's role tree with every framework
 * charged what it already holds, and — when any role has a guarantee or a limit — the quota
 * tree ({@link RoleTree}) with what each role consumes. Mesos keeps these between cycles and
 * updates them as offers come and go; Meso rebuilds them from the store's records every cycle,
 * so that a cycle is a pure function of what it read.
 *
 * Per-cycle state is plain objects built once and hung on the sorter's nodes (`TreeNode.data`),
 * so the stages that follow allocate nothing per agent but the offers.
 */
import type { FilterRecord } from '../model.ts';
import { ANY_ROLE, EMPTY, isEmpty, type Resources, unreserved } from '../resources.ts';
import type { RoleConfig } from '../roles.ts';
import { createHierarchicalSorter, parentRole, scalarsOfResources } from '../sorter/hierarchical.ts';
import type { Scalars, TreeNode } from '../sorter/node.ts';
import type { Sorter } from '../sorter/types.ts';
import { DEFAULT_MIN_ALLOCATABLE } from './eligibility.ts';
import { addScalars, type QuotaRole, RoleTree, zeroScalars } from './role-tree.ts';
import type {
  AllocateOptions,
  AllocationAgent,
  AllocationFramework,
  AllocationInput,
  AllocationTrace,
  TraceSkip,
} from './types.ts';

/** A role in this cycle, hung on its sorter node: what it would be offered of the current agent. */
export class CycleRole {
  /** The agent (its stamp) `offer` and `bound` were computed for. */
  stamp = -1;
  offer: Resources | undefined = undefined;
  bound: TraceSkip['bound'] = undefined;

  constructor(
    readonly role: string,
    readonly node: TreeNode,
    /** The role's quota state, when the cycle has quotas. */
    readonly quota: QuotaRole | undefined,
    /** The role's minimum offers (from its configuration). */
    readonly min: readonly Resources[] | undefined,
  ) {}
}

/** A framework in one of its roles, hung on its sorter leaf. */
export interface CycleLeaf {
  readonly fw: AllocationFramework;
  readonly role: CycleRole;
  /** The framework's refusal filters by agent id (undefined when it has none). */
  readonly filters: Readonly<Record<string, FilterRecord>> | undefined;
  readonly min: readonly Resources[] | undefined;
  /** The agent index it was last offered on (one offer per leaf per agent per cycle). */
  served: number;
}

export interface Cycle {
  readonly now: number;
  /** The cluster's minimum allocatable resources. */
  readonly min: Resources;
  readonly trace: AllocationTrace | undefined;
  readonly sorter: Sorter;
  /** Undefined when no role has a guarantee or a limit: then nothing is capped or held back. */
  readonly quota: RoleTree | undefined;
}

/** Builds the cycle's state; undefined when no framework can be offered anything. */
export function prepareCycle(input: AllocationInput, options: AllocateOptions): Cycle | undefined {
  const { shardTotal, anyReserved } = measureAgents(input.agents);
  const total = input.total ? scalarsOfResources(input.total) : shardTotal;
  const configs = new Map<string, RoleConfig>();
  let anyQuota = false;
  for (const c of input.roles ?? []) {
    configs.set(c.role, c);
    if (c.guarantee !== undefined || c.limit !== undefined) anyQuota = true;
  }
  const weights = new Map<string, number>();
  for (const c of configs.values()) if (c.weight !== undefined) weights.set(c.role, c.weight);
  const sorter = (options.sorter ?? createHierarchicalSorter)(total, { weights });
  const quota = anyQuota ? new RoleTree(configs) : undefined;
  const roles = new CycleRoles(sorter, configs, quota);
  // A sharded caller passes the consumption itself; otherwise it is what frameworks hold.
  const countHeld = quota !== undefined && input.quotaConsumption === undefined;
  if (!addFrameworks(input.frameworks, sorter, roles, countHeld)) return undefined;
  if (quota) countQuota(quota, input, anyReserved, shardTotal, total);
  return {
    now: input.now,
    min: input.minAllocatable ?? DEFAULT_MIN_ALLOCATABLE,
    trace: options.trace,
    sorter,
    quota,
  };
}

/** The sum of the agents' totals (reserved and unreserved alike), and whether any has reservations. */
function measureAgents(agents: readonly AllocationAgent[]): { shardTotal: Scalars; anyReserved: boolean } {
  const shardTotal = zeroScalars();
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
  return { shardTotal, anyReserved };
}

/** The cycle's roles by name, each created with its ancestors and hung on its sorter node. */
class CycleRoles {
  private readonly byName = new Map<string, CycleRole>();

  constructor(
    private readonly sorter: Sorter,
    private readonly configs: ReadonlyMap<string, RoleConfig>,
    private readonly quota: RoleTree | undefined,
  ) {}

  get(role: string): CycleRole {
    const existing = this.byName.get(role);
    if (existing) return existing;
    const parent = parentRole(role);
    if (parent !== '') this.get(parent);
    const node = this.sorter.role(role);
    const r = new CycleRole(role, node, this.quota?.get(role), this.configs.get(role)?.minAllocatable);
    node.data = r;
    this.byName.set(role, r);
    return r;
  }
}

/**
 * A leaf per (active framework, unsuppressed role); every allocation is charged to the sorter
 * and, when `countHeld`, its unreserved part to the role's quota consumption. Returns whether
 * any leaf was added.
 */
function addFrameworks(
  frameworks: readonly AllocationFramework[],
  sorter: Sorter,
  roles: CycleRoles,
  countHeld: boolean,
): boolean {
  let anyLeaf = false;
  const charge = (node: TreeNode, rs: CycleRole, alloc: Resources): void => {
    sorter.charge(node, alloc.reserved === undefined ? alloc : scalarsOfResources(alloc));
    if (countHeld) addScalars(rs.quota!.consumed, unreserved(alloc));
  };
  for (const f of frameworks) {
    const fwRoles = f.roles && f.roles.length > 0 ? f.roles : [ANY_ROLE];
    const suppressed =
      f.suppressedRoles && f.suppressedRoles.length > 0 ? new Set(f.suppressedRoles) : undefined;
    let filters: Readonly<Record<string, FilterRecord>> | undefined;
    for (const _ in f.filters) {
      filters = f.filters;
      break;
    }
    const seenRoles = new Set<string>();
    for (let i = 0; i < fwRoles.length; i++) {
      const role = fwRoles[i]!;
      if (seenRoles.has(role)) continue;
      seenRoles.add(role);
      const rs = roles.get(role);
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
        const min =
          f.minAllocatable && Object.hasOwn(f.minAllocatable, role) ? f.minAllocatable[role] : rs.min;
        const leaf: CycleLeaf = { fw: f, role: rs, filters, min, served: -1 };
        node.data = leaf;
        anyLeaf = true;
      } else {
        node = sorter.group(role);
      }
      if (!isEmpty(alloc)) charge(node, rs, alloc);
    }
    // Allocations in roles the framework no longer has still count for those roles.
    if (f.allocations) {
      for (const role of Object.keys(f.allocations)) {
        if (seenRoles.has(role)) continue;
        const alloc = f.allocations[role]!;
        if (isEmpty(alloc)) continue;
        const rs = roles.get(role);
        charge(sorter.group(role), rs, alloc);
      }
    }
  }
  return anyLeaf;
}

/** Quota consumption of reservations (or as the caller counted it), need, and the headroom. */
function countQuota(
  quota: RoleTree,
  input: AllocationInput,
  anyReserved: boolean,
  shardTotal: Scalars,
  total: Scalars,
): void {
  if (input.quotaConsumption) {
    for (const role of Object.keys(input.quotaConsumption))
      quota.consumes(role, scalarsOfResources(input.quotaConsumption[role]!));
  } else if (input.reservedTotals) {
    for (const role of Object.keys(input.reservedTotals))
      quota.consumes(role, scalarsOfResources(input.reservedTotals[role]!));
  } else if (anyReserved) {
    for (const a of input.agents) {
      const res = a.total.reserved;
      if (res !== undefined) for (const role of Object.keys(res)) quota.consumes(role, res[role]!);
    }
  }
  quota.settle();
  for (const a of input.agents) if (a.active) quota.addFree(a.free);
  if (input.total && !input.quotaConsumption) quota.setShard(shardTotal, total);
}
