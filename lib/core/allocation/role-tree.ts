/**
 * Quota across the role tree, kept apart from the sorter as Mesos keeps it in its `RoleTree`
 * (`src/master/allocator/mesos/hierarchical.hpp`), with Mesos 1.9+ semantics:
 *
 * - A role *consumes* what its frameworks hold unreserved (offered or used) plus everything
 *   reserved for it, allocated or not, counting its whole subtree.
 * - *Limits*: the unreserved part of an offer is capped so that no role on the path exceeds its
 *   limit.
 * - *Guarantees*: a role is owed `need = max(guarantee − consumption, Σ children's need)`, so a
 *   parent's guarantee can be met by any role below it but never at the expense of a child's
 *   own. Its *excess*, `guarantee − consumption − Σ children's need`, is what only the role
 *   itself can fill. The cluster keeps the unreserved free resources left (the *headroom*) at
 *   least the root's need: everyone's unreserved share is capped to leave it, except that a role
 *   with an excess on its path may take headroom up to that excess.
 *
 * Built once per cycle from what every role consumes ({@link RoleTree.consumes}, then
 * {@link RoleTree.settle}), and updated after every offer ({@link RoleTree.consume}), which
 * walks only the offered role's path. The allocation stages ask it two things: how much of an
 * agent a role may take ({@link RoleTree.cap}) and whether anyone is still owed something
 * ({@link RoleTree.anyOwed}).
 */
import { EMPTY, type Resources, SCALARS, type ScalarName, type ScalarsAndPorts } from '../resources.ts';
import type { Quantities, RoleConfig } from '../roles.ts';
import { parentRole } from '../sorter/hierarchical.ts';
import type { Scalars } from '../sorter/node.ts';
import { isAllocatable } from './eligibility.ts';

export const zeroScalars = (): Scalars => ({ cpus: 0, mem: 0, disk: 0, gpus: 0 });

export function addScalars(to: Scalars, r: Scalars, sign = 1): void {
  to.cpus += sign * r.cpus;
  to.mem += sign * r.mem;
  to.disk += sign * r.disk;
  to.gpus += sign * r.gpus;
}

/** One role's quota state for one cycle. */
export class QuotaRole {
  /** This role and every role above it, nearest first, ending with the root. */
  path: QuotaRole[] = [];
  /** Roles on `path` that have a limit. */
  limited: QuotaRole[] = [];
  guarantee: Quantities | undefined = undefined;
  limit: Quantities | undefined = undefined;
  /** Consumption of the subtree: unreserved allocations plus everything reserved. */
  consumed: Scalars = zeroScalars();
  /** What the subtree is still owed. */
  need: Scalars = zeroScalars();
  /** Σ need of child roles. */
  childNeed: Scalars = zeroScalars();
  /** max(0, guarantee − consumption − childNeed): owed to the role beyond its children's due. */
  excess: Scalars = zeroScalars();
  /** Whether any scalar of `excess` is > 0: the role itself is owed something. */
  owed = false;
  /** Roles in this subtree (itself included) that are `owed`. */
  owedBelow = 0;
  depth = 0;

  constructor(
    readonly role: string,
    readonly parent: QuotaRole | undefined,
  ) {}
}

/** What capped a role's offer: its (or an ancestor's) limit, or headroom kept for guarantees. */
export type QuotaBound = 'limit' | 'headroom' | undefined;

export class RoleTree {
  readonly root = new QuotaRole('', undefined);
  private readonly roles = new Map<string, QuotaRole>();
  /** Unreserved free resources on active agents not yet offered. */
  private readonly headroom = zeroScalars();
  /** The part of the cluster this shard holds, per scalar: its part of the headroom to keep. */
  private readonly part: Scalars = { cpus: 1, mem: 1, disk: 1, gpus: 1 };
  /** What capped the offer of the last {@link cap}. */
  bound: QuotaBound = undefined;

  /** Every configured role gets its state at once, so an unmet guarantee counts with no framework in it. */
  constructor(private readonly configs: ReadonlyMap<string, RoleConfig>) {
    this.root.path = [this.root];
    this.roles.set('', this.root);
    for (const role of configs.keys()) this.get(role);
  }

  /** The role's quota state, created with its ancestors as needed. */
  get(role: string): QuotaRole {
    const existing = this.roles.get(role);
    if (existing) return existing;
    const parent = this.get(parentRole(role));
    const q = new QuotaRole(role, parent);
    q.path = [q, ...parent.path];
    q.depth = parent.depth + 1;
    const c = this.configs.get(role);
    if (c) {
      q.guarantee = c.guarantee;
      q.limit = c.limit;
    }
    q.limited = q.path.filter((p) => p.limit !== undefined);
    this.roles.set(role, q);
    return q;
  }

  /** Adds what `role` itself consumes (before {@link settle}). */
  consumes(role: string, r: Scalars): void {
    addScalars(this.get(role).consumed, r);
  }

  /** An agent's free resources join the headroom (before any offer). */
  addFree(free: Scalars): void {
    this.headroom.cpus += free.cpus;
    this.headroom.mem += free.mem;
    this.headroom.disk += free.disk;
    this.headroom.gpus += free.gpus;
  }

  /** For one shard of `total`: keep only its part of the headroom the guarantees require. */
  setShard(shard: Scalars, total: Scalars): void {
    for (const name of SCALARS)
      this.part[name] = total[name] > 0 ? Math.min(1, shard[name] / total[name]) : 1;
  }

