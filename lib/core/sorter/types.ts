/**
 * The sorter decides *who goes next*; the allocator decides *what to give*. Keeping the policy
 * (fair ordering) apart from the mechanism (walking agents and making offers) is how Mesos's
 * `src/master/allocator/sorter/` works, and it lets another policy replace DRF without touching
 * the allocator.
 *
 * Clients are opaque strings. A flat sorter (DRF over frameworks) treats them as framework ids.
 * A hierarchical sorter (roles at each level, then frameworks within a role) implements the same
 * interface by treating a client as a path — e.g. `eng/web/<frameworkId>` — keeping one ordering
 * per level and walking the tree depth first in each level's order: {@link Sorter.sort} and
 * {@link Sorter.first} then yield leaf clients in the order the hierarchy decides, and
 * {@link Sorter.allocated} charges every level on the path.
 */
import type { Resources } from '../resources.ts';

export interface Sorter {
  /** Adds a client with a weight (default 1; must be finite and > 0). Adding a known client throws. */
  add(client: string, weight?: number): void;
  /** Removes a client and its allocation. Unknown clients are ignored. */
  remove(client: string): void;
  /** Charges `r` to the client (an offer made or a task running). */
  allocated(client: string, r: Resources): void;
  /** Credits `r` back (an offer declined or rescinded, a task ended). Never below zero: throws. */
  unallocated(client: string, r: Resources): void;
  /** The client's share, as the policy defines it (DRF: weighted dominant share). */
  share(client: string): number;
  /** All clients, the one to serve first at the front. */
  sort(): string[];
  /**
   * The first client in {@link sort} order for which `eligible` is true, without materializing
   * the whole order: the allocator calls this once per agent, and most of the time the very first
   * client is eligible. `eligible` must not change the sorter.
   */
  first(eligible: (client: string) => boolean): string | undefined;
  /** Replaces the cluster totals shares are computed against (agents added, removed, resized). */
  setTotal(r: Resources): void;
  /** The number of clients. */
  readonly size: number;
}

/** Builds a sorter for a cluster of the given totals; the allocator takes one of these. */
export type SorterFactory = (total: Resources) => Sorter;
