/**
 * The stages that offer one agent, as Mesos's `__generateOffers` tells them
 * (`src/master/allocator/mesos/hierarchical.cpp`):
 *
 * 1. **Guarantees first** ({@link AgentOffers.guaranteesFirst}): only subtrees holding a role
 *    still owed part of its guarantee are walked, in fair order; such a role may take the
 *    headroom held back for guarantees, up to what it is owed.
 * 2. **Everyone** ({@link AgentOffers.everyone}): every role, in fair order, each capped so the
 *    headroom for unmet guarantees stays in the cluster. When nothing but headroom is left, the
 *    agent is held back.
 *
 * Each offer made goes back to stage 1 with what is left of the agent, so a role's offer is
 * charged to the sorter and the quota tree before the next framework is chosen (progressive
 * filling). Mesos runs stage 1 over every agent, then stage 2 over every agent; Meso runs both
 * stages on one agent before the next, which lets the agent loop stay one pass while the
 * headroom rule still keeps what the guarantees need.
 *
 * Within a stage, who goes next is the sorter's business ({@link Sorter.walk}); this file
 * decides, for a role or a framework the walk reaches, what it would get and whether it may
 * have it: limits and headroom (the quota tree), reservations for the role, the minimum
 * allocatable resources, refusal filters.
 */
import {
  EMPTY,
  isEmpty,
  type Resources,
  type ScalarsAndPorts,
  subtract,
  unreserved,
  withReserved,
} from '../resources.ts';
import { isWithinRole, scalarsOfResources } from '../sorter/hierarchical.ts';
import type { TreeNode } from '../sorter/node.ts';
import type { Sorter } from '../sorter/types.ts';
import type { Cycle, CycleLeaf, CycleRole } from './cycle.ts';
import { isAllocatable, isFiltered, meetsMinimum } from './eligibility.ts';
import type { RoleTree } from './role-tree.ts';
import type { AllocatedOffer, AllocationAgent, AllocationTrace } from './types.ts';

/**
 * Offers the agents of one cycle, one agent at a time. The walk's callbacks are made once per
 * cycle and read the current agent from fields, so walking allocates nothing per agent.
 */
export class AgentOffers {
  // The current agent.
  private agentIndex = 0;
  private agentId = '';
  private free: Resources = EMPTY;
  private freeUnreserved: ScalarsAndPorts = EMPTY;
  /** Bumped for every offer decision: a role's cached offer is for one stamp. */
  private stamp = 0;
  /** Stage 1: how deep the walk is inside a role that is owed something (0: not inside one). */
  private owedDepth = 0;

  // The cycle's parts, each one load away on the hot path.
  private readonly sorter: Sorter;
  private readonly quota: RoleTree | undefined;
  private readonly min: Resources;
  private readonly now: number;
  private readonly trace: AllocationTrace | undefined;

  constructor(
    cycle: Cycle,
    /** Where the offers go, in the order they are made. */
    private readonly offers: AllocatedOffer[],
  ) {
    this.sorter = cycle.sorter;
    this.quota = cycle.quota;
    this.min = cycle.min;
    this.now = cycle.now;
    this.trace = cycle.trace;
  }

  /** Offers what is free on `agent` (at `index` in the input), stage 1 then stage 2, until it is spent. */
  offerAgent(agent: AllocationAgent, index: number): void {
    const { min, trace } = this;
    if (!agent.active) {
      trace?.skip({ agentId: agent.agentId, reason: 'agent-inactive' });
      return;
    }
    if (!isAllocatable(agent.free, min)) {
      if (trace && !isEmpty(agent.free)) trace.skip({ agentId: agent.agentId, reason: 'agent-too-small' });
      return;
    }
    this.agentIndex = index;
    this.agentId = agent.agentId;
    this.free = agent.free;
    this.freeUnreserved = unreserved(agent.free);
    for (;;) {
      this.stamp++;
      const chosen = this.guaranteesFirst() ?? this.everyone();
      if (chosen === undefined || !this.offerTo(chosen)) return;
    }
  }

  /** Stage 1: the first framework, in fair order, of a role still owed part of its guarantee. */
  private guaranteesFirst(): TreeNode | undefined {
    const quota = this.quota;
    if (quota === undefined || !quota.anyOwed) return undefined;
    this.owedDepth = 0;
    return this.sorter.walk(this.leafOk, this.enterOwed, this.leaveOwed);
  }

  /** Stage 2: the first framework, in fair order, of any role, unless only headroom is left. */
  private everyone(): TreeNode | undefined {
    const quota = this.quota;
    if (
      quota !== undefined &&
      this.free.reserved === undefined &&
      !quota.surplus(this.freeUnreserved, this.min)
    ) {
      this.trace?.skip({ agentId: this.agentId, reason: 'agent-held-back' });
      return undefined;
    }
    return this.sorter.walk(this.leafOk, this.enterAny);
  }