  /** Once every consumption is in: children's consumption into parents, then need bottom-up. */
  settle(): void {
    const all = [...this.roles.values()].sort((x, y) => y.depth - x.depth);
    for (const q of all) if (q.parent) addScalars(q.parent.consumed, q.consumed);
    for (const q of all) {
      recomputeNeed(q);
      if (q.parent) addScalars(q.parent.childNeed, q.need);
    }
    for (const q of all) if (q.owed) for (const p of q.path) p.owedBelow++;
  }

  /** Whether some role is still owed part of its guarantee. */
  get anyOwed(): boolean {
    return this.root.owedBelow > 0;
  }

  /** The headroom this shard must keep of scalar `name`. */
  private required(name: ScalarName): number {
    return Math.ceil(this.root.need[name] * this.part[name]);
  }

  /** How much of scalar `name` anyone may take without eating into the headroom, plus `extra`. */
  private allowed(name: ScalarName, extra: number): number {
    const n = this.required(name);
    return n <= 0 ? Number.POSITIVE_INFINITY : extra + Math.max(0, this.headroom[name] - n);
  }

  /**
   * The part of unreserved `u` role `q` may take: capped by the limits on its path and by the
   * headroom (less what the roles on its path are owed). Sets {@link bound}. Returns `u` itself
   * when nothing is capped.
   */
  cap(q: QuotaRole, u: ScalarsAndPorts): ScalarsAndPorts {
    let { cpus, mem, disk, gpus } = u;
    let byLimit = false;
    let byHeadroom = false;
    for (const a of q.limited) {
      const l = a.limit!;
      const c = a.consumed;
      if (l.cpus !== undefined && cpus > l.cpus - c.cpus)
        [cpus, byLimit] = [Math.max(0, l.cpus - c.cpus), true];
      if (l.mem !== undefined && mem > l.mem - c.mem) [mem, byLimit] = [Math.max(0, l.mem - c.mem), true];
      if (l.disk !== undefined && disk > l.disk - c.disk)
        [disk, byLimit] = [Math.max(0, l.disk - c.disk), true];
      if (l.gpus !== undefined && gpus > l.gpus - c.gpus)
        [gpus, byLimit] = [Math.max(0, l.gpus - c.gpus), true];
    }
    const need = this.root.need;
    if (need.cpus > 0 || need.mem > 0 || need.disk > 0 || need.gpus > 0) {
      const owed = zeroScalars();
      for (const a of q.path) if (a.owed) addScalars(owed, a.excess);
      let x = this.allowed('cpus', owed.cpus);
      if (cpus > x) [cpus, byHeadroom] = [Math.max(0, x), true];
      x = this.allowed('mem', owed.mem);
      if (mem > x) [mem, byHeadroom] = [Math.max(0, x), true];
      x = this.allowed('disk', owed.disk);
      if (disk > x) [disk, byHeadroom] = [Math.max(0, x), true];
      x = this.allowed('gpus', owed.gpus);
      if (gpus > x) [gpus, byHeadroom] = [Math.max(0, x), true];
    }
    this.bound = byLimit ? 'limit' : byHeadroom ? 'headroom' : undefined;
    if (cpus === u.cpus && mem === u.mem && disk === u.disk && gpus === u.gpus) return u;
    const any = cpus > 0 || mem > 0 || disk > 0 || gpus > 0;
    return { cpus, mem, disk, gpus, ports: any ? u.ports : EMPTY.ports };
  }

  /** Whether a role owed nothing could still be offered something of unreserved `u`. */
  surplus(u: ScalarsAndPorts, min: Resources): boolean {
    return isAllocatable(
      {
        cpus: Math.min(u.cpus, this.allowed('cpus', 0)),
        mem: Math.min(u.mem, this.allowed('mem', 0)),
        disk: Math.min(u.disk, this.allowed('disk', 0)),
        gpus: Math.min(u.gpus, this.allowed('gpus', 0)),
        ports: EMPTY.ports,
      },
      min,
    );
  }

  /** After an offer of `x` unreserved to `q`: consumption, need and excess up its path; less headroom. */
  consume(q: QuotaRole, x: Scalars): void {
    for (const a of q.path) addScalars(a.consumed, x);
    for (const a of q.path) {
      const before = a.need;
      const wasOwed = a.owed;
      recomputeNeed(a);
      if (a.parent) {
        const p = a.parent.childNeed;
        p.cpus += a.need.cpus - before.cpus;
        p.mem += a.need.mem - before.mem;
        p.disk += a.need.disk - before.disk;
        p.gpus += a.need.gpus - before.gpus;
      }
      if (wasOwed !== a.owed) for (const p of a.path) p.owedBelow += a.owed ? 1 : -1;
    }
    addScalars(this.headroom, x, -1);
  }
}

/** need = max(guarantee − consumption, Σ children's need), ≥ 0; excess = what only this role can fill. */
function recomputeNeed(q: QuotaRole): void {
  const g = q.guarantee;
  const need = zeroScalars();
  const excess = zeroScalars();
  let any = false;
  for (const name of SCALARS) {
    const child = q.childNeed[name];
    const gv = g?.[name];
    const own = gv === undefined ? Number.NEGATIVE_INFINITY : gv - q.consumed[name];
    need[name] = Math.max(0, own, child);
    const e = own - child;
    if (e > 0) {
      excess[name] = e;
      any = true;
    }
  }
  q.need = need;
  q.excess = excess;
  q.owed = any;
}
