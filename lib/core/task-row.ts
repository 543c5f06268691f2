/**
 * What a task row keeps of the statuses and the TaskInfo it records, and how a reader gets them
 * back whole. DynamoDB bills every write of a row by the whole row (a write unit per started KB),
 * so the row does not repeat in `info` and `latest` the ids it carries itself: a task with
 * UUID-long ids stays within one write unit a write (test/unit/control/task-row-size.test.ts).
 * Rows written before keep the ids in them; `taskInfoOf` gives the same answer for both, and the
 * readers of `latest` (the operator views) need no ids from it; `wholeTask` gives a row whole to
 * readers outside the control plane.
 */
import type { TaskInfo, TaskStatus } from '../protocol/index.ts';

/** A TaskInfo as a row keeps it: without the task's and its agent's ids (the row's own). */
export type RowTaskInfo = Omit<TaskInfo, 'taskId' | 'agentId'> &
  Partial<Pick<TaskInfo, 'taskId' | 'agentId'>>;

/** A latest status as a row keeps it: without the ids of the task, its framework and agent. */
export type RowStatus = Omit<TaskStatus, 'taskId' | 'frameworkId' | 'agentId'> &
  Partial<Pick<TaskStatus, 'taskId' | 'frameworkId' | 'agentId'>>;

/** `info` for the row of the task it describes. */
export function rowTaskInfo(info: TaskInfo): RowTaskInfo {
  const { taskId: _t, agentId: _a, ...rest } = info;
  return rest;
}

/** The TaskInfo a row was launched with, ids included (the LAUNCH its agent is sent). */
export const taskInfoOf = (row: {
  readonly taskId: string;
  readonly agentId: string;
  readonly info: RowTaskInfo;
}): TaskInfo => ({
  ...row.info,
  taskId: row.taskId,
  agentId: row.agentId,
});

/** A latest status for the row of its task (its ids are the row's: its agent was checked). */
export function rowStatus(status: TaskStatus): RowStatus {
  const { taskId: _t, frameworkId: _f, agentId: _a, ...rest } = status;
  return rest;
}

/**
 * A row as a reader outside the control plane wants it (`meso task --json`): `info` the TaskInfo
 * as launched and `latest` a whole status, whichever layout wrote the row.
 */
export function wholeTask<
  R extends {
    readonly taskId: string;
    readonly frameworkId: string;
    readonly agentId: string;
    readonly info: RowTaskInfo;
    readonly latest?: RowStatus | null;
  },
>(row: R): Omit<R, 'info' | 'latest'> & { info: TaskInfo; latest?: TaskStatus | null } {
  const { taskId, frameworkId, agentId } = row;
  return {
    ...row,
    info: taskInfoOf(row),
    ...(row.latest ? { latest: { taskId, frameworkId, agentId, ...row.latest } } : {}),
  };
}
