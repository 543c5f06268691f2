/**
 * When an outstanding offer is done with, as an allocation cycle sees it (pure: the cycle's clock
 * reading is passed in).
 *
 * An offer's expiry is a time (`expiresAt`, the making cycle's clock plus the offer timeout), but
 * the timer that nudges a cycle to take it back (OFFERS_EXPIRE, lib/control/timers.ts) is a delay.
 * If the clock went back after the offer was made (a step of the system clock, or an offer made
 * by a function instance whose clock ran ahead), the timer fires while the expiry still lies in
 * the future, the cycle it nudges keeps the offer, and nothing else is due to look at it again:
 * its resources sit unoffered until some unrelated nudge comes after the expiry — for as long as
 * the clock was ahead, on top of the timeout. So an offer whose expiry lies further ahead than one
 * whole offer timeout (plus {@link CLOCK_AHEAD_MS} for clocks that differ a little between
 * instances) was made by a clock ahead of this one, and is taken back as expired: a rescind is
 * always allowed, and the resources are offered again at once.
 *
 * An offer held by a framework the cycle read as no longer ACTIVE (torn down, disconnected) is
 * done with too: its removal takes its offers back, but a cycle that read it as ACTIVE just
 * before can still write it one afterwards, which would otherwise hold its resources until it
 * expires.
 */
import type { FrameworkRecord, OfferRecord } from './model.ts';

/** How far the clocks of the control plane's function instances may differ. */
export const CLOCK_AHEAD_MS = 5_000;

export type OfferEnd = 'expired' | 'clock-ahead' | 'framework-away';

/**
 * Why `offer` is to be taken back at `now`, or undefined if it still stands. `timeoutMs` is the
 * offer timeout; `framework` the holder's record as the cycle read it (undefined: not read, so
 * not judged — a framework subscribed after the cycle's read is not one that went away).
 */
export function offerEnd(
  offer: Pick<OfferRecord, 'expiresAt'>,
  now: number,
  timeoutMs: number,
  framework?: Pick<FrameworkRecord, 'status'>,
): OfferEnd | undefined {
  if (offer.expiresAt <= now) return 'expired';
  if (offer.expiresAt > now + timeoutMs + CLOCK_AHEAD_MS) return 'clock-ahead';
  if (framework && framework.status !== 'ACTIVE') return 'framework-away';
  return undefined;
}
