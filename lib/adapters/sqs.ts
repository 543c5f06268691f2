/**
 * The SQS adapter: a client factory, the Bus (batched sends), and a long-poll receiver used by
 * the agent, the framework SDK and the local event-source-mapping runner.
 */
import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { type Bus, type OutboundMessage, QueueGoneError } from '../ports/bus.ts';
import { countCalls } from './api-calls.ts';
import { type AwsConfig, awsConfigFromEnv, clientOptions } from './aws-config.ts';

export function createSqsClient(config: AwsConfig = awsConfigFromEnv()): SQSClient {
  const client = new SQSClient({
    ...clientOptions(config, config.sqsEndpoint),
    // Route by the configured endpoint, not the queue URL's host (emulator hosts do not resolve).
    // Route by the configured (or regional) endpoint, never by the queue URL's host: emulator
    // hosts do not resolve, and a queue URL named in a call must not choose where signed
    // requests go.
    useQueueUrlAsEndpoint: false,
  });
  countCalls(client.middlewareStack, 'SQS');
  return client;
}

export const isFifo = (queueUrl: string): boolean => queueUrl.endsWith('.fifo');

/** SQS allows 128 characters for group and deduplication ids; longer ones are hashed (stably). */
export function boundedId(id: string): string {
  return id.length <= 128 && /^[\x21-\x7e]+$/.test(id) ? id : createHash('sha256').update(id).digest('hex');
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export class SqsBus implements Bus {
  constructor(private readonly client: SQSClient) {}

  async send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void> {
    const fifo = isFifo(queueUrl);
    await Promise.all(
      chunks(messages, 10).map(async (batch) => {
        const res = await this.client
          .send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: batch.map((m, i) => ({
                Id: String(i),
                MessageBody: m.body,
                ...(fifo
                  ? {
                      MessageGroupId: boundedId(m.groupId ?? 'default'),
                      MessageDeduplicationId: m.dedupId
                        ? boundedId(m.dedupId)
                        : createHash('sha256').update(m.body).digest('hex'),
                    }
                  : m.delaySeconds
                    ? { DelaySeconds: Math.min(900, Math.max(0, Math.ceil(m.delaySeconds))) }
                    : {}),
              })),
            }),
          )
          .catch((e: Error) => {
            if (/NonExistentQueue|QueueDoesNotExist/.test(`${e.name} ${e.message}`)) {
              throw new QueueGoneError(`queue ${queueUrl} does not exist`);
            }
            throw e;
          });
        if (res.Failed && res.Failed.length > 0) {
          const f = res.Failed[0]!;
          throw new Error(
            `SQS send to ${queueUrl} failed for ${res.Failed.length} message(s): ${f.Code} ${f.Message ?? ''}`,
          );
        }
      }),
    );
  }
}

export interface ReceivedMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly senderId: string;
  readonly receiveCount: number;
  readonly groupId?: string;
  readonly sentAt: number;
}

export function toReceived(m: Message): ReceivedMessage {
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    senderId: m.Attributes?.SenderId ?? 'unknown',
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
    groupId: m.Attributes?.MessageGroupId,
    sentAt: Number(m.Attributes?.SentTimestamp ?? '0'),
  };
}

/** One long-poll receive (≤ 10 messages), with the attributes Meso uses. */
export async function receive(
  client: SQSClient,
  queueUrl: string,
  opts: { waitSeconds?: number; max?: number; visibilityTimeout?: number; signal?: AbortSignal } = {},
): Promise<ReceivedMessage[]> {
  const res = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: opts.max ?? 10,
      WaitTimeSeconds: opts.waitSeconds ?? 20,
      ...(opts.visibilityTimeout !== undefined ? { VisibilityTimeout: opts.visibilityTimeout } : {}),
      MessageSystemAttributeNames: ['SenderId', 'ApproximateReceiveCount', 'MessageGroupId', 'SentTimestamp'],
    }),
    { abortSignal: opts.signal },
  );
  return (res.Messages ?? []).map(toReceived);
}

export async function deleteMessages(
  client: SQSClient,
  queueUrl: string,
  handles: readonly string[],
): Promise<void> {
  for (const batch of chunks(handles, 10)) {
    await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((h, i) => ({ Id: String(i), ReceiptHandle: h })),
      }),
    );
  }
}

export async function changeVisibility(
  client: SQSClient,
  queueUrl: string,
  handles: readonly string[],
  seconds: number,
): Promise<void> {
  for (const batch of chunks(handles, 10)) {
    await client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((h, i) => ({ Id: String(i), ReceiptHandle: h, VisibilityTimeout: seconds })),
      }),
    );
  }
}

/**
 * Polls a queue until `signal` aborts, handing each batch to `onBatch`; messages whose ids
 * `onBatch` returns as failed are left to reappear after their visibility timeout, the rest are
 * deleted. Errors from receive are retried with capped backoff.
 */
export async function pollQueue(
  client: SQSClient,
  queueUrl: string,
  onBatch: (messages: ReceivedMessage[]) => Promise<readonly string[] | undefined>,
  opts: { signal: AbortSignal; waitSeconds?: number; max?: number; onError?: (e: unknown) => void },
): Promise<void> {
  let backoff = 100;
  while (!opts.signal.aborted) {
    let batch: ReceivedMessage[];
    try {
      batch = await receive(client, queueUrl, {
        waitSeconds: opts.waitSeconds ?? 20,
        max: opts.max,
        signal: opts.signal,
      });
      backoff = 100;
    } catch (e) {
      if (opts.signal.aborted) return;
      opts.onError?.(e);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
      continue;
    }
    if (batch.length === 0) continue;
    const failed = new Set((await onBatch(batch)) ?? []);
    const done = batch.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle);
    if (done.length > 0) {
      try {
        await deleteMessages(client, queueUrl, done);
      } catch (e) {
        opts.onError?.(e);
      }
    }
  }
}
