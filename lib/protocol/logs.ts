/**
 * Reading a task's output through the queues, from any machine that can reach the cluster:
 *
 * 1. the reader (`meso logs`, `meso task`) sends READ_LOGS on `scheduler-calls`, in the group
 *    `<frameworkId>:logs:<taskId>` (or `<frameworkId>`), naming the task, the stream, an offset
 *    and how many bytes;
 * 2. the registry authorizes it — the framework's own principal, or one the ACL
 *    `access_sandboxes` names for it — and forwards a READ_LOGS command to the task's agent;
 * 3. the agent reads that task's own `stdout` or `stderr` (no path comes from a message) and
 *    answers with LOGS on `agent-calls`;
 * 4. the registry checks the task is that agent's and the reader still allowed, and sends the
 *    chunk to the reader's own queue, `<prefix>-logs-<hash of the reader's principal>.fifo`:
 *    derived from who sent READ_LOGS (its SQS SenderId), never from a message.
 *
 * Chunks carry raw bytes as base64 (at most {@link LOGS_LIMITS.chunkBytes} of them, so a chunk
 * is far below SQS's message size whatever the task wrote), the offset they start at, the file's
 * size, and whether the task's run has ended; `-f` asks again from the new offset until the run
 * has ended and the file is drained.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Id, TaskStateSchema } from './common.ts';
import { perTaskGroup } from './groups.ts';

export const LOGS_LIMITS = {
  /** Bytes in one chunk: larger asks are cut to this (base64: 87 382 characters). */
  chunkBytes: 65_536,
  /** A principal, as carried from the registry to the agent and back. */
  principalChars: 512,
  /** An error's message in a reply. */
  messageChars: 1024,
} as const;

export const LogStreamSchema = z.enum(['stdout', 'stderr']);
export type LogStream = z.infer<typeof LogStreamSchema>;

/** The reader's id for one request, echoed in the reply: letters, digits, `_` and `-`. */
export const RequestId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'request ids are 1-64 of [A-Za-z0-9_-]');

const Offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const Base64 = z
  .string()
  .max(Math.ceil(LOGS_LIMITS.chunkBytes / 3) * 4)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'data is base64');

const v = z.literal(1);

/** The scheduler call (on `scheduler-calls`). */
export const ReadLogsCallSchema = z
  .object({
    v,
    type: z.literal('READ_LOGS'),
    frameworkId: Id,
    taskId: Id,
    requestId: RequestId,
    stream: LogStreamSchema,
    /** Byte offset to read from; past the end reads nothing. */
    offset: Offset,
    /** At most this many bytes (cut to {@link LOGS_LIMITS.chunkBytes}). Default: that limit. */
    maxBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    /** Read the last `maxBytes` of the file instead (`offset` is then ignored). */
    fromEnd: z.boolean().optional(),
  })
  .strict();

/** The command the registry forwards to the task's agent (on its own queue). */
export const ReadLogsCommandSchema = z
  .object({
    v,
    type: z.literal('READ_LOGS'),
    frameworkId: Id,
    taskId: Id,
    requestId: RequestId,
    /** Who asked: the registry checks it again when the answer comes back. */
    requester: z.string().min(1).max(LOGS_LIMITS.principalChars),
    stream: LogStreamSchema,
    offset: Offset,
    maxBytes: z.number().int().positive().max(LOGS_LIMITS.chunkBytes),
    fromEnd: z.boolean().optional(),
  })
  .strict();

const LogsErrorSchema = z
  .object({ code: z.string().min(1).max(64), message: z.string().max(LOGS_LIMITS.messageChars) })
  .strict();

/** The agent's answer (on `agent-calls`). */
export const LogsCallSchema = z
  .object({
    v,
    type: z.literal('LOGS'),
    agentId: Id,
    frameworkId: Id,
    taskId: Id,
    requestId: RequestId,
    requester: z.string().min(1).max(LOGS_LIMITS.principalChars),
    stream: LogStreamSchema,
    /** Where `data` starts in the file. */
    offset: Offset,
    data: Base64,
    /** The file's size when read. */
    size: Offset,
    /** The task's run has ended: the file will not grow. */
    ended: z.boolean(),
    /** The agent could not read it (no sandbox of the task, not a regular file). */
    error: LogsErrorSchema.optional(),
  })
  .strict();

/** What the reader's queue receives: a chunk, or why there is none. */
export const LogsReplySchema = z
  .object({
    v,
    type: z.literal('LOGS'),
    requestId: RequestId,
    frameworkId: Id,
    taskId: Id,
    stream: LogStreamSchema,
    offset: Offset.optional(),
    data: Base64.optional(),
    size: Offset.optional(),
    ended: z.boolean().optional(),
    /** The task's state as the registry records it. */
    state: TaskStateSchema.optional(),
    agentId: Id.optional(),
    error: LogsErrorSchema.optional(),
  })
  .strict();

export type ReadLogsCall = z.infer<typeof ReadLogsCallSchema>;
export type ReadLogsCommand = z.infer<typeof ReadLogsCommandSchema>;
export type LogsCall = z.infer<typeof LogsCallSchema>;
export type LogsReply = z.infer<typeof LogsReplySchema>;

/** The group a READ_LOGS travels in: per task, so it neither waits behind nor blocks the framework's calls. */
export const readLogsGroup = (frameworkId: string, taskId: string): string =>
  perTaskGroup(frameworkId, ':logs:', taskId);

/**
 * `<prefix>-logs-<32 hex digits of sha256(principal)>.fifo`: the queue a reader receives chunks
 * on, named after its identity so that no message can point the registry elsewhere.
 */
export function logsQueueName(prefix: string, principal: string): string {
  return `${prefix}-logs-${createHash('sha256').update(principal).digest('hex').slice(0, 32)}.fifo`;
}
