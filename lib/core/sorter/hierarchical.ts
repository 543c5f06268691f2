/**
 * Hierarchical DRF: roles at each level of the role tree ordered by weighted dominant share, and
 * frameworks within a role by their dominant share — Mesos's `sorter/drf/` with hierarchical
 * roles (`eng`, `eng/web`), as the allocator asks it *who goes next*.
 *
 * The tree: the root holds the top-level roles (`*`, `eng`, …); a role holds its child roles
 * and, when frameworks are in the role itself, one *group* node holding those frameworks (Mesos's
 * virtual `eng/.` leaf): frameworks directly in `eng` compete with `eng/web` and `eng/batch` as if
 * they were one more child role, of weight 1. The leaves are clients — one per (role, framework):
 * a framework in several roles is a leaf in each, with the allocation it holds in that role.
 *
 * Every node keeps its subtree's allocation (scalars in thousandths) and its share, and each
 * node's children stay sorted by (share, id): charging a leaf updates it and each ancestor and
 * moves each within its parent's array by binary search and `splice`, so a charge costs
 * O(depth · log n) comparisons plus a memmove, and {@link HierarchicalSorter.first} is a
 * depth-first walk over the sorted arrays that stops at the first eligible leaf (the same trade
 * as `drf.ts`, whose comment has the measurements). The share itself is the policy and is
 * pluggable ({@link SharePolicy}); the tree and the walk are the mechanism.
 *
 * Ties are broken by id in code-unit order, so the result is deterministic.
 */
import { type Resources, SCALARS, scalarOf } from '../resources.ts';
import { SorterError } from './errors.ts';
import type { Sorter } from './types.ts';

/** The scalar quantities shares are computed on (thousandths). */
export interface Scalars {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
}

/**
 * Who goes first: the node with the lowest `share` of its allocation, among siblings.
 * Default {@link weightedDrf}.
 */
export interface SharePolicy {
  share(allocated: Scalars, total: Scalars, weight: number): number;
}

/** Dominant Resource Fairness divided by the weight (Mesos's default). */
export const weightedDrf: SharePolicy = {
  // Unrolled (no loop over names): this runs for every node on the path of every offer.
  share(a, t, weight) {
    let s = 0;
    if (t.cpus > 0 && a.cpus / t.cpus > s) s = a.cpus / t.cpus;
    if (t.mem > 0 && a.mem / t.mem > s) s = a.mem / t.mem;
    if (t.disk > 0 && a.disk / t.disk > s) s = a.disk / t.disk;
    if (t.gpus > 0 && a.gpus / t.gpus > s) s = a.gpus / t.gpus;
    return weight === 1 ? s : s / weight;
  },
};

export type NodeKind = 'root' | 'role' | 'group' | 'leaf';

/** A node of the role tree. The allocator reads it and may hang its own state on `data`. */
export class TreeNode {
  cpus = 0;
  mem = 0;
  disk = 0;
  gpus = 0;
  share = 0;
  weight = 1;
  /** Children in the order to serve them (lowest share first). Leaves have none. */
  readonly children: TreeNode[] = [];
  /** Free for the caller (the allocator keeps per-role or per-leaf state here). */
  data: unknown = undefined;
  /** For a role node, its group of frameworks, once one is added. */
  group: TreeNode | undefined = undefined;
  /** Leaves in this subtree: the walk skips subtrees without any. */
  leafCount = 0;

  constructor(
    readonly kind: NodeKind,
    /** Tie-breaker among siblings: the last path segment, `.` for a group, the client for a leaf. */
    readonly id: string,
    /** The role path (`eng/web`); `''` for the root. A group's and a leaf's role is their role's. */
    readonly role: string,
    readonly parent: TreeNode | undefined,
    /** For leaves: the client (a framework id). */
    readonly client: string,
  ) {}
}

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

export interface HierarchicalSorterOptions {
  /** Role weights (default 1 each). */
  readonly weights?: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  readonly policy?: SharePolicy;
}

/**
 * The sorter the allocator uses: a role tree with a sorted walk. It also implements the flat
 * {@link Sorter} interface, taking clients as `role/frameworkId` paths (a bare id is in `*`).
 */
