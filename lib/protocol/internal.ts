/**
 * Messages the control plane sends itself: allocation requests on the `allocator` FIFO queue
 * (MessageGroupId = shard) and timers on the `timers` standard queue (per-message delay).
 */
import { z } from 'zod';
import { Id } from './common.ts';

const v = z.literal(1);

export const AllocatorMessageSchema = z.discriminatedUnion('type', [
  /** Something changed (resources freed, an agent or framework arrived, a filter ended): run a cycle. */
  z
    .object({ v, type: z.literal('ALLOCATE'), shard: z.number().int().nonnegative(), reason: z.string() })
    .strict(),
]);

export const TimerMessageSchema = z.discriminatedUnion('type', [
  /** One offer's expiry (timers sent before cycles set one timer each: still honoured). */
  z.object({ v, type: z.literal('OFFER_TIMEOUT'), agentId: Id, offerId: Id }).strict(),
  /**
   * The offers a cycle of `shard` made expire (at `expiresAt`, their deadline; absent in timers
   * sent before it was added): the cycle it nudges rescinds every expired offer.
   */
  z
    .object({
      v,
      type: z.literal('OFFERS_EXPIRE'),
      shard: z.number().int().nonnegative(),
      expiresAt: z.number().int().nonnegative().optional(),
    })
    .strict(),
  /** A refusal filter ends (at `until`; absent in timers sent before it was added): nudge its agent's shard. */
  z
    .object({
      v,
      type: z.literal('FILTER_EXPIRED'),
      frameworkId: Id,
      agentId: Id,
      until: z.number().int().nonnegative().optional(),
    })
    .strict(),
  /** An agent's ping deadline: mark it unreachable if it has stayed silent (lib/control/liveness.ts). */
  z.object({ v, type: z.literal('AGENT_CHECK'), agentId: Id }).strict(),
  /** A framework with its own short heartbeat interval: disconnect it if silent too long (lib/control/failover.ts). */
  z.object({ v, type: z.literal('FRAMEWORK_CHECK'), frameworkId: Id }).strict(),
  /** A disconnected framework's failover deadline (lib/control/failover.ts). */
  z.object({ v, type: z.literal('FAILOVER_TIMEOUT'), frameworkId: Id, disconnectedAt: z.number() }).strict(),
]);

export type AllocatorMessage = z.infer<typeof AllocatorMessageSchema>;
export type TimerMessage = z.infer<typeof TimerMessageSchema>;
