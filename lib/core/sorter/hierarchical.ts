/**
 * Hierarchical DRF: roles at each level of the role tree ordered by weighted dominant share, and
 * frameworks within a role by their dominant share — Mesos's `sorter/drf/` with hierarchical
 * roles (`eng`, `eng/web`), as the allocator asks it *who goes next*. This file is the mechanism
 * (the tree and its walk); the share is the policy ({@link SharePolicy}, default `./drf.ts`).
 *
 * The tree: the root holds the top-level roles (`*`, `eng`, …); a role holds its child roles
 * and, when frameworks are in the role itself, one *group* node holding those frameworks (Mesos's
 * virtual `eng/.` leaf): frameworks directly in `eng` compete with `eng/web` and `eng/batch` as if
 * they were one more child role, of weight 1. The leaves are clients — one per (role, framework):
 * a framework in several roles is a leaf in each, with the allocation it holds in that role.
 *
 * Why sorted arrays: the allocator asks "who is first?" once per offer and then charges that
 * client, so a cycle over 50,000 agents and 3,000 frameworks must not re-sort 3,000 clients
 * 50,000 times. Every node keeps its subtree's allocation (scalars in thousandths) and its share,
 * and each node's children stay sorted by (share, id): charging a leaf updates it and each
 * ancestor and moves each within its parent's array by binary search and `splice` (a memmove),
 * so a charge costs O(depth · log n) comparisons, and {@link Sorter.walk} is a depth-first scan
 * over the sorted arrays that stops at the first eligible leaf: skipping k ineligible clients
 * (refusal filters) costs k predicate calls and nothing else. An indexed binary heap was measured
 * too: equal when the first client is eligible, but 3-5x slower whenever the walk has to go past
 * filtered clients, because every step of a best-first walk over a heap costs O(log n)
 * comparisons. (`Array.prototype.copyWithin` instead of `splice` was ~60x slower in V8.)
 *
 * Ties are broken by id in code-unit order, not locale order, so the result is deterministic.
 */
import { type Resources, SCALARS, scalarOf } from '../resources.ts';
import { weightedDrf } from './drf.ts';
import { SorterError } from './errors.ts';
import { type Scalars, TreeNode } from './node.ts';
import type { SharePolicy, Sorter, SorterOptions } from './types.ts';

export type { Scalars, SharePolicy };
export { TreeNode, weightedDrf };

function less(a: TreeNode, b: TreeNode): boolean {
  if (a.share !== b.share) return a.share < b.share;
  return a.id < b.id;
}

/** The index of the first entry of `order` in [lo, hi) that is not less than `e`. */
function lowerBound(order: readonly TreeNode[], e: TreeNode, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (less(order[mid]!, e)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The depth-first walk of {@link HierarchicalSorter.walk}, as a plain function (no closures per call). */
function walkFrom(
  node: TreeNode,
  leafOk: (leaf: TreeNode) => boolean,
  enter: ((node: TreeNode) => boolean) | undefined,
  leave: ((node: TreeNode) => void) | undefined,
): TreeNode | undefined {
  const order = node.children;
  for (let i = 0; i < order.length; i++) {
    const child = order[i]!;
    if (child.kind === 'leaf') {
      if (leafOk(child)) return child;
      continue;
    }
    if (child.leafCount === 0 || (enter !== undefined && !enter(child))) continue;
    const found = walkFrom(child, leafOk, enter, leave);
    if (leave !== undefined) leave(child);
    if (found !== undefined) return found;
  }
  return undefined;
}

function checkWeight(weight: number): number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new SorterError(`weight must be a finite number > 0, got ${weight}`);
  }
  return weight;
}

/** The parent role of `eng/web/x` is `eng/web`; of a top-level role, the root (`''`). */
export function parentRole(role: string): string {
  const i = role.lastIndexOf('/');
  return i < 0 ? '' : role.slice(0, i);
}

/** Whether `role` is `ancestor` or below it (`eng/web` is within `eng`; `engine` is not). */
export function isWithinRole(role: string, ancestor: string): boolean {
  return (
    role === ancestor ||
    (role.length > ancestor.length && role.startsWith(ancestor) && role.charCodeAt(ancestor.length) === 47)
  );
}

/** `role` and every role above it, nearest first: `eng/web/x` → `eng/web/x`, `eng/web`, `eng`. */
export function roleAndAncestors(role: string): string[] {
  const out = [role];
  for (let r = parentRole(role); r !== ''; r = parentRole(r)) out.push(r);
  return out;
}

/** The options of {@link createHierarchicalSorter}. */
export type HierarchicalSorterOptions = SorterOptions;

/**
 * The hierarchical sorter: the {@link Sorter} the allocator calls, plus two read-only views for
 * tests and debugging (the allocator needs neither).
 */
export interface HierarchicalSorter extends Sorter {
  /** The role's node if it exists. */
  findRole(role: string): TreeNode | undefined;
  /** Every leaf as `role/client`, in the order {@link Sorter.walk} visits them. */
  sort(): string[];
}

const scalarsOf = (r: Resources | Scalars): Scalars =>
  'ports' in r
    ? {
        cpus: scalarOf(r, 'cpus'),
        mem: scalarOf(r, 'mem'),
        disk: scalarOf(r, 'disk'),
        gpus: scalarOf(r, 'gpus'),
      }
    : r;

