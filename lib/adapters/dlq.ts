/**
 * Dead-letter queues: every control-plane queue moves a message that failed `maxReceiveCount`
 * times (5) to `<prefix>-<name>-dlq[.fifo]` (14 days), where a CloudWatch alarm fires on the
 * first one (lib/infra/cdk/control-plane.ts). These functions list what is there and put it back
 * on its queue once the cause is fixed; `meso dlq` is their command line.
 *
 * Redrive. `redriveDeadLetters` receives each message, sends a copy to the source queue (FIFO: in
 * its original message group, deduplicated by the dead letter's own message id, so running a
 * redrive twice does not double it) and only then deletes it from the dead-letter queue. A copy is
 * sent by whoever runs the redrive: the registry authorizes framework and agent calls by their
 * SQS SenderId, so in AWS redrive the two calls queues with SQS's own redrive, which moves the
 * stored messages (`aws sqs start-message-move-task --source-arn <dlq arn>`, or the console's
 * "Start DLQ redrive"); `useNativeMove` asks for it and falls back to the copy where the endpoint
 * (an emulator) does not have it.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { dlqName, QUEUES, type QueueName } from '../definition/tables-queues.ts';

export interface DeadLetter {
  readonly queue: QueueName;
  readonly messageId: string;
  readonly body: string;
  readonly groupId?: string;
  /** Deliveries before it was given up on (from the source queue). */
  readonly receiveCount: number;
  readonly sentAt?: number;
  readonly senderId?: string;
}

export interface DeadLetterQueue {
  readonly queue: QueueName;
  readonly url: string;
  /** Approximate number of messages (visible and in flight). */
  readonly count: number;
}

/** The dead-letter queues of a deployment (those that exist), with their approximate depth. */
export async function deadLetterQueues(
  sqs: SQSClient,
  prefix: string,
  only?: readonly QueueName[],
): Promise<DeadLetterQueue[]> {
  const names = (Object.keys(QUEUES) as QueueName[]).filter((q) => !only || only.includes(q));
  const out: DeadLetterQueue[] = [];
  for (const queue of names) {
    let url: string | undefined;
    try {
      url = (await sqs.send(new GetQueueUrlCommand({ QueueName: dlqName(prefix, QUEUES[queue]) }))).QueueUrl;
    } catch (e) {
      if (/NonExistentQueue|QueueDoesNotExist/.test(`${(e as Error).name} ${(e as Error).message}`)) continue;
      throw e;
    }
    if (!url) continue;
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const a = attrs.Attributes ?? {};
    out.push({
      queue,
      url,
      count:
        Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    });
  }
  return out;
}

const toDeadLetter = (queue: QueueName, m: Message): DeadLetter => ({
  queue,
  messageId: m.MessageId ?? '',
  body: m.Body ?? '',
  ...(m.Attributes?.MessageGroupId ? { groupId: m.Attributes.MessageGroupId } : {}),
  receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
  ...(m.Attributes?.SentTimestamp ? { sentAt: Number(m.Attributes.SentTimestamp) } : {}),
  ...(m.Attributes?.SenderId ? { senderId: m.Attributes.SenderId } : {}),
});

/**
 * Receives up to `max` messages of one dead-letter queue, holding them invisible while it looks
 * (`holdSeconds`), and hands each to `visit`; what `visit` does not take (returns false) is made
 * visible again at the end. Returns the messages seen.
 */
