/**
 * Roles as the allocator sees them: a weight, a quota (guarantee and limit) and the smallest
 * offer worth making, per role. A role nobody configured has weight 1, no quota and the
 * cluster's minimum.
 *
 * Quantities are partial on purpose: a limit of `cpus:10` limits cpus and nothing else, while a
 * limit of `cpus:10;mem:0` also forbids any memory. Guarantees and limits cover scalars only
 * (ports are names, not amounts), and are in thousandths like every scalar in the core.
 */
import {
  fromFixed,
  ResourceError,
  type Resources,
  roleNameProblem,
  SCALARS,
  type ScalarName,
  toFixed,
} from './resources.ts';
import { parentRole } from './sorter/hierarchical.ts';

/** Some scalars, in thousandths; a scalar left out is not constrained. */
export type Quantities = Partial<Record<ScalarName, number>>;

export interface RoleConfig {
  readonly role: string;
  /** Relative to the role's siblings (default 1). */
  readonly weight?: number;
  /** Resources the role is guaranteed: offered to it first, and held back for it. */
  readonly guarantee?: Quantities;
  /** Resources the role (with everything below it) may never exceed, offered and used together. */
  readonly limit?: Quantities;
  /** The smallest offers worth making to the role: an offer must hold all of one of them. */
  readonly minAllocatable?: readonly Resources[];
}

/** Parses `cpus:10;mem:4096` (no ports, no reservations) into quantities; names left out stay out. */
export function parseQuantities(text: string): Quantities {
  const out: Quantities = {};
  for (const raw of text.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    const colon = part.indexOf(':');
    if (colon < 0) throw new ResourceError(`expected name:value in "${part}"`);
    const name = part.slice(0, colon).trim();
    const value = part.slice(colon + 1).trim();
    if (!(SCALARS as readonly string[]).includes(name))
      throw new ResourceError(`quota covers ${SCALARS.join(', ')}; got "${name}"`);
    if (!/^\d+(\.\d+)?$/.test(value))
      throw new ResourceError(`${name} must be a non-negative number, got "${value}"`);
    if (Object.hasOwn(out, name)) throw new ResourceError(`${name} is given twice`);
    out[name as ScalarName] = toFixed(Number(value), name);
  }
  return out;
}

/** `cpus:10;mem:4096`, or `{}` when nothing is given. */
export function formatQuantities(q: Quantities | undefined): string {
  if (!q) return '{}';
  const parts: string[] = [];
  for (const name of SCALARS) if (q[name] !== undefined) parts.push(`${name}:${fromFixed(q[name]!)}`);
  return parts.length ? parts.join(';') : '{}';
}

/**
 * What is wrong with a set of role configurations, as sentences (empty when nothing is): bad
 * names and weights, a guarantee above its limit, children guaranteed more than their parent,
 * or a child allowed more than its parent.
 *
 * Mesos checks the same when quota is set; Meso checks it when an operator sets a role, so the
 * allocator can trust what it reads.
 */
export function roleConfigProblems(configs: readonly RoleConfig[]): string[] {
  const problems: string[] = [];
  const byRole = new Map<string, RoleConfig>();
  for (const c of configs) {
    const bad = roleNameProblem(c.role);
    if (bad) problems.push(`role "${c.role}": ${bad}`);
    if (c.weight !== undefined && !(Number.isFinite(c.weight) && c.weight > 0))
      problems.push(`role ${c.role}: weight must be a number > 0, got ${c.weight}`);
    for (const name of SCALARS) {
      const g = c.guarantee?.[name];
      const l = c.limit?.[name];
      if ((g !== undefined && !(g >= 0)) || (l !== undefined && !(l >= 0)))
        problems.push(`role ${c.role}: ${name} quota must not be negative`);
      if (g !== undefined && l !== undefined && g > l)
        problems.push(`role ${c.role}: ${name} guarantee ${fromFixed(g)} is above its limit ${fromFixed(l)}`);
    }
    byRole.set(c.role, c);
  }
  // Children against their nearest configured ancestor.
  const childGuarantees = new Map<string, Record<string, number>>();
  for (const c of configs) {
    for (let p = parentRole(c.role); p !== ''; p = parentRole(p)) {
      const parent = byRole.get(p);
      if (!parent) continue;
      for (const name of SCALARS) {
        const l = c.limit?.[name];
        const pl = parent.limit?.[name];
        if (pl !== undefined && l !== undefined && l > pl)
          problems.push(
            `role ${c.role}: ${name} limit ${fromFixed(l)} is above ${p}'s limit ${fromFixed(pl)}`,
          );
        const g = c.guarantee?.[name];
        if (pl !== undefined && g !== undefined && g > pl)
          problems.push(
            `role ${c.role}: ${name} guarantee ${fromFixed(g)} is above ${p}'s limit ${fromFixed(pl)}`,
          );
      }
      if (parentRole(c.role) === p || !byRole.has(parentRole(c.role))) {
        const sums = childGuarantees.get(p) ?? {};
        for (const name of SCALARS) sums[name] = (sums[name] ?? 0) + (c.guarantee?.[name] ?? 0);
        childGuarantees.set(p, sums);
      }
      break;
    }
  }
  for (const [p, sums] of childGuarantees) {
    const parent = byRole.get(p)!;
    if (!parent.guarantee) continue;
    for (const name of SCALARS) {
      const pg = parent.guarantee[name] ?? 0;
      if ((sums[name] ?? 0) > pg && parent.guarantee[name] !== undefined)
        problems.push(
          `role ${p}: its children are guaranteed ${fromFixed(sums[name]!)} ${name}, more than its own ${fromFixed(pg)}`,
        );
    }
  }
  return problems;
}
