/** Timers arrive as delayed messages on the `timers` queue: offer expiry and refusal-filter expiry. */
import { parseMessage, TimerMessageSchema } from '../protocol/index.ts';
import { rescindOffer } from './allocation.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { nudgeAllocator } from './emit.ts';

export async function handleTimer(deps: ControlDeps, record: InboundRecord): Promise<void> {
  const parsed = parseMessage(TimerMessageSchema, record.body, ['OFFER_TIMEOUT', 'FILTER_EXPIRED']);
  if (!parsed.ok) {
    deps.log.error('bad timer message dropped', { error: parsed.error, messageId: record.messageId });
    deps.metrics.count('RejectedCalls', { queue: 'timers', code: parsed.code });
    return;
  }
  const m = parsed.message;
  if (m.type === 'OFFER_TIMEOUT') {
    if (await rescindOffer(deps, m.agentId, m.offerId))
      await nudgeAllocator(deps, `offer ${m.offerId} expired`);
    return;
  }
  await nudgeAllocator(deps, `filter of ${m.frameworkId} on ${m.agentId} expired`);
}
