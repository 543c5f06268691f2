/**
 * What Meso does with SQS, over any client that can make an SQS call: the Bus (batched sends),
 * long-poll receives, batched deletes and visibility changes, and a polling loop. The calls are
 * named and shaped as on the wire (SQS's JSON protocol, which the AWS SDK's inputs and outputs
 * mirror), so two clients serve them: the AWS SDK's (`sqs.ts`, for the control plane, the
 * framework SDK and the CLI) and a lean one over `node:https` (`sqs-http.ts`, for the agent, whose
 * idle memory the SDK would double). Nothing here loads either.
 */
import { createHash } from 'node:crypto';
import { type Bus, type OutboundMessage, QueueGoneError } from '../ports/bus.ts';

export interface SqsMessage {
  readonly MessageId?: string;
  readonly ReceiptHandle?: string;
  readonly Body?: string;
  readonly Attributes?: Readonly<Record<string, string>>;
}

export interface SqsBatchError {
  readonly Id: string;
  readonly Code: string;
  readonly Message?: string;
  readonly SenderFault?: boolean;
}

/** The SQS operations Meso calls, with the members it uses. */
export interface SqsOps {
  SendMessageBatch: {
    input: {
      QueueUrl: string;
      Entries: {
        Id: string;
        MessageBody: string;
        MessageGroupId?: string;
        MessageDeduplicationId?: string;
        DelaySeconds?: number;
      }[];
    };
    output: { Successful?: { Id: string; MessageId?: string }[]; Failed?: SqsBatchError[] };
  };
  ReceiveMessage: {
    input: {
      QueueUrl: string;
      MaxNumberOfMessages?: number;
      WaitTimeSeconds?: number;
      VisibilityTimeout?: number;
      MessageSystemAttributeNames?: string[];
    };
    output: { Messages?: SqsMessage[] };
  };
  DeleteMessageBatch: {
    input: { QueueUrl: string; Entries: { Id: string; ReceiptHandle: string }[] };
    output: { Failed?: SqsBatchError[] };
  };
  ChangeMessageVisibilityBatch: {
    input: { QueueUrl: string; Entries: { Id: string; ReceiptHandle: string; VisibilityTimeout: number }[] };
    output: { Failed?: SqsBatchError[] };
  };
  CreateQueue: {
    input: { QueueName: string; Attributes?: Record<string, string>; tags?: Record<string, string> };
    output: { QueueUrl?: string };
  };
  GetQueueUrl: { input: { QueueName: string }; output: { QueueUrl?: string } };
}

export type SqsOp = keyof SqsOps;

/** One SQS call; errors carry the service's error name (`QueueDoesNotExist`, …) as `name`. */
export interface SqsApi {
  call<K extends SqsOp>(
    op: K,
    input: SqsOps[K]['input'],
    opts?: { readonly signal?: AbortSignal },
  ): Promise<SqsOps[K]['output']>;
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

const queueGone = (e: unknown): boolean =>
  /NonExistentQueue|QueueDoesNotExist/.test(`${(e as Error).name} ${(e as Error).message}`);

/** A SendMessageBatch entry for `m`: its group and deduplication ids on a FIFO queue, else its delay. */
export function sendEntry(
  m: OutboundMessage,
  id: string,
  fifo: boolean,
): SqsOps['SendMessageBatch']['input']['Entries'][number] {
  return {
    Id: id,
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
  };
}

export class SqsBus implements Bus {
  constructor(private readonly sqs: SqsApi) {}

  async send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void> {
    const fifo = isFifo(queueUrl);
    await Promise.all(
      chunks(messages, 10).map(async (batch) => {
        const res = await this.sqs
          .call('SendMessageBatch', {
            QueueUrl: queueUrl,
            Entries: batch.map((m, i) => sendEntry(m, String(i), fifo)),
          })
          .catch((e: Error) => {
            if (queueGone(e)) throw new QueueGoneError(`queue ${queueUrl} does not exist`);
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

export function toReceived(m: SqsMessage): ReceivedMessage {
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
  sqs: SqsApi,
  queueUrl: string,
  opts: { waitSeconds?: number; max?: number; visibilityTimeout?: number; signal?: AbortSignal } = {},
): Promise<ReceivedMessage[]> {
  const res = await sqs.call(
    'ReceiveMessage',
    {
      QueueUrl: queueUrl,
      MaxNumberOfMessages: opts.max ?? 10,
      WaitTimeSeconds: opts.waitSeconds ?? 20,
      ...(opts.visibilityTimeout !== undefined ? { VisibilityTimeout: opts.visibilityTimeout } : {}),
      MessageSystemAttributeNames: ['SenderId', 'ApproximateReceiveCount', 'MessageGroupId', 'SentTimestamp'],
    },
    opts.signal ? { signal: opts.signal } : {},
  );
  return (res.Messages ?? []).map(toReceived);
}

export async function deleteMessages(
  sqs: SqsApi,
  queueUrl: string,
  handles: readonly string[],
): Promise<void> {
  for (const batch of chunks(handles, 10)) {
    await sqs.call('DeleteMessageBatch', {
      QueueUrl: queueUrl,
      Entries: batch.map((h, i) => ({ Id: String(i), ReceiptHandle: h })),
    });
  }
}

export async function changeVisibility(
  sqs: SqsApi,
  queueUrl: string,
  handles: readonly string[],
  seconds: number,
): Promise<void> {
  for (const batch of chunks(handles, 10)) {
    await sqs.call('ChangeMessageVisibilityBatch', {
      QueueUrl: queueUrl,
      Entries: batch.map((h, i) => ({ Id: String(i), ReceiptHandle: h, VisibilityTimeout: seconds })),
    });
  }
}

/**
 * Polls a queue until `signal` aborts, handing each batch to `onBatch`; messages whose ids
 * `onBatch` returns as failed are left to reappear after their visibility timeout, the rest are
 * deleted. Errors from receive are retried with capped backoff.
 */
export async function pollQueue(
  sqs: SqsApi,
  queueUrl: string,
  onBatch: (messages: ReceivedMessage[]) => Promise<readonly string[] | undefined>,
  opts: {
    signal: AbortSignal;
    waitSeconds?: number;
    max?: number;
    /** How long received messages stay hidden (ReceiveMessage's VisibilityTimeout). Default: the queue's. */
    visibilityTimeout?: number;
    onError?: (e: unknown) => void;
    /**
     * Takes the receipt handles of each batch's handled messages instead of deleting them before
     * the next receive (a `DeleteBatcher`'s `delete`, which deletes them while the poll goes on).
     */
    deleteLater?: (receiptHandles: readonly string[]) => void;
  },
): Promise<void> {
  let backoff = 100;
  while (!opts.signal.aborted) {
    let batch: ReceivedMessage[];
    try {
      batch = await receive(sqs, queueUrl, {
        waitSeconds: opts.waitSeconds ?? 20,
        ...(opts.max !== undefined ? { max: opts.max } : {}),
        ...(opts.visibilityTimeout !== undefined ? { visibilityTimeout: opts.visibilityTimeout } : {}),
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
    if (done.length > 0 && opts.deleteLater) {
      opts.deleteLater(done);
    } else if (done.length > 0) {
      try {
        await deleteMessages(sqs, queueUrl, done);
      } catch (e) {
        opts.onError?.(e);
      }
    }
  }
}