/**
 * A hierarchical DRF sorter over a cluster of `total` resources (reserved and unreserved alike).
 *
 * @example
 * const sorter = createHierarchicalSorter(parse('cpus:10;mem:10240'), { weights: { eng: 3 } });
 * sorter.charge(sorter.addLeaf('eng/web', 'f1'), parse('cpus:3'));
 * sorter.charge(sorter.addLeaf('ads', 'f2'), parse('cpus:2'));
 * sorter.sort(); // ['eng/web/f1', 'ads/f2']: eng's 0.3 / 3 = 0.1 < ads' 0.2
 */
export function createHierarchicalSorter(
  total: Resources | Scalars,
  opts: SorterOptions = {},
): HierarchicalSorter {
  const policy = opts.policy ?? weightedDrf;
  const totals: Scalars = { ...scalarsOf(total) };
  const weightOf = (role: string): number => {
    const w = opts.weights;
    if (!w) return 1;
    const v =
      w instanceof Map
        ? w.get(role)
        : Object.hasOwn(w, role)
          ? (w as Record<string, number>)[role]
          : undefined;
    return v === undefined ? 1 : checkWeight(v);
  };
  const root = new TreeNode('root', '', '', undefined, '');
  const roles = new Map<string, TreeNode>([['', root]]);
  const leaves = new Set<string>();

  const computeShare = (n: TreeNode): number => policy.share(n, totals, n.weight);

  const insert = (parent: TreeNode, n: TreeNode): void => {
    const order = parent.children;
    order.splice(lowerBound(order, n, 0, order.length), 0, n);
  };

  /** Gives `n` a new share and moves it to its place among its siblings. */
  const reshare = (n: TreeNode, share: number): void => {
    const order = n.parent!.children;
    const len = order.length;
    if (len === 1) {
      n.share = share;
      return;
    }
    const i = lowerBound(order, n, 0, len); // order[i] === n: ids are unique among siblings
    n.share = share;
    if (i + 1 < len && less(order[i + 1]!, n)) {
      const j = lowerBound(order, n, i + 1, len);
      order.splice(i, 1);
      order.splice(j - 1, 0, n);
    } else if (i > 0 && less(n, order[i - 1]!)) {
      const j = lowerBound(order, n, 0, i);
      order.splice(i, 1);
      order.splice(j, 0, n);
    }
  };

  const role = (path: string): TreeNode => {
    const existing = roles.get(path);
    if (existing) return existing;
    if (path === '') return root;
    const parent = role(parentRole(path));
    const seg = path.slice(path.lastIndexOf('/') + 1);
    const n = new TreeNode('role', seg, path, parent, '');
    n.weight = weightOf(path);
    n.share = 0;
    roles.set(path, n);
    insert(parent, n);
    return n;
  };

  const groupOf = (r: TreeNode): TreeNode => {
    if (r.group) return r.group;
    const g = new TreeNode('group', '.', r.role, r, '');
    r.group = g;
    insert(r, g);
    return g;
  };

  const charge = (node: TreeNode, r: Scalars, sign: 1 | -1 = 1): void => {
    const c = sign * r.cpus;
    const m = sign * r.mem;
    const d = sign * r.disk;
    const g = sign * r.gpus;
    for (let n: TreeNode | undefined = node; n !== undefined && n !== root; n = n.parent) {
      const cpus = n.cpus + c;
      const mem = n.mem + m;
      const disk = n.disk + d;
      const gpus = n.gpus + g;
      if (cpus < 0 || mem < 0 || disk < 0 || gpus < 0) {
        throw new SorterError(
          `"${n.role}${n.client ? `/${n.client}` : ''}" was not allocated what is being unallocated`,
        );
      }
      n.cpus = cpus;
      n.mem = mem;
      n.disk = disk;
      n.gpus = gpus;
      reshare(n, computeShare(n));
    }
  };

  const addLeaf = (r: string, client: string): TreeNode => {
    const key = `${r}/${client}`;
    if (leaves.has(key)) throw new SorterError(`client "${key}" already added`);
    const g = groupOf(role(r));
    const n = new TreeNode('leaf', client, r, g, client);
    leaves.add(key);
    insert(g, n);
    for (let a: TreeNode | undefined = g; a !== undefined; a = a.parent) a.leafCount++;
    return n;
  };

  const walk = (
    leafOk: (leaf: TreeNode) => boolean,
    enter?: (node: TreeNode) => boolean,
    leave?: (node: TreeNode) => void,
  ): TreeNode | undefined => walkFrom(root, leafOk, enter, leave);

  return {
    root,
    role,
    group: (r) => groupOf(role(r)),
    addLeaf,
    charge,
    walk,
    findRole: (r) => roles.get(r),
    sort() {
      const out: string[] = [];
      walk((l) => {
        out.push(`${l.role}/${l.client}`);
        return false;
      });
      return out;
    },
  };
}

/** Scalars of resources, reserved and unreserved together. */
export function scalarsOfResources(r: Resources): Scalars {
  if (r.reserved === undefined) return { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus };
  const out: Scalars = { cpus: 0, mem: 0, disk: 0, gpus: 0 };
  for (const name of SCALARS) out[name] = scalarOf(r, name);
  return out;
}
