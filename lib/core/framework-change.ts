/**
 * Changes to what a framework asked of the allocator: refusal filters (DECLINE, and what an
 * ACCEPT left of its offers), SUPPRESS and REVIVE. Pure: the control plane writes the result
 * (lib/control/records/frameworks.ts).
 */
import type { FilterRecord, FrameworkRecord } from './model.ts';
import type { Resources } from './resources.ts';

/**
 * Refusal filters live in the framework's record, which DynamoDB caps at 400 KB: past
 * MAX_FILTERS (≈ 150 bytes each) the filters ending soonest are dropped. A dropped filter only
 * means that agent is offered again sooner (and declined again): the safe direction. A framework
 * that wants nothing for long should SUPPRESS instead of declining every agent forever.
 */
export const MAX_FILTERS = 1_000;

/**
 * The framework's filters with one more: do not offer `agentId` until `until` unless more than
 * `resources` is free there. Filters that ended by `now` are dropped on the way.
 */
export function withFilter(
  filters: FrameworkRecord['filters'],
  agentId: string,
  resources: Resources,
  now: number,
  until: number,
): Record<string, FilterRecord> {
  const next: Record<string, FilterRecord> = {};
  for (const [a, f] of Object.entries(filters)) if (f.until > now) next[a] = f;
  next[agentId] = { until, resources };
  const keys = Object.keys(next);
  if (keys.length > MAX_FILTERS) {
    keys.sort((a, b) => next[a]!.until - next[b]!.until);
    for (const k of keys.slice(0, keys.length - MAX_FILTERS)) delete next[k];
  }
  return next;
}

/** SUPPRESS of `roles` (default: all its roles): the roles it is no longer offered for, sorted. */
export function suppress(fw: Pick<FrameworkRecord, 'roles' | 'suppressedRoles'>, roles?: readonly string[]) {
  const named = roles ?? fw.roles;
  return {
    suppressedRoles: [
      ...new Set([...(fw.suppressedRoles ?? []), ...named.filter((r) => fw.roles.includes(r))]),
    ].sort(),
  };
}

/**
 * REVIVE of `roles` (default: all its roles): every refusal filter cleared (they are per agent,
 * not per role) and the SUPPRESS of those roles ended.
 */
export function revive(fw: Pick<FrameworkRecord, 'roles' | 'suppressedRoles'>, roles?: readonly string[]) {
  const named = roles ?? fw.roles;
  return { filters: {}, suppressedRoles: (fw.suppressedRoles ?? []).filter((r) => !named.includes(r)) };
}
