/** Helpers for the local-stack tests: throwaway queues, promises to await, sends. */
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

let counter = 0;

export interface TestQueue {
  readonly url: string;
  readonly arn: string;
  readonly dlqUrl: string;
  readonly fifo: boolean;
}

/**
 * A fresh queue and its dead-letter queue under `prefix`. `redrive: false` leaves out the
 * RedrivePolicy, so only the runner can move messages to the DLQ.
 */
export async function createQueue(
  sqs: SQSClient,
  prefix: string,
  opts: { fifo: boolean; visibilityTimeoutSeconds?: number; maxReceiveCount?: number; redrive?: boolean },
): Promise<TestQueue> {
  const name = `${prefix}-q${++counter}`;
  const suffix = opts.fifo ? '.fifo' : '';
  const fifoAttr: Record<string, string> = opts.fifo ? { FifoQueue: 'true' } : {};
  const dlq = await sqs.send(
    new CreateQueueCommand({ QueueName: `${name}-dlq${suffix}`, Attributes: fifoAttr }),
  );
  const dlqArn = await queueArn(sqs, dlq.QueueUrl!);
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${name}${suffix}`,
      Attributes: {
        ...fifoAttr,
        VisibilityTimeout: String(opts.visibilityTimeoutSeconds ?? 30),
        ...(opts.redrive === false
          ? {}
          : {
              RedrivePolicy: JSON.stringify({
                deadLetterTargetArn: dlqArn,
                maxReceiveCount: opts.maxReceiveCount ?? 5,
              }),
            }),
      },
    }),
  );
  return { url: q.QueueUrl!, arn: await queueArn(sqs, q.QueueUrl!), dlqUrl: dlq.QueueUrl!, fifo: opts.fifo };
}

export async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return res.Attributes!.QueueArn!;
}

/** Visible + in flight + delayed. */
export async function messagesOn(sqs: SQSClient, url: string): Promise<number> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const a = res.Attributes ?? {};
  return (
    Number(a.ApproximateNumberOfMessages ?? 0) +
    Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

/** Sends bodies in order (FIFO: to `group`, dedup id = body). */
export async function send(
  sqs: SQSClient,
  queue: Pick<TestQueue, 'url' | 'fifo'>,
  bodies: readonly string[],
  group = 'g',
  attributes?: Record<string, { DataType: string; StringValue: string }>,
): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const res = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: bodies.slice(i, i + 10).map((body, j) => ({
          Id: String(j),
          MessageBody: body,
          ...(attributes ? { MessageAttributes: attributes } : {}),
          ...(queue.fifo ? { MessageGroupId: group, MessageDeduplicationId: body } : {}),
        })),
      }),
    );
    if (res.Failed?.length) throw new Error(`send failed: ${JSON.stringify(res.Failed)}`);
  }
}

/** Long-polls `url` until a message arrives (the event we wait for), at most `attempts` polls. */
export async function receiveOne(sqs: SQSClient, url: string, attempts = 15) {
  for (let i = 0; i < attempts; i++) {
    const res = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 2, MessageSystemAttributeNames: ['All'] }),
    );
    const m = res.Messages?.[0];
    if (m) return m;
  }
  throw new Error(`no message arrived on ${url}`);
}

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(e: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves when `predicate` holds, re-checked each time `check()` is called. */
export class Condition {
  private waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  until(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ predicate, resolve }));
  }
  check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate()) return true;
      w.resolve();
      return false;
    });
  }
}
