/**
 * Timers arrive as delayed messages on the `timers` queue: offer expiry (one per allocation cycle
 * that made offers, OFFERS_EXPIRE; older ones per offer, OFFER_TIMEOUT), refusal-filter expiry, an
 * agent's ping deadline (AGENT_CHECK, lib/control/liveness.ts), the silence deadline of a
 * framework with a short heartbeat interval (FRAMEWORK_CHECK) and a disconnected framework's
 * failover deadline (FAILOVER_TIMEOUT, lib/control/failover.ts). Every timer re-reads the state it
 * is about and acts only if its deadline still holds, so a redelivered, early or stale timer
 * changes nothing; a timer that names its deadline and arrives before it (the clock went back
 * after it was set) waits again for the rest.
 */
import { CLOCK_AHEAD_MS } from '../core/offer-expiry.ts';
import { parseMessage, type TimerMessage, TimerMessageSchema } from '../protocol/index.ts';
import { rescindOffer } from './allocation.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { MAX_TIMER_DELAY_SECONDS, nudgeAllocator, shardsOf, startTimers } from './emit.ts';
import { onFailoverTimeout, onFrameworkCheck } from './failover.ts';
import { checkAgent } from './liveness.ts';

const TIMER_TYPES = [
  'OFFER_TIMEOUT',
  'OFFERS_EXPIRE',
  'FILTER_EXPIRED',
  'AGENT_CHECK',
  'FRAMEWORK_CHECK',
  'FAILOVER_TIMEOUT',
] as const;

export async function handleTimer(deps: ControlDeps, record: InboundRecord): Promise<void> {
  const parsed = parseMessage(TimerMessageSchema, record.body, TIMER_TYPES);
  if (!parsed.ok) {
    deps.log.error('bad timer message dropped', { error: parsed.error, messageId: record.messageId });
    deps.metrics.count('RejectedCalls', { queue: 'timers', code: parsed.code });
    return;
  }
  const m = parsed.message;
  switch (m.type) {
    case 'OFFER_TIMEOUT':
      if (await rescindOffer(deps, m.agentId, m.offerId))
        await nudgeAllocator(deps, `offer ${m.offerId} expired`, shardsOf(deps, [m.agentId]));
      return;
    case 'OFFERS_EXPIRE': {
      // The delay ran out but the deadline, a time, has not come: the clock went back since the
      // offers were made. Wait out the rest, else the cycle nudged now would keep the offers and
      // nothing would look at them again. A deadline more than an offer timeout away is not
      // waited for: the cycle takes such offers back as made by a clock ahead (lib/core/offer-expiry.ts).
      if (
        m.expiresAt !== undefined &&
        (await waitAgain(deps, m, m.expiresAt, deps.config.offerTimeoutSeconds * 1000))
      )
        return;
      // The cycle rescinds every offer past its expiry before it decides (lib/control/allocation.ts).
      await nudgeAllocator(deps, 'offers expired', [m.shard]);
      return;
    }
    case 'FILTER_EXPIRED':
      // Early as OFFERS_EXPIRE can be: the filter, set while the clock was ahead, still refuses.
      // Only filters a timer can wait for have one, so a deadline further away is not waited for.
      if (m.until !== undefined && (await waitAgain(deps, m, m.until, MAX_TIMER_DELAY_SECONDS * 1000)))
        return;
      await nudgeAllocator(
        deps,
        `filter of ${m.frameworkId} on ${m.agentId} expired`,
        shardsOf(deps, [m.agentId]),
      );
      return;
    case 'AGENT_CHECK':
      await checkAgent(deps, m.agentId);
      return;
    case 'FRAMEWORK_CHECK':
      await onFrameworkCheck(deps, m);
      return;
    case 'FAILOVER_TIMEOUT':
      await onFailoverTimeout(deps, m);
      return;
  }
}

/**
 * A timer whose delay ran out before its `deadline` (a time: the clock went back since it was
 * set) is started again for the time left, if that is no more than the longest it can be
 * (`longestMs`, plus the allowance for clocks that differ). Returns whether it was.
 */
async function waitAgain(
  deps: ControlDeps,
  message: TimerMessage,
  deadline: number,
  longestMs: number,
): Promise<boolean> {
  const left = deadline - deps.clock.now();
  if (left <= 0 || left > longestMs + CLOCK_AHEAD_MS) return false;
  await startTimers(deps, [{ message, delaySeconds: Math.ceil(left / 1000) }]);
  return true;
}
