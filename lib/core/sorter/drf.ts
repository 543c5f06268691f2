/**
 * Dominant Resource Fairness (Ghodsi et al., NSDI 2011), as Mesos's `sorter/drf/` applies it:
 * the policy half of the sorter.
 *
 * A client's dominant share is the largest fraction it holds of any one resource — cpus, mem,
 * disk or gpus — divided by its weight. Serving the client with the lowest dominant share first
 * equalizes dominant shares, which is what makes DRF strategy-proof and envy-free across
 * frameworks whose tasks need different mixes (CPU-heavy next to memory-heavy). Ports are not
 * counted: they are a set of names, not a quantity anybody competes for a fraction of. A
 * resource the cluster has none of (total 0, e.g. gpus) is skipped rather than divided by.
 */
import { type Resources, SCALARS } from '../resources.ts';
import type { Scalars } from './node.ts';
import type { SharePolicy } from './types.ts';

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

/** Dominant Resource Fairness divided by the weight (Mesos's default policy). */
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