export interface HierarchicalSorter extends Sorter {
  /** The role's node, created with its ancestors as needed. */
  role(role: string): TreeNode;
  /** The role's node if it exists. */
  findRole(role: string): TreeNode | undefined;
  /** The group node holding the frameworks directly in `role` (created as needed). */
  group(role: string): TreeNode;
  /** Adds a framework (client) to a role; returns its leaf. Adding it twice throws. */
  addLeaf(role: string, client: string): TreeNode;
  leaf(role: string, client: string): TreeNode | undefined;
  /** Charges (sign 1) or credits (sign −1) a leaf or a role node and everything above it. */
  charge(node: TreeNode, r: Scalars, sign?: 1 | -1): void;
  /** Changes a role's weight (and re-sorts it among its siblings). */
  setWeight(role: string, weight: number): void;
  /**
   * The first leaf, walking the tree depth first in each level's order, for which `leafOk` holds.
   * `enter(node)` is asked before a role's or group's subtree is walked (false skips it), and
   * `leave(node)` is called after a subtree that was entered (both optional): the caller can
   * prune whole roles (suppressed, at their quota limit) and keep context along the path.
   * None of the callbacks may change the sorter.
   */
  walk(
    leafOk: (leaf: TreeNode) => boolean,
    enter?: (node: TreeNode) => boolean,
    leave?: (node: TreeNode) => void,
  ): TreeNode | undefined;
  /** Every leaf in walk order. */
  leaves(): TreeNode[];
  readonly root: TreeNode;
  readonly total: Scalars;
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
 * sorter.addLeaf('eng/web', 'f1');
 * sorter.addLeaf('ads', 'f2');
 * sorter.charge(sorter.leaf('eng/web', 'f1')!, parse('cpus:3'));
 * sorter.charge(sorter.leaf('ads', 'f2')!, parse('cpus:2'));
 * sorter.sort(); // ['eng/web/f1', 'ads/f2']: eng's 0.3 / 3 = 0.1 < ads' 0.2
 */
export function createHierarchicalSorter(
  total: Resources | Scalars,
  opts: HierarchicalSorterOptions = {},
): HierarchicalSorter {
  const policy = opts.policy ?? weightedDrf;
  let totals: Scalars = { ...scalarsOf(total) };
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
  const leaves = new Map<string, TreeNode>();
  let size = 0;

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
    leaves.set(key, n);
    insert(g, n);
    for (let a: TreeNode | undefined = g; a !== undefined; a = a.parent) a.leafCount++;
    size++;
    return n;
  };

  const walk = (
    leafOk: (leaf: TreeNode) => boolean,
    enter?: (node: TreeNode) => boolean,
    leave?: (node: TreeNode) => void,
  ): TreeNode | undefined => walkFrom(root, leafOk, enter, leave);

  const allLeaves = (): TreeNode[] => {
    const out: TreeNode[] = [];
    walk((l) => {
      out.push(l);
      return false;
    });
    return out;
  };

  /** `eng/web/f1` → role `eng/web`, client `f1`; a bare `f1` is in role `*`. */
  const split = (client: string): [string, string] => {
    const i = client.lastIndexOf('/');
    return i < 0 ? ['*', client] : [client.slice(0, i), client.slice(i + 1)];
  };
  const getLeaf = (client: string): TreeNode => {
    const [r, c] = split(client);
    const n = leaves.get(`${r}/${c}`);
    if (!n) throw new SorterError(`unknown client "${client}"`);
    return n;
  };
  const pathOf = (n: TreeNode): string => `${n.role}/${n.client}`;

  const recomputeAll = (n: TreeNode): void => {
    for (const c of n.children) {
      c.share = computeShare(c);
      recomputeAll(c);
    }
    n.children.sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0));
  };

  return {
    root,
    get total() {
      return totals;
    },
    role,
    findRole: (r) => roles.get(r),
    group: (r) => groupOf(role(r)),
    addLeaf,
    leaf: (r, client) => leaves.get(`${r}/${client}`),
    charge,
    setWeight(r, weight) {
      const n = role(r);
      n.weight = checkWeight(weight);
      reshare(n, computeShare(n));
    },
    walk,
    leaves: allLeaves,

    // The flat Sorter interface, over `role/client` paths.
    add(client, weight = 1) {
      const [r, c] = split(client);
      const n = addLeaf(r, c);
      n.weight = checkWeight(weight);
    },
    remove(client) {
      const [r, c] = split(client);
      const key = `${r}/${c}`;
      const n = leaves.get(key);
      if (!n) return;
      if (n.cpus || n.mem || n.disk || n.gpus) charge(n, n, -1);
      const order = n.parent!.children;
      order.splice(lowerBound(order, n, 0, order.length), 1);
      for (let a: TreeNode | undefined = n.parent; a !== undefined; a = a.parent) a.leafCount--;
      leaves.delete(key);
      size--;
    },
    allocated(client, r) {
      charge(getLeaf(client), scalarsOf(r));
    },
    unallocated(client, r) {
      charge(getLeaf(client), scalarsOf(r), -1);
    },
    share(client) {
      return getLeaf(client).share;
    },
    sort() {
      return allLeaves().map(pathOf);
    },
    first(eligible) {
      const n = walk((l) => eligible(pathOf(l)));
      return n === undefined ? undefined : pathOf(n);
    },
    setTotal(r) {
      totals = { ...scalarsOf(r) };
      recomputeAll(root);
    },
    get size() {
      return size;
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
