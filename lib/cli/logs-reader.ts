/**
 * Reads chunks of a task's output through the queues (lib/protocol/logs.ts), from any machine
 * that can reach the cluster: READ_LOGS goes to `scheduler-calls`, the answer comes back on the
 * caller's own queue `<prefix>-logs-<hash of its principal>.fifo`, created here if it is missing.
 *
 * Several readers of one identity share that queue: an answer to another reader's request is made
 * visible again for it, and one older than {@link STALE_REPLY_MS} (its reader gave up) is deleted.
 */
import { randomUUID } from 'node:crypto';
import { callerPrincipal } from '../adapters/caller-identity.ts';
import {
  changeVisibility,
  createSqsClient,
  deleteMessages,
  type ReceivedMessage,
  receive,
  type SqsApi,
  sdkSqs,
} from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import { parseMessage } from '../protocol/index.ts';
import {
  type LogStream,
  type LogsReply,
  LogsReplySchema,
  logsQueueName,
  type ReadLogsCall,
  readLogsGroup,
} from '../protocol/logs.ts';

/** An answer this old is no reader's any more. */
export const STALE_REPLY_MS = 120_000;

export interface ChunkRequest {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly stream: LogStream;
  readonly offset: number;
  readonly maxBytes?: number;
  readonly fromEnd?: boolean;
}

/** No answer, or an answer saying why there is no chunk. */
export class LogsError extends Error {
  override name = 'LogsError';
  constructor(
    message: string,
    readonly code: string,
    /** The task's state as the registry recorded it, when the answer said. */
    readonly state?: LogsReply['state'],
  ) {
    super(message);
  }
}

export interface LogsReader {
  /** One chunk; throws LogsError when the answer is an error or does not come in time. */
  read(req: ChunkRequest): Promise<LogsReply & { readonly bytes: Buffer }>;
  close(): void;
}

/**
 * A reader for the cluster `config` describes, as the identity its credentials are.
 *
 * @example
 * const reader = await openLogsReader(loadClusterConfig());
 * const chunk = await reader.read({ frameworkId, taskId: 'web-1', stream: 'stdout', offset: 0 });
 */
export async function openLogsReader(
  config: ClusterConfig,
  opts: { readonly timeoutMs?: number; readonly principal?: string } = {},
): Promise<LogsReader> {
  const client = createSqsClient(config.aws);
  try {
    const principal = opts.principal ?? (await callerPrincipal(config.aws));
    const sqs = sdkSqs(client);
    const res = await sqs.call('CreateQueue', {
      QueueName: logsQueueName(config.prefix, principal),
      Attributes: { FifoQueue: 'true', MessageRetentionPeriod: '600' },
    });
    if (!res.QueueUrl) throw new Error('CreateQueue returned no queue URL');
    return queueLogsReader(sqs, config.queues.schedulerCalls, res.QueueUrl, {
      timeoutMs: opts.timeoutMs ?? 30_000,
      close: () => client.destroy(),
    });
  } catch (e) {
    client.destroy();
    throw e;
  }
}

/** The reader over an SQS client, the calls queue and the caller's own queue. */
export function queueLogsReader(
  sqs: SqsApi,
  callsQueueUrl: string,
  ownQueueUrl: string,
  opts: { readonly timeoutMs: number; readonly close?: () => void; readonly now?: () => number },
): LogsReader {
  const now = opts.now ?? Date.now;
  return {
    close: () => opts.close?.(),
    async read(req) {
      const requestId = randomUUID();
      const call: ReadLogsCall = {
        v: 1,
        type: 'READ_LOGS',
        requestId,
        frameworkId: req.frameworkId,
        taskId: req.taskId,
        stream: req.stream,
        offset: req.offset,
        ...(req.maxBytes !== undefined ? { maxBytes: req.maxBytes } : {}),
        ...(req.fromEnd ? { fromEnd: true } : {}),
      };
      await sqs.call('SendMessageBatch', {
        QueueUrl: callsQueueUrl,
        Entries: [
          {
            Id: '0',
            MessageBody: JSON.stringify(call),
            MessageGroupId: readLogsGroup(req.frameworkId, req.taskId),
            MessageDeduplicationId: requestId,
          },
        ],
      });
      const deadline = now() + opts.timeoutMs;
      for (;;) {
        const left = deadline - now();
        if (left <= 0) break;
        const got = await receive(sqs, ownQueueUrl, {
          waitSeconds: Math.max(1, Math.min(20, Math.ceil(left / 1000))),
          visibilityTimeout: 30,
        });
        const mine: LogsReply[] = [];
        const done: ReceivedMessage[] = [];
        const others: ReceivedMessage[] = [];
        for (const m of got) {
          const parsed = parseMessage(LogsReplySchema, m.body, ['LOGS']);
          if (parsed.ok && parsed.message.requestId === requestId) {
            mine.push(parsed.message);
            done.push(m);
          } else if (!parsed.ok || (m.sentAt > 0 && now() - m.sentAt > STALE_REPLY_MS)) done.push(m);
          else others.push(m);
        }
        if (done.length > 0)
          await deleteMessages(
            sqs,
            ownQueueUrl,
            done.map((m) => m.receiptHandle),
          );
        if (others.length > 0)
          await changeVisibility(
            sqs,
            ownQueueUrl,
            others.map((m) => m.receiptHandle),
            // Back for its reader soon, without this loop receiving it over and over meanwhile.
            1,
          ).catch(() => {});
        const reply = mine[0];
        if (reply) {
          if (reply.error) throw new LogsError(reply.error.message, reply.error.code, reply.state);
          return { ...reply, bytes: Buffer.from(reply.data ?? '', 'base64') };
        }
      }
      throw new LogsError(
        `no answer about task ${req.taskId} within ${Math.round(opts.timeoutMs / 1000)} s: ` +
          'its agent may be down or slow (`meso agents`); `meso task` shows the last lines its terminal update carried',
        'TIMEOUT',
      );
    },
  };
}
