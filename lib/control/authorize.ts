/**
 * The ACL checks the calls make (lib/core/acl.ts): the stored ACLs (or the deployment's default,
 * `config.acls`), read at most every few seconds per process (`cachedAcls`, lib/control/acl-store.ts), every object the call touches authorized, and a
 * refusal turned into a FORBIDDEN rejection that names the rule that refused.
 */
import { type AclAction, authorize, OPEN_ACLS } from '../core/acl.ts';
import { cachedAcls, loadAcls } from './acl-store.ts';
import type { ControlDeps } from './deps.ts';
import { uncached } from './read-cache.ts';
import type { Rejection } from './reject.ts';

export interface AclAsk {
  readonly action: AclAction;
  readonly object: string;
}

/**
 * Why `principal` may not do everything in `asks` (the first refusal, naming its rule), or
 * undefined when every ask is allowed.
 */
export async function aclRefusal(
  deps: Pick<ControlDeps, 'store' | 'config'> & Partial<Pick<ControlDeps, 'clock'>>,
  principal: string,
  asks: readonly AclAsk[],
): Promise<string | undefined> {
  if (asks.length === 0) return undefined;
  const fallback = deps.config.acls ?? OPEN_ACLS;
  // Without a clock (a caller outside the handlers), read them now.
  const { acls } = deps.clock
    ? await cachedAcls(uncached(deps.store), fallback, deps.clock.now())
    : await loadAcls(deps.store, fallback);
  for (const ask of asks) {
    const decision = authorize(acls, { action: ask.action, principal, object: ask.object });
    if (!decision.allowed) return decision.message;
  }
  return undefined;
}

/** A FORBIDDEN rejection for an ACL refusal. */
export const forbidden = (message: string, call: string, replyTo?: Rejection['replyTo']): Rejection => ({
  code: 'FORBIDDEN',
  message,
  call,
  ...(replyTo ? { replyTo } : {}),
});
