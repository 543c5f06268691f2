/**
 * The cluster's ACLs (lib/core/acl.ts), kept as one item of the meta table, `acl`, written only
 * by operators (`meso acl ...`) with a version check, read by the calls that authorize.
 *
 * With no item stored, the deployment's default applies: a dev stack is open (permissive, no
 * rules); a deployed stack is closed (nothing allowed) except what its deployer grants, passed
 * to the handlers in the environment ({@link aclDefaultFromEnv}).
 */
import {
  type AclAction,
  type AclDecision,
  type Acls,
  aclsFromJson,
  aclsToJson,
  authorize,
  CLOSED_ACLS,
} from '../core/acl.ts';
import { ENV } from '../definition/env.ts';
import type { Item, Store } from '../ports/store.ts';

export const ACL_KEY = 'acl';

/** Environment variables through which a deployment sets its default ACLs. */
export const ACL_ENV = { permissive: ENV.aclPermissive, document: ENV.acl } as const;

/** The ACLs a deployment has before an operator stores any: closed unless its environment says otherwise. */
export function aclDefaultFromEnv(env: Readonly<Record<string, string | undefined>>): Acls {
  const doc = env[ACL_ENV.document];
  const permissive = env[ACL_ENV.permissive] === 'true';
  if (!doc) return { ...CLOSED_ACLS, permissive };
  const json: unknown = JSON.parse(doc);
  // Unlike a stored document, the deployer's is closed unless it says `"permissive": true` (or
  // the flag does): a deployed stack grants only what its deployer wrote.
  const open = (json as { permissive?: unknown } | null)?.permissive === true;
  return { ...aclsFromJson(json), permissive: permissive || open };
}

export interface StoredAcls {
  readonly acls: Acls;
  /** The item's version (for a conditional write), or undefined when none is stored. */
  readonly version: number | undefined;
}

/** The stored ACLs, or `fallback` (the deployment's default) if none are. */
export async function loadAcls(store: Store, fallback: Acls): Promise<StoredAcls> {
  const item = await store.get<Item>('meta', { key: ACL_KEY });
  if (!item) return { acls: fallback, version: undefined };
  return { acls: aclsFromJson(item.document), version: item.version as number };
}

/**
 * Stores `acls`, replacing what was read at `version` (undefined: nothing was). Throws the
 * store's ConditionFailedError if another operator changed it meanwhile.
 */
export async function saveAcls(
  store: Store,
  acls: Acls,
  version: number | undefined,
  now: number,
): Promise<void> {
  savedHere++;
  await store.write([
    {
      kind: 'put',
      table: 'meta',
      item: { key: ACL_KEY, document: aclsToJson(acls), updatedAt: now },
      expect: version ?? 'absent',
    },
  ]);
}

/** How long the calls' handlers keep the ACLs they read: a change applies within this. */
export const ACL_CACHE_MS = 5_000;
/** ACLs saved from this process: a save here applies to the next call here at once. */
let savedHere = 0;
const aclCache = new WeakMap<Store, { at: number; saved: number; stored: StoredAcls }>();

/**
 * The stored ACLs as the calls' handlers read them: from a copy at most {@link ACL_CACHE_MS} old
 * (per store, per process — a Lambda container), so a burst of ACCEPTs reads the item once every
 * few seconds instead of once a call. An operator's change therefore applies within 5 s
 * (docs/security.md). `store` is the long-lived store, not a per-invocation wrapper.
 */
export async function cachedAcls(store: Store, fallback: Acls, now: number): Promise<StoredAcls> {
  const hit = aclCache.get(store);
  if (hit && hit.saved === savedHere && now - hit.at >= 0 && now - hit.at < ACL_CACHE_MS) return hit.stored;
  const saved = savedHere;
  const stored = await loadAcls(store, fallback);
  aclCache.set(store, { at: now, saved, stored });
  return stored;
}

/**
 * One authorization against the stored ACLs: what a call checks before it changes anything. A
 * refusal's message names the rule that refused (for a FORBIDDEN error).
 */
export async function authorized(
  store: Store,
  fallback: Acls,
  action: AclAction,
  principal: string,
  object: string,
): Promise<AclDecision> {
  const { acls } = await loadAcls(store, fallback);
  return authorize(acls, { action, principal, object });
}
