/**
 * A local event-source mapping: polls an SQS queue and invokes a Lambda handler in-process with
 * the semantics of Lambda's SQS event source (with `ReportBatchItemFailures` on), so the handlers
 * that run in Lambda run unchanged in `meso dev` and in tests.
 *
 * What it keeps from Lambda:
 * - `concurrency` pollers, each long-polling and invoking one batch at a time (≤ `batchSize`);
 *   a real `SQSEvent` and a minimal `Context` whose remaining time runs out with the visibility
 *   timeout (Lambda's function timeout must not exceed it).
 * - Partial batch responses: successes are deleted; ids in `batchItemFailures` stay on the queue;
 *   an invalid response (an empty id, or an id not in the batch) or a thrown error fails the whole
 *   batch; `undefined`, `{}` and an empty list mean complete success.
 * - FIFO: never two batches in flight that hold the same message group. SQS already hides a
 *   group's later messages while one is in flight, but a message whose visibility timeout ran out
 *   under a slow handler is handed out again, to the other poller; the runner holds such a batch
 *   back until the group's current batch has settled. Within a batch, the first failure of a group
 *   also fails every later message of that group (they are not deleted), so order survives retries
 *   even if a handler does not report them itself.
 * - maxReceiveCount → dead-letter queue: the queue's own RedrivePolicy does it (SQS, LocalStack and
 *   fauxqs ≥ 2 all honour it, at the receive after the last allowed one); when `dlqUrl` is given the
 *   runner also moves any message it receives with ApproximateReceiveCount > maxReceiveCount (send
 *   to the DLQ, then delete), for emulators that ignore RedrivePolicy.
 *
 * Retries. Lambda leaves failed messages in flight until their visibility timeout ends, and that is
 * the default here too, so local mode retries on the deployed schedule (a poison message reaches the
 * DLQ after maxReceiveCount × visibility timeout, a FIFO group stays blocked as long). With
 * `retryDelaySeconds` the runner instead sets the failed messages' visibility to that many seconds
 * with one ChangeMessageVisibilityBatch call: the delay is kept by SQS, not by a timer here, so
 * `stop()` has nothing to cancel and a restart loses nothing. Tests use 0 to retry at once.
 *
 * fauxqs caveats: a FIFO receive returns at most one message per group, so FIFO
 * batches there hold one message per group; one new message wakes every long-poller; and a long
 * poll that is aborted still takes a message that arrives before its wait ends, which then stays
 * invisible until its visibility timeout. `stop()` aborts the receives, so use a fresh queue (or
 * expect a visibility-timeout delay) after stopping a runner on a queue that still gets messages.
 */
import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';

// biome-ignore lint/suspicious/noConfusingVoidType: the shape of aws-lambda's own SQSHandler
export type SqsBatchHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface EventSourceOptions {
  /** An SQS client with an explicit endpoint (`createSqsClient`). */
  readonly client: SQSClient;
  readonly queueUrl: string;
  /** The queue's dead-letter queue; when given, the runner redrives itself (see above). */
  readonly dlqUrl?: string;
  readonly fifo: boolean;
  /** Messages per invocation, 1–10. */
  readonly batchSize: number;
  /** Sent with every receive, and the handler's time budget. Use the queue's own value. */
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
  readonly handler: SqsBatchHandler;
  /** Parallel pollers, hence the most batches in flight at once. Default 2. */
  readonly concurrency?: number;
  /** Aborting it stops the runner, as `stop()` does. */
  readonly signal?: AbortSignal;
  /** Errors thrown by the handler, invalid responses and failed SQS calls. Default: console.error. */
  readonly onError?: (e: unknown) => void;
  /**
   * Seconds until a failed message is visible again. Default: leave it until its visibility
   * timeout ends, as Lambda does.
   */
  readonly retryDelaySeconds?: number;
  /** Long-poll wait per receive, 1–20 s. Default 20 (as Lambda); `stop()` aborts the wait. */
  readonly waitTimeSeconds?: number;
  /** `context.functionName`. Default: the queue's name. */
  readonly functionName?: string;
}

