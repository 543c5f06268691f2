/**
 * Dominant Resource Fairness (Ghodsi et al., NSDI 2011), as Mesos's `sorter/drf/` applies it.
 *
 * A client's dominant share is the largest fraction it holds of any one resource — cpus, mem,
 * disk or gpus — divided by its weight. Serving the client with the lowest dominant share first
 * equalizes dominant shares, which is what makes DRF strategy-proof and envy-free across
 * frameworks whose tasks need different mixes (CPU-heavy next to memory-heavy). Ports are not
 * counted: they are a set of names, not a quantity anybody competes for a fraction of. A
 * resource the cluster has none of (total 0, e.g. gpus) is skipped rather than divided by.
 *
 * Why a heap: the allocator asks "who is first?" once per agent and then charges that client, so
 * a cycle over 50,000 agents and 3,000 frameworks must not re-sort 3,000 clients 50,000 times.
 * An indexed binary heap keyed on (share, client id) answers "first" in O(1) and re-positions
 * the charged client in O(log n). When the first client is not eligible (a filter, say),
 * {@link Sorter.first} walks the heap best-first with a small frontier heap, so visiting the k
 * best clients costs O(k log k), never a full sort. Ties are broken by client id (code-unit
 * order, not locale order) so the result is deterministic.
 */
import { type Resources, SCALARS } from '../resources.ts';
import { SorterError } from './errors.ts';
import type { Sorter } from './types.ts';

/** The scalar parts of a Resources value (ports dropped): what shares are computed on. */
interface Scalars {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
}

interface Entry extends Scalars {
  readonly id: string;
  weight: number;
  share: number;
  /** Position in the heap array. */
  index: number;
}

/**
 * The dominant share of `allocated` in a cluster of `total`: the largest allocated/total over
 * cpus, mem, disk and gpus, skipping resources whose total is zero; 0 when nothing is allocated.
 *
 * @example
 * dominantShare(resources({ cpus: 3000, mem: 1000 }), resources({ cpus: 9000, mem: 18000 })); // 1/3
 */
export function dominantShare(allocated: Scalars | Resources, total: Scalars | Resources): number {
  let share = 0;
  for (const name of SCALARS) {
    const t = total[name];
    if (t > 0) {
      const s = allocated[name] / t;
      if (s > share) share = s;
    }
  }
  return share;
}

function less(a: Entry, b: Entry): boolean {
  if (a.share !== b.share) return a.share < b.share;
  return a.id < b.id;
}

function checkWeight(weight: number): number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new SorterError(`weight must be a finite number > 0, got ${weight}`);
  }
  return weight;
}

/**
 * A DRF sorter over a cluster of `total` resources (scalars in thousandths, as everywhere in the
 * core). Clients are framework ids; {@link Sorter.sort} puts the lowest weighted dominant share
 * first, ties broken by client id.
 *
 * @example
 * const sorter = createDrfSorter(parse('cpus:9;mem:18432'));
 * sorter.add('a');
 * sorter.add('b');
 * sorter.allocated('a', parse('cpus:1;mem:4096'));
 * sorter.sort(); // ['b', 'a']
 */
export function createDrfSorter(total: Resources): Sorter {
  let totals: Scalars = { cpus: total.cpus, mem: total.mem, disk: total.disk, gpus: total.gpus };
  const heap: Entry[] = [];
  const byId = new Map<string, Entry>();
  /** Reused by `first` so a walk allocates nothing once warmed up. */
  const frontier: number[] = [];

  const computeShare = (e: Entry): number => dominantShare(e, totals) / e.weight;

  const place = (e: Entry, i: number): void => {
    heap[i] = e;
    e.index = i;
  };

  const siftUp = (i: number): void => {
    const e = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!less(e, parent)) break;
      place(parent, i);
      i = p;
    }
    place(e, i);
  };

  const siftDown = (i: number): void => {
    const n = heap.length;
    const e = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(heap[r]!, heap[l]!) ? r : l;
      const child = heap[c]!;
      if (!less(child, e)) break;
      place(child, i);
      i = c;
    }
    place(e, i);
  };

  const fix = (e: Entry): void => {
    const i = e.index;
    if (i > 0 && less(e, heap[(i - 1) >> 1]!)) siftUp(i);
    else siftDown(i);
  };

  const get = (client: string): Entry => {
    const e = byId.get(client);
    if (!e) throw new SorterError(`unknown client "${client}"`);
    return e;
  };

  // The frontier is a min-heap of heap indices, ordered by the entries they point at.
  const frontierLess = (a: number, b: number): boolean => less(heap[a]!, heap[b]!);
  const frontierPush = (x: number): void => {
    let i = frontier.length;
    frontier.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const px = frontier[p]!;
      if (!frontierLess(x, px)) break;
      frontier[i] = px;
      i = p;
    }
    frontier[i] = x;
  };
  const frontierPop = (): number => {
    const top = frontier[0]!;
    const last = frontier.pop()!;
    const n = frontier.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && frontierLess(frontier[r]!, frontier[l]!) ? r : l;
        if (!frontierLess(frontier[c]!, last)) break;
        frontier[i] = frontier[c]!;
        i = c;
      }
      frontier[i] = last;
    }
    return top;
  };

  return {
    add(client, weight = 1) {
      if (byId.has(client)) throw new SorterError(`client "${client}" already added`);
      const e: Entry = {
        id: client,
        weight: checkWeight(weight),
        cpus: 0,
        mem: 0,
        disk: 0,
        gpus: 0,
        share: 0,
        index: 0,
      };
      byId.set(client, e);
      heap.push(e);
      siftUp(heap.length - 1);
    },

    remove(client) {
      const e = byId.get(client);
      if (!e) return;
      byId.delete(client);
      const last = heap.pop()!;
      if (last !== e) {
        place(last, e.index);
        siftDown(last.index);
      }
    },

    allocated(client, r) {
      const e = get(client);
      e.cpus += r.cpus;
      e.mem += r.mem;
      e.disk += r.disk;
      e.gpus += r.gpus;
      e.share = computeShare(e);
      fix(e);
    },

    unallocated(client, r) {
      const e = get(client);
      if (e.cpus < r.cpus || e.mem < r.mem || e.disk < r.disk || e.gpus < r.gpus) {
        throw new SorterError(`client "${client}" was not allocated what is being unallocated`);
      }
      e.cpus -= r.cpus;
      e.mem -= r.mem;
      e.disk -= r.disk;
      e.gpus -= r.gpus;
      e.share = computeShare(e);
      fix(e);
    },

    share(client) {
      return get(client).share;
    },

    sort() {
      return heap
        .slice()
        .sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0))
        .map((e) => e.id);
    },

    first(eligible) {
      const n = heap.length;
      if (n === 0) return undefined;
      if (eligible(heap[0]!.id)) return heap[0]!.id;
      frontier.length = 0;
      if (n > 1) frontierPush(1);
      if (n > 2) frontierPush(2);
      while (frontier.length > 0) {
        const i = frontierPop();
        const id = heap[i]!.id;
        if (eligible(id)) {
          frontier.length = 0;
          return id;
        }
        const l = 2 * i + 1;
        if (l < n) frontierPush(l);
        if (l + 1 < n) frontierPush(l + 1);
      }
      return undefined;
    },

    setTotal(r) {
      totals = { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus };
      for (const e of heap) e.share = computeShare(e);
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
    },

    get size() {
      return heap.length;
    },
  };
}
