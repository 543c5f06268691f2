/**
 * Who may act for an id: an agent or framework id is bound to the identity (SQS SenderId) that
 * first registered or subscribed it, and every later call for it must come from that identity.
 * One check for agents and frameworks alike.
 */
import type { InboundRecord } from './deps.ts';
import type { Rejection } from './reject.ts';

export type Owned = 'agent' | 'framework';

const UNKNOWN = {
  agent: { code: 'UNKNOWN_AGENT', known: 'registered' },
  framework: { code: 'UNKNOWN_FRAMEWORK', known: 'subscribed' },
} as const;

/**
 * Why the sender of `record` may not make `call` for the `kind` with `id`, whose record (or
 * route) is `owner`; undefined when it may. `claim` is for REGISTER and SUBSCRIBE, which bind an
 * id that is not yet known: there an unknown id is allowed.
 */
export function identityProblem(
  kind: Owned,
  id: string,
  owner: { readonly principal: string } | undefined,
  record: Pick<InboundRecord, 'senderId'>,
  call: string,
  opts: { claim?: boolean; replyTo?: Rejection['replyTo'] } = {},
): Rejection | undefined {
  const replyTo = opts.replyTo ? { replyTo: opts.replyTo } : {};
  if (!owner) {
    if (opts.claim) return undefined;
    return {
      code: UNKNOWN[kind].code,
      message: `${kind} ${id} is not ${UNKNOWN[kind].known}`,
      call,
      ...replyTo,
    };
  }
  if (owner.principal === record.senderId) return undefined;
  return {
    code: 'FORBIDDEN',
    message: opts.claim
      ? `${kind} id ${id} belongs to another identity`
      : `${kind} ${id} belongs to another identity; ${call} from ${record.senderId} rejected`,
    call,
    ...replyTo,
  };
}
