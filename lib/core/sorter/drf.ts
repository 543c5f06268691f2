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
 * Why a sorted array: the allocator asks "who is first?" once per agent and then charges that
 * client, so a cycle over 50,000 agents and 3,000 frameworks must not re-sort 3,000 clients
 * 50,000 times. The clients are kept in (share, id) order; charging a client finds its old and
 * new places by binary search and moves it with `splice` (a memmove of at most n pointers), and
 * {@link Sorter.first} is a plain scan, so skipping k ineligible clients (refusal filters) costs
 * k predicate calls and nothing else. An indexed binary heap was measured too: equal when the
 * first client is eligible, but 3-5x slower whenever the walk has to go past filtered clients,
 * because every step of a best-first walk over a heap costs O(log n) comparisons.
 * (`Array.prototype.copyWithin` instead of `splice` was ~60x slower in V8.) Ties are broken by
 * client id in code-unit order, not locale order, so the result is deterministic.
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
  /** Every client, kept sorted by (share, id): the walk in `first` is a plain scan. */
  const order: Entry[] = [];
  const byId = new Map<string, Entry>();

  const computeShare = (e: Entry): number => dominantShare(e, totals) / e.weight;

  /** The index of the first entry in [lo, hi) that is not less than `e`. */
  const lowerBound = (e: Entry, lo: number, hi: number): number => {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (less(order[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  /** Gives `e` a new share and moves it to its place, shifting only the entries it passes. */
  const reshare = (e: Entry, share: number): void => {
    const n = order.length;
    const i = lowerBound(e, 0, n); // order[i] === e: ids are unique
    e.share = share;
    if (i + 1 < n && less(order[i + 1]!, e)) {
      const j = lowerBound(e, i + 1, n);
      order.splice(i, 1);
      order.splice(j - 1, 0, e);
    } else if (i > 0 && less(e, order[i - 1]!)) {
      const j = lowerBound(e, 0, i);
      order.splice(i, 1);
      order.splice(j, 0, e);
    }
  };

  const get = (client: string): Entry => {
    const e = byId.get(client);
    if (!e) throw new SorterError(`unknown client "${client}"`);
    return e;
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
      };
      byId.set(client, e);
      order.splice(lowerBound(e, 0, order.length), 0, e);
    },

    remove(client) {
      const e = byId.get(client);
      if (!e) return;
      byId.delete(client);
      order.splice(lowerBound(e, 0, order.length), 1);
    },

    allocated(client, r) {
      const e = get(client);
      e.cpus += r.cpus;
      e.mem += r.mem;
      e.disk += r.disk;
      e.gpus += r.gpus;
      reshare(e, computeShare(e));
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
      reshare(e, computeShare(e));
    },

    share(client) {
      return get(client).share;
    },

    sort() {
      return order.map((e) => e.id);
    },

    first(eligible) {
      for (let i = 0; i < order.length; i++) {
        const id = order[i]!.id;
        if (eligible(id)) return id;
      }
      return undefined;
    },

    setTotal(r) {
      totals = { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus };
      for (const e of order) e.share = computeShare(e);
      order.sort((a, b) => (less(a, b) ? -1 : less(b, a) ? 1 : 0));
    },

    get size() {
      return order.length;
    },
  };
}