export interface EventSource {
  /** Stops polling, waits for the batches in flight to settle (handler, deletes). Idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves when no batch is in flight (received and not yet settled). Messages still waiting
   * on the queue, e.g. failed ones before their retry, do not count.
   */
  idle(): Promise<void>;
}

/** The handler's response did not name messages of its batch; Lambda fails the whole batch. */
export class InvalidBatchResponseError extends Error {
  override name = 'InvalidBatchResponseError';
}

/**
 * Starts polling `queueUrl` and invoking `handler` as Lambda's SQS event source would.
 *
 * @example
 * ```ts
 * const source = startEventSource({
 *   client: createSqsClient(config.aws),
 *   queueUrl: config.queues.schedulerCalls,
 *   fifo: true, batchSize: 10, visibilityTimeoutSeconds: 60, maxReceiveCount: 5,
 *   handler: async (event) => ({ batchItemFailures: [] }),
 * });
 * // ...
 * await source.stop();
 * ```
 */
export function startEventSource(opts: EventSourceOptions): EventSource {
  const { client, queueUrl, fifo } = opts;
  const batchSize = clamp(Math.floor(opts.batchSize), 1, 10);
  const waitTimeSeconds = clamp(opts.waitTimeSeconds ?? 20, 1, 20);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 2));
  const report = opts.onError ?? ((e: unknown) => console.error('[esm-runner]', queueUrl, e));
  const abort = new AbortController();

  /** FIFO groups held by a batch in flight. */
  const busyGroups = new Set<string>();
  let groupWaiters: (() => void)[] = [];
  /** Batches received and not yet settled. */
  let active = 0;
  let idleWaiters: (() => void)[] = [];

  const meta = describeQueue(client, queueUrl).catch((e) => {
    report(e);
    return fallbackMeta(queueUrl, 'us-east-1');
  });
  const functionName = opts.functionName ?? queueNameOf(queueUrl).replace(/\.fifo$/, '');

  async function poll(): Promise<void> {
    let backoff = 100;
    while (!abort.signal.aborted) {
      let messages: Message[];
      try {
        const res = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: batchSize,
            WaitTimeSeconds: waitTimeSeconds,
            VisibilityTimeout: opts.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: abort.signal },
        );
        messages = res.Messages ?? [];
        backoff = 100;
      } catch (e) {
        if (abort.signal.aborted) break;
        report(e);
        await sleep(backoff, abort.signal);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      if (messages.length === 0) continue;
      // Received messages are in flight even if stop() was called meanwhile: settle them.
      active++;
      try {
        await dispatch(messages);
      } catch (e) {
        report(e);
      } finally {
        active--;
        if (active === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const w of waiters) w();
        }
      }
    }
  }

  async function dispatch(received: Message[]): Promise<void> {
    let messages = received;
    if (opts.dlqUrl) {
      const over = messages.filter((m) => receiveCount(m) > opts.maxReceiveCount);
      if (over.length > 0) {
        await moveToDlq(over, opts.dlqUrl);
        messages = messages.filter((m) => !over.includes(m));
      }
    }
    if (messages.length === 0) return;
    if (!fifo) return invoke(messages);
    // A group held by another batch: this is a redelivery (its visibility ran out under a slow
    // handler). Hold it back until that batch settles; never run the same group twice at once.
    const ready = messages.filter((m) => !busyGroups.has(groupOf(m)));
    const held = messages.filter((m) => busyGroups.has(groupOf(m)));
    if (ready.length > 0) await invoke(ready);
    if (held.length > 0) {
      const groups = unique(held.map(groupOf));
      while (groups.some((g) => busyGroups.has(g))) {
        await new Promise<void>((r) => groupWaiters.push(r));
      }
      await invoke(held);
    }
  }

  async function invoke(batch: Message[]): Promise<void> {
    const groups = fifo ? unique(batch.map(groupOf)) : [];
    for (const g of groups) busyGroups.add(g);
    try {
      const { arn, region } = await meta;
      const deadline = Date.now() + opts.visibilityTimeoutSeconds * 1000;
      const event: SQSEvent = { Records: batch.map((m) => toRecord(m, arn, region)) };
      let failed: Set<string>;
      try {
        const response = await opts.handler(event, lambdaContext(functionName, arn, region, deadline));
        failed = failedIds(response, batch);
      } catch (e) {
        report(e);
        failed = new Set(batch.map((m) => m.MessageId!));
      }
      if (fifo) failed = blockGroupsAfterFailure(batch, failed);
      const done = batch.filter((m) => !failed.has(m.MessageId!));
      // Later messages first: an emulator that puts each one back at the head of its group
      // (fauxqs) then ends with them in their original order.
      const retry = batch.filter((m) => failed.has(m.MessageId!)).reverse();
      await Promise.all([
        deleteMessages(done),
        opts.retryDelaySeconds !== undefined && retry.length > 0
          ? changeVisibility(retry, clamp(opts.retryDelaySeconds, 0, 43200))
          : undefined,
      ]);
    } finally {
      for (const g of groups) busyGroups.delete(g);
      if (groups.length > 0) {
        const waiters = groupWaiters;
        groupWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  async function deleteMessages(messages: Message[]): Promise<void> {
    for (const chunk of chunks(messages, 10)) {
      try {
        const res = await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
        // A delete that fails leaves the message to come back: at-least-once, handlers are idempotent.
        if (res.Failed?.length) report(batchError('DeleteMessageBatch', queueUrl, res.Failed));
      } catch (e) {
        report(e);
      }
    }
  }

  async function changeVisibility(messages: Message[], seconds: number): Promise<void> {
    for (const chunk of chunks(messages, 10)) {
      try {
        const res = await client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((m, i) => ({
              Id: String(i),
              ReceiptHandle: m.ReceiptHandle!,
              VisibilityTimeout: seconds,
            })),
          }),
        );
        if (res.Failed?.length) report(batchError('ChangeMessageVisibilityBatch', queueUrl, res.Failed));
      } catch (e) {
        report(e);
      }
    }
  }

  /** Send to the DLQ, then delete here; a failed send leaves the message where it is. */
  async function moveToDlq(messages: Message[], dlqUrl: string): Promise<void> {
    const dlqFifo = dlqUrl.endsWith('.fifo');
    for (const chunk of chunks(messages, 10)) {
      try {
        const res = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: dlqUrl,
            Entries: chunk.map((m, i) => ({
              Id: String(i),
              MessageBody: m.Body ?? '',
              ...(m.MessageAttributes ? { MessageAttributes: m.MessageAttributes } : {}),
              ...(dlqFifo ? { MessageGroupId: groupOf(m), MessageDeduplicationId: m.MessageId! } : {}),
            })),
          }),
        );
        const failedIdx = new Set((res.Failed ?? []).map((f) => Number(f.Id)));
        if (failedIdx.size > 0)
          report(batchError('SendMessageBatch (dead-letter)', dlqUrl, res.Failed ?? []));
        await deleteMessages(chunk.filter((_, i) => !failedIdx.has(i)));
      } catch (e) {
        report(e);
      }
    }
  }

  const pollers = Array.from({ length: concurrency }, () => poll());
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      abort.abort();
      await Promise.all(pollers);
    })();
    return stopping;
  };
  if (opts.signal?.aborted) void stop();
  else opts.signal?.addEventListener('abort', () => void stop(), { once: true });

  return {
    stop,
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r))),
  };
}