async function walk(
  sqs: SQSClient,
  dlq: DeadLetterQueue,
  max: number,
  holdSeconds: number,
  visit: (m: Message) => Promise<boolean>,
): Promise<DeadLetter[]> {
  const seen = new Map<string, DeadLetter>();
  const release: Message[] = [];
  try {
    for (let empty = 0; seen.size < max && empty < 2; ) {
      const res = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlq.url,
          MaxNumberOfMessages: Math.min(10, max - seen.size),
          VisibilityTimeout: holdSeconds,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const batch = (res.Messages ?? []).filter((m) => !seen.has(m.MessageId ?? ''));
      if (batch.length === 0) {
        empty++;
        continue;
      }
      for (const m of batch) {
        seen.set(m.MessageId ?? '', toDeadLetter(dlq.queue, m));
        if (!(await visit(m))) release.push(m);
      }
    }
  } finally {
    for (let i = 0; i < release.length; i += 10) {
      await sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: dlq.url,
            Entries: release.slice(i, i + 10).map((m, j) => ({
              Id: String(j),
              ReceiptHandle: m.ReceiptHandle!,
              VisibilityTimeout: 0,
            })),
          }),
        )
        .catch(() => undefined);
    }
  }
  return [...seen.values()];
}

/**
 * Lists the dead letters of a deployment (at most `max` per queue). Listing receives them, so
 * they are invisible for a moment and their receive count goes up; both are harmless here.
 *
 * @example
 * const letters = await listDeadLetters(createSqsClient(config.aws), config.prefix);
 * for (const l of letters) console.log(l.queue, l.messageId, l.body);
 */
export async function listDeadLetters(
  sqs: SQSClient,
  prefix: string,
  opts: { queues?: readonly QueueName[]; max?: number } = {},
): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  for (const dlq of await deadLetterQueues(sqs, prefix, opts.queues)) {
    if (dlq.count === 0) continue;
    out.push(...(await walk(sqs, dlq, opts.max ?? 100, 30, async () => false)));
  }
  return out;
}

export interface RedriveReport {
  /** Messages copied back to their queue and deleted from the dead-letter queue. */
  readonly redriven: DeadLetter[];
  /** Dead-letter queues moved whole by SQS's own redrive (StartMessageMoveTask). */
  readonly moveTasks: QueueName[];
}

/**
 * Puts dead letters back on their source queues: all of them, or only `messageIds`.
 *
 * @example
 * await redriveDeadLetters(sqs, config.prefix, config.queues, { queues: ['timers'] });
 */
export async function redriveDeadLetters(
  sqs: SQSClient,
  prefix: string,
  sourceUrls: Readonly<Record<QueueName, string>>,
  opts: {
    queues?: readonly QueueName[];
    messageIds?: readonly string[];
    max?: number;
    useNativeMove?: boolean;
  } = {},
): Promise<RedriveReport> {
  const redriven: DeadLetter[] = [];
  const moveTasks: QueueName[] = [];
  const wanted = opts.messageIds ? new Set(opts.messageIds) : undefined;
  for (const dlq of await deadLetterQueues(sqs, prefix, opts.queues)) {
    if (dlq.count === 0) continue;
    if (opts.useNativeMove && !wanted && (await startMove(sqs, dlq.url))) {
      moveTasks.push(dlq.queue);
      continue;
    }
    const target = sourceUrls[dlq.queue];
    const fifo = target.endsWith('.fifo');
    await walk(sqs, dlq, opts.max ?? 10_000, 60, async (m) => {
      if (wanted && !wanted.has(m.MessageId ?? '')) return false;
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: target,
          MessageBody: m.Body ?? '',
          ...(fifo
            ? {
                MessageGroupId: m.Attributes?.MessageGroupId ?? 'redrive',
                MessageDeduplicationId: `redrive-${m.MessageId}`,
              }
            : {}),
        }),
      );
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: dlq.url,
          Entries: [{ Id: '0', ReceiptHandle: m.ReceiptHandle! }],
        }),
      );
      redriven.push(toDeadLetter(dlq.queue, m));
      return true;
    });
  }
  return { redriven, moveTasks };
}

/** SQS's own redrive of a whole dead-letter queue; false where the endpoint does not have it. */
async function startMove(sqs: SQSClient, dlqUrl: string): Promise<boolean> {
  try {
    const arn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    if (!arn) return false;
    await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn }));
    return true;
  } catch {
    return false;
  }
}