  /** Makes the offer `leaf`'s role was found to get; returns whether anything worth offering is left. */
  private offerTo(leaf: TreeNode): boolean {
    const { sorter, quota, trace, min } = this;
    const st = leaf.data as CycleLeaf;
    const offer = st.role.offer!;
    const made: AllocatedOffer = {
      frameworkId: st.fw.frameworkId,
      agentId: this.agentId,
      role: st.role.role,
      resources: offer,
    };
    this.offers.push(made);
    st.served = this.agentIndex;
    sorter.charge(leaf, offer.reserved === undefined ? offer : scalarsOfResources(offer));
    trace?.offer(made, leaf.share);
    if (quota !== undefined) quota.consume(st.role.quota!, unreserved(offer));
    if (offer === this.free) return false;
    this.free = subtract(this.free, offer);
    this.freeUnreserved = unreserved(this.free);
    return isAllocatable(this.free, min);
  }

  /** What role `rs` would be offered of the current agent, or undefined if below the minimum. */
  private offerFor(rs: CycleRole): Resources | undefined {
    if (rs.stamp === this.stamp) return rs.offer;
    rs.stamp = this.stamp;
    const quota = this.quota;
    const free = this.free;
    let o: Resources;
    if (quota === undefined && free.reserved === undefined) {
      o = free;
      rs.bound = undefined;
    } else {
      let base = this.freeUnreserved;
      if (quota !== undefined) {
        base = quota.cap(rs.quota!, base);
        rs.bound = quota.bound;
      } else rs.bound = undefined;
      const res = free.reserved;
      if (res === undefined) o = base;
      else {
        const usable: [string, ScalarsAndPorts][] = [];
        for (const role of Object.keys(res)) if (isWithinRole(rs.role, role)) usable.push([role, res[role]!]);
        o = usable.length === 0 ? base : withReserved(base, usable);
      }
    }
    if (isAllocatable(o, this.min)) {
      rs.offer = o;
    } else {
      rs.offer = undefined;
      if (rs.bound === undefined) rs.bound = free.reserved !== undefined ? 'reserved-elsewhere' : 'too-small';
    }
    return rs.offer;
  }

  /** Whether the framework at `leaf` may have its role's offer: not served yet, above its minimum, not filtered. */
  private readonly leafOk = (leaf: TreeNode): boolean => {
    const st = leaf.data as CycleLeaf;
    if (st.served === this.agentIndex) return false;
    const offer = this.offerFor(st.role);
    if (offer === undefined) return false;
    const agentId = this.agentId;
    if (st.min !== undefined && !meetsMinimum(offer, st.min)) {
      this.trace?.skip({
        agentId,
        reason: 'below-minimum',
        role: st.role.role,
        frameworkId: st.fw.frameworkId,
      });
      return false;
    }
    const filters = st.filters;
    if (filters !== undefined && Object.hasOwn(filters, agentId)) {
      const f = filters[agentId]!;
      if (isFiltered(f, offer, this.now)) {
        this.trace?.skip({
          agentId,
          reason: 'filtered',
          role: st.role.role,
          frameworkId: st.fw.frameworkId,
          until: f.until,
        });
        return false;
      }
    }
    return true;
  };

  /** Stage 2: a role's group of frameworks is entered when the role has something to offer. */
  private readonly enterAny = (node: TreeNode): boolean => {
    if (node.kind !== 'group') return true;
    const rs = node.parent!.data as CycleRole;
    if (this.offerFor(rs) !== undefined) return true;
    this.trace?.skip({
      agentId: this.agentId,
      reason: 'role-nothing-offerable',
      role: rs.role,
      ...(rs.bound ? { bound: rs.bound } : {}),
    });
    return false;
  };

  /** Stage 1: enter only subtrees with a role still owed something, and groups inside such a role. */
  private readonly enterOwed = (node: TreeNode): boolean => {
    if (node.kind === 'group')
      return this.owedDepth > 0 && this.offerFor(node.parent!.data as CycleRole) !== undefined;
    const q = (node.data as CycleRole).quota!;
    if (this.owedDepth > 0) {
      this.owedDepth++;
      return true;
    }
    if (q.owed) {
      this.owedDepth = 1;
      return true;
    }
    return q.owedBelow > 0;
  };

  private readonly leaveOwed = (node: TreeNode): void => {
    if (node.kind !== 'group' && this.owedDepth > 0) this.owedDepth--;
  };
}
