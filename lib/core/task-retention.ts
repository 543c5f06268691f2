/**
 * How long a task row is kept after its task ended. The tasks table has a DynamoDB TTL attribute,
 * `purgeAt` (epoch seconds; lib/definition/tables-queues.ts): a row that carries it is deleted by
 * DynamoDB some time after that moment, a row without it is kept. A task is given one when it
 * reaches a terminal state, so running tasks are never purged and ended ones — with their
 * TaskInfo and environment — do not stay forever.
 *
 * Retention is counted from the terminal transition, not from the framework's ACKNOWLEDGE: the
 * ACKNOWLEDGE is forwarded to the agent without reading or writing the row (it is the hottest call
 * there is), and the agent is where an update waits for it. While the agent resends an
 * unacknowledged update the row must still be there to recognise it (its uuid), so the retention
 * must be much longer than any framework stays away: the default, 7 days, is longer than Mesos's
 * usual failover timeouts; a framework gone longer than its retention loses only the record of
 * tasks that ended, which RECONCILE then answers as TASK_LOST / unknown, as Mesos does for
 * completed tasks it no longer keeps.
 */
import type { TaskState } from '../protocol/index.ts';
import { isTerminal } from './task-state.ts';

/** Default retention of an ended task's row: 7 days. */
export const DEFAULT_TASK_RETENTION_SECONDS = 7 * 86_400;

/** The shortest retention accepted: an hour, so an update in flight still finds its row. */
export const MIN_TASK_RETENTION_SECONDS = 3_600;

/**
 * `purgeAt` (epoch seconds, rounded up) for a row entering `state` at `nowMs`; undefined when the
 * state is not terminal (the row is kept).
 */
export function purgeAtFor(state: TaskState, nowMs: number, retentionSeconds: number): number | undefined {
  if (!isTerminal(state)) return undefined;
  if (!Number.isFinite(retentionSeconds) || retentionSeconds < MIN_TASK_RETENTION_SECONDS)
    throw new RangeError(
      `task retention must be at least ${MIN_TASK_RETENTION_SECONDS} seconds, not ${retentionSeconds}`,
    );
  return Math.ceil(nowMs / 1000) + Math.ceil(retentionSeconds);
}

/**
 * `set` (a change to a task row that sets its state) with the row's `purgeAt` added when the
 * change ends the task: the one place rows are given one.
 */
export function withPurgeAt<S extends { readonly state: TaskState; readonly updatedAt: number }>(
  set: S,
  retentionSeconds: number,
): S & { readonly purgeAt?: number } {
  const purgeAt = purgeAtFor(set.state, set.updatedAt, retentionSeconds);
  return purgeAt === undefined ? set : { ...set, purgeAt };
}
