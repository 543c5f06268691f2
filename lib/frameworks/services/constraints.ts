/**
 * Marathon's placement constraints over an agent's hostname and attributes: whether an instance
 * of an app may go on an agent, given where its other instances are.
 */
import type { Constraint } from './app.ts';

export interface Placement {
  readonly hostname: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** The value of a constraint's field on an agent: `hostname` or an attribute (undefined if absent). */
export function fieldValue(p: Placement, field: string): string | undefined {
  if (field === 'hostname') return p.hostname;
  return Object.hasOwn(p.attributes, field) ? p.attributes[field] : undefined;
}

const fullMatch = (pattern: string, value: string): boolean => new RegExp(`^(?:${pattern})$`).test(value);

/**
 * Whether `candidate` satisfies `c`, with `placed` the agents of the app's other live instances
 * (one entry per instance).
 */
export function satisfies(c: Constraint, candidate: Placement, placed: readonly Placement[]): boolean {
  const [field, op, value] = c;
  const mine = fieldValue(candidate, field);
  const others = placed.map((p) => fieldValue(p, field));
  switch (op) {
    case 'UNIQUE':
      return mine !== undefined && !others.includes(mine);
    case 'CLUSTER':
      if (mine === undefined) return false;
      if (value !== undefined) return mine === value;
      // Without a value: wherever the first instance went.
      return others.every((o) => o === mine);
    case 'LIKE':
      return mine !== undefined && fullMatch(value ?? '', mine);
    case 'UNLIKE':
      return mine === undefined || !fullMatch(value ?? '', mine);
    case 'MAX_PER':
      return mine !== undefined && others.filter((o) => o === mine).length < Number(value);
    case 'GROUP_BY': {
      if (mine === undefined) return false;
      const counts = new Map<string, number>();
      for (const o of others) if (o !== undefined) counts.set(o, (counts.get(o) ?? 0) + 1);
      const expected = value !== undefined ? Number(value) : 0;
      // Values not yet used count 0: while fewer groups than expected hold instances, a new one is the least loaded.
      const least = counts.size < expected || counts.size === 0 ? 0 : Math.min(...counts.values());
      return (counts.get(mine) ?? 0) <= least;
    }
  }
}

export function satisfiesAll(
  constraints: readonly Constraint[],
  candidate: Placement,
  placed: readonly Placement[],
): boolean {
  return constraints.every((c) => satisfies(c, candidate, placed));
}