// ---------------------------------------------------------------------------------------------
// Lambda's reading of a response

/**
 * The ids a handler's response reports as failed. Complete success: `undefined`, `null`, `{}`,
 * an absent/null/empty `batchItemFailures`. Complete failure (thrown): an item whose
 * `itemIdentifier` is missing, empty or not the id of a message in the batch.
 */
export function failedIds(response: unknown, batch: readonly Message[]): Set<string> {
  const items = (response as Partial<SQSBatchResponse> | null | undefined)?.batchItemFailures as unknown;
  if (items === undefined || items === null) return new Set();
  if (!Array.isArray(items)) throw new InvalidBatchResponseError('batchItemFailures is not a list');
  const ids = new Set(batch.map((m) => m.MessageId));
  const failed = new Set<string>();
  for (const item of items) {
    const id = (item as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !ids.has(id)) {
      throw new InvalidBatchResponseError(
        `batchItemFailures names ${JSON.stringify(id)}, not a message of this batch: the whole batch fails`,
      );
    }
    failed.add(id);
  }
  return failed;
}

/** FIFO: from a group's first failed message on, every later message of that group fails too. */
export function blockGroupsAfterFailure(batch: readonly Message[], failed: ReadonlySet<string>): Set<string> {
  const out = new Set(failed);
  const blocked = new Set<string>();
  for (const m of batch) {
    const g = groupOf(m);
    if (blocked.has(g)) out.add(m.MessageId!);
    else if (failed.has(m.MessageId!)) blocked.add(g);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Event and context

function toRecord(m: Message, arn: string, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  const optional = (k: 'MessageGroupId' | 'MessageDeduplicationId' | 'SequenceNumber' | 'AWSTraceHeader') =>
    a[k] !== undefined ? { [k]: a[k] } : {};
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? '',
      ApproximateFirstReceiveTimestamp:
        a.ApproximateFirstReceiveTimestamp ?? a.SentTimestamp ?? String(Date.now()),
      ...optional('MessageGroupId'),
      ...optional('MessageDeduplicationId'),
      ...optional('SequenceNumber'),
      ...optional('AWSTraceHeader'),
    },
    messageAttributes: toLambdaAttributes(m.MessageAttributes),
    md5OfBody: m.MD5OfBody ?? '',
    ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: arn,
    awsRegion: region,
  };
}

