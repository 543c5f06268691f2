/**
 * The bus port: sends messages to queues by URL. FIFO queues (URL ending `.fifo`) need a group
 * id; the adapter derives a deduplication id from `dedupId` (or the body's hash when absent).
 * Adapter: SQS (`SqsBus` in `lib/adapters/sqs-api.ts`).
 */
export interface OutboundMessage {
  readonly body: string;
  /** MessageGroupId for FIFO queues. */
  readonly groupId?: string;
  /** MessageDeduplicationId for FIFO queues; redelivered effects reuse the same id. */
  readonly dedupId?: string;
  /** Standard queues only, ≤ 900. */
  readonly delaySeconds?: number;
}

export interface Bus {
  /** Sends all messages (batched by 10 per queue); throws if any could not be sent. */
  send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void>;
}

/** The destination queue does not exist (a framework or agent deleted its queue and went away). */
export class QueueGoneError extends Error {
  override name = 'QueueGoneError';
}
