/**
 * A cap on the ids one identity (SQS SenderId) may create: framework ids by SUBSCRIBE, agent ids
 * by REGISTER. Each new id is counted in the meta table (`ids#<kind>#<principal>`) in the same
 * transaction that creates its record, so a flood of SUBSCRIBEs with fresh ids stops at the cap
 * instead of filling the tables. A framework's id is given back when it is removed (so `meso run`,
 * a framework per command, can run forever from one identity); an agent keeps its id across
 * restarts, and gives it back when it is marked gone (a gone id can never register again).
 */
import type { Item, Store, WriteOp } from '../ports/store.ts';
import type { ControlConfig } from './deps.ts';

/** Ids one identity may create when the deployment sets no other cap. */
export const DEFAULT_MAX_IDS_PER_IDENTITY = 100;

export const idCountKey = (kind: 'framework' | 'agent', principal: string): string =>
  `ids#${kind}#${principal}`;

export const maxIds = (config: Pick<ControlConfig, 'maxIdsPerIdentity'>): number =>
  config.maxIdsPerIdentity ?? DEFAULT_MAX_IDS_PER_IDENTITY;

/**
 * The write that counts one more `kind` id for `principal` (to go in the transaction creating
 * it), or why it may not create one.
 */
export async function claimId(
  store: Store,
  config: Pick<ControlConfig, 'maxIdsPerIdentity'>,
  kind: 'framework' | 'agent',
  principal: string,
): Promise<{ write: WriteOp } | { problem: string }> {
  const key = idCountKey(kind, principal);
  const item = await store.get<Item>('meta', { key });
  const count = Number(item?.ids ?? 0);
  const cap = maxIds(config);
  if (count >= cap)
    return {
      problem: `identity ${principal} has created ${count} ${kind} ids, the most one identity may (${cap}); reuse one of them`,
    };
  return {
    write: {
      kind: 'put',
      table: 'meta',
      item: { key, ids: count + 1 },
      expect: item ? (item.version as number) : 'absent',
    },
  };
}

/** The write that gives back one `kind` id of `principal` (to go in the transaction removing it). */
export async function releaseId(
  store: Store,
  kind: 'framework' | 'agent',
  principal: string,
): Promise<WriteOp | undefined> {
  const key = idCountKey(kind, principal);
  const item = await store.get<Item>('meta', { key });
  const count = Number(item?.ids ?? 0);
  if (!item || count <= 0) return undefined;
  return { kind: 'put', table: 'meta', item: { key, ids: count - 1 }, expect: item.version as number };
}