/** SQS's `{StringValue, DataType}` to Lambda's `{stringValue, dataType, …ListValues: []}`. */
function toLambdaAttributes(attrs: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, v] of Object.entries(attrs ?? {})) {
    out[name] = {
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
      ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString('base64') } : {}),
      stringListValues: [],
      binaryListValues: [],
      dataType: v.DataType ?? 'String',
    };
  }
  return out;
}

function lambdaContext(functionName: string, queueArn: string, region: string, deadline: number): Context {
  const account = queueArn.split(':')[4] || '000000000000';
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

async function describeQueue(client: SQSClient, queueUrl: string): Promise<{ arn: string; region: string }> {
  const region = await client.config.region();
  const res = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { arn: res.Attributes?.QueueArn ?? fallbackMeta(queueUrl, region).arn, region };
}

/** `https://sqs.<region>.amazonaws.com/<account>/<name>` → its ARN, when the queue cannot tell. */
function fallbackMeta(queueUrl: string, defaultRegion: string): { arn: string; region: string } {
  const region = /^https?:\/\/sqs\.([a-z0-9-]+)\./.exec(queueUrl)?.[1] ?? defaultRegion;
  const parts = new URL(queueUrl).pathname.split('/').filter(Boolean);
  return { arn: `arn:aws:sqs:${region}:${parts[0] ?? '000000000000'}:${parts[1] ?? ''}`, region };
}

function queueNameOf(queueUrl: string): string {
  return new URL(queueUrl).pathname.split('/').filter(Boolean).pop() ?? 'queue';
}

const groupOf = (m: Message): string => m.Attributes?.MessageGroupId ?? '';
const receiveCount = (m: Message): number => Number(m.Attributes?.ApproximateReceiveCount ?? '1');

function batchError(
  op: string,
  queueUrl: string,
  failed: readonly { Id?: string; Code?: string; Message?: string }[],
) {
  const f = failed[0];
  return new Error(
    `${op} on ${queueUrl}: ${failed.length} entr${failed.length === 1 ? 'y' : 'ies'} failed (${f?.Code} ${f?.Message ?? ''})`,
  );
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
