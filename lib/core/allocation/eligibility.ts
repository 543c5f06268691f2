/**
 * Whether resources are worth offering, and whether one framework may be offered them: the
 * cluster's and the frameworks' minimum allocatable resources, and refusal filters.
 */
import type { FilterRecord } from '../model.ts';
import { contains, flatten, isEmpty, type Resources, resources } from '../resources.ts';

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
