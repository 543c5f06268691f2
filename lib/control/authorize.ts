/**
 * The ACL checks the calls make (lib/core/acl.ts): one load of the stored ACLs (or the
 * deployment's default, `config.acls`) per call, every object the call touches authorized, and a
 * refusal turned into a FORBIDDEN rejection that names the rule that refused.
 */
import { type AclAction, authorize, OPEN_ACLS } from '../core/acl.ts';
import { loadAcls } from './acl-store.ts';
import type { ControlDeps } from './deps.ts';
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
  deps: Pick<ControlDeps, 'store' | 'config'>,
  principal: string,
  asks: readonly AclAsk[],
): Promise<string | undefined> {
  if (asks.length === 0) return undefined;
  const { acls } = await loadAcls(deps.store, deps.config.acls ?? OPEN_ACLS);
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
