/**
 * Role settings in the `meta` table: one item per configured role, keyed `role#<role>`, holding
 * its weight, quota (guarantee and limit) and minimum offer. Operators write them
 * (`meso roles set …`, lib/control/operator.ts); the allocator reads all of them with one scan
 * of the small `meta` table (counters and roles only) when they changed (`ROLES_CHANGED`,
 * lib/control/records/changes.ts), so a change takes effect at the next cycle — the write nudges
 * the allocator.
 *
 * Every write is conditional on the version read and re-checks the whole set of roles
 * (`roleConfigProblems`): a child may not be guaranteed more than its parent, nor a guarantee
 * exceed its limit, so the allocator can trust what it reads.
 */
import type { RoleRecord } from '../core/model.ts';
import { fromWire, type Resources, roleNameProblem, toWire, type WireResources } from '../core/resources.ts';
import { type Quantities, type RoleConfig, roleConfigProblems } from '../core/roles.ts';
import type { Item, Store, WriteOp } from '../ports/store.ts';
import { markChanged, ROLES_CHANGED } from './records/changes.ts';
import { transact } from './records/transact.ts';

export const ROLE_KEY_PREFIX = 'role#';
export const roleKey = (role: string): string => `${ROLE_KEY_PREFIX}${role}`;

/** A role's settings as stored: resources of minimums in wire form (plain JSON). */
interface StoredRole extends Omit<RoleRecord, 'minAllocatable'> {
  readonly minAllocatable?: readonly WireResources[];
}

export class RoleSettingsError extends Error {
  override name = 'RoleSettingsError';
}

function fromStored(item: StoredRole): RoleRecord {
  const { minAllocatable, ...rest } = item;
  return { ...rest, ...(minAllocatable ? { minAllocatable: minAllocatable.map((w) => fromWire(w)) } : {}) };
}

/** Every role record in the meta table (one scan). */
export async function readRoleRecords(store: Store): Promise<RoleRecord[]> {
  const items = await store.scan<Item>('meta');
  const out: RoleRecord[] = [];
  for (const i of items) {
    if (typeof i.key !== 'string' || !i.key.startsWith(ROLE_KEY_PREFIX)) continue;
    out.push(fromStored(i as unknown as StoredRole));
  }
  return out.sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0));
}

/** The allocator's view of role records. */
export function toRoleConfig(r: RoleRecord): RoleConfig {
  return {
    role: r.role,
    ...(r.weight !== undefined ? { weight: r.weight } : {}),
    ...(r.guarantee ? { guarantee: r.guarantee } : {}),
    ...(r.limit ? { limit: r.limit } : {}),
    ...(r.minAllocatable ? { minAllocatable: r.minAllocatable } : {}),
  };
}

export async function readRoleConfigs(store: Store): Promise<RoleConfig[]> {
  return (await readRoleRecords(store)).map(toRoleConfig);
}

/** What to change of a role; `null` clears a setting, undefined leaves it. */
export interface RoleChange {
  readonly weight?: number | null;
  readonly guarantee?: Quantities | null;
  readonly limit?: Quantities | null;
  readonly minAllocatable?: readonly Resources[] | null;
}

/**
 * Applies `change` to a role's record (creating it), after checking the whole set of roles;
 * deletes the record when nothing is left set. Throws RoleSettingsError with every problem.
 *
 * @example
 * await setRole(store, 'eng', { weight: 2, guarantee: parseQuantities('cpus:10;mem:20480') }, Date.now());
 */
export async function setRole(
  store: Store,
  role: string,
  change: RoleChange,
  now: number,
): Promise<RoleRecord | undefined> {
  const bad = roleNameProblem(role);
  if (bad) throw new RoleSettingsError(`invalid role "${role}": ${bad}`);
  const result = await transact(
    store,
    () => readRoleRecords(store),
    (all): { writes: WriteOp[]; result: RoleRecord | undefined } => {
      const current = all.find((r) => r.role === role);
      const pick = <T>(c: T | null | undefined, old: T | undefined): T | undefined =>
        c === null ? undefined : c === undefined ? old : c;
      const weight = pick(change.weight, current?.weight);
      const guarantee = pick(change.guarantee, current?.guarantee);
      const limit = pick(change.limit, current?.limit);
      const minAllocatable = pick(change.minAllocatable, current?.minAllocatable);
      const next: RoleRecord = {
        key: roleKey(role),
        role,
        ...(weight !== undefined ? { weight } : {}),
        ...(guarantee !== undefined ? { guarantee } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(minAllocatable !== undefined ? { minAllocatable } : {}),
        updatedAt: now,
        version: current?.version ?? 0,
      };
      const problems = roleConfigProblems([
        ...all.filter((r) => r.role !== role).map(toRoleConfig),
        toRoleConfig(next),
      ]);
      if (problems.length > 0) throw new RoleSettingsError(problems.join('; '));
      const empty =
        weight === undefined &&
        guarantee === undefined &&
        limit === undefined &&
        minAllocatable === undefined;
      if (empty) {
        return {
          writes: current
            ? [{ kind: 'delete', table: 'meta', key: { key: roleKey(role) }, expect: current.version }]
            : [],
          result: undefined,
        };
      }
      const { minAllocatable: _internal, ...plain } = next;
      const stored: StoredRole = {
        ...plain,
        ...(minAllocatable ? { minAllocatable: minAllocatable.map(toWire) } : {}),
      };
      return {
        writes: [
          {
            kind: 'put',
            table: 'meta',
            item: stored as unknown as Item,
            expect: current ? current.version : 'absent',
          },
        ],
        result: { ...next, version: next.version + 1 },
      };
    },
  );
  // Allocator instances read the roles again at their next cycle (records/changes.ts).
  await markChanged(store, ROLES_CHANGED);
  return result;
}
