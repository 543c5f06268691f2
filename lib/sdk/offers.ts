/**
 * Offer matching for a framework that wants one set of resources (as `meso run` does): pure, so
 * the choice is unit-tested without queues.
 */
import { claim, format, fromWire, ResourceError, type Resources, SCALE, toWire } from '../core/resources.ts';
import type { WireResources } from '../protocol/common.ts';
import type { Offer } from '../protocol/scheduler.ts';

export interface ResourceRequest {
  cpus: number;
  /** MB */
  mem: number;
  /** MB @default 0 */
  disk?: number;
  /** @default 0 */
  gpus?: number;
}

/**
 * The request in fixed point; throws a ResourceError for negative or non-finite numbers, and
 * for more than three decimals (rounding 0.0001 MB to 0 would silently ask for nothing).
 */
export function requestedResources(req: ResourceRequest): Resources {
  const r = fromWire({ cpus: req.cpus, mem: req.mem, disk: req.disk ?? 0, gpus: req.gpus ?? 0 });
  for (const name of ['cpus', 'mem', 'disk', 'gpus'] as const) {
    const asked = req[name] ?? 0;
    if (Math.abs(r[name] - asked * SCALE) > 1e-6) {
      throw new ResourceError(`${name} ${asked}: at most three decimal places`);
    }
  }
  return r;
}

/** The request as a task carries it (zeros left out). */
export function requestedWire(req: ResourceRequest): WireResources {
  return toWire(requestedResources(req));
}

/** Whether the offer holds `wanted`, counting resources reserved for the offer's role (`claim`). */
export function offerFits(offer: Offer, wanted: Resources): boolean {
  return claim(fromWire(offer.resources), wanted) !== undefined;
}

/**
 * Picks the first offer holding all of `wanted` (the allocator's order already reflects its
 * choice of agent); every other offer is to be declined.
 *
 * @example
 * ```ts
 * const { chosen, rest } = matchOffers(offers, requestedResources({ cpus: 0.5, mem: 64 }));
 * ```
 */
export function matchOffers(offers: readonly Offer[], wanted: Resources): { chosen?: Offer; rest: Offer[] } {
  const chosen = offers.find((o) => offerFits(o, wanted));
  return { chosen, rest: offers.filter((o) => o !== chosen) };
}

/** `cpus:0.5;mem:64` — wire resources for messages. */
export function formatWire(w: WireResources): string {
  return format(fromWire(w));
}
