/**
 * Task rows: read one, change one (conditional on the version read, retried on a lost race), and
 * a status Meso decides for a row together with the UPDATE its framework must hear, for the
 * outbox of the same transaction. Every status change goes through {@link statusSet}, which gives
 * a row that ends its `purgeAt` (lib/core/task-retention.ts).
 */
import type { FrameworkRecord, TaskRecord } from '../../core/model.ts';
import type { StatusSet } from '../../core/task-change.ts';
import { withPurgeAt } from '../../core/task-retention.ts';
import { type RowStatus, rowStatus } from '../../core/task-row.ts';
import type { Item, Store, WriteOp } from '../../ports/store.ts';
import { type OutboxMessage, toFramework } from '../outbox.ts';
import { type Decide, updateRecord } from './transact.ts';

export const getTask = (s: Store, frameworkId: string, taskId: string) =>
  s.get<TaskRecord & Item>('tasks', { frameworkId, taskId });

/** `update(id, change)` for a task row. */
export const updateTask = <R>(
  s: Store,
  frameworkId: string,
  taskId: string,
  decide: Decide<TaskRecord, R>,
): Promise<R> => updateRecord(s, 'tasks', { frameworkId, taskId }, decide);

/**
 * The attributes a status change sets on a task row: `set`, its `latest` without the ids the row
 * carries (lib/core/task-row.ts), and when it ends the task the row's `purgeAt`,
 * `retentionSeconds` (the deployment's `taskRetentionSeconds`) after it ended.
 */
export const statusSet = <S extends Pick<StatusSet, 'state' | 'updatedAt' | 'latest'>>(
  set: S,
  retentionSeconds: number,
): Omit<S, 'latest'> & { latest?: RowStatus | null; purgeAt?: number } =>
  withPurgeAt(set.latest ? { ...set, latest: rowStatus(set.latest) } : set, retentionSeconds);

/**
 * A status change of a row read at `row.version`, and — when its framework is connected — the
 * UPDATE it hears, watched so that a newer change overtaking it is followed up (lib/control/order.ts).
 */
export function statusChange(
  row: Pick<TaskRecord, 'frameworkId' | 'taskId' | 'version'>,
  set: StatusSet,
  fw: Pick<FrameworkRecord, 'status' | 'queueUrl'> | undefined,
  dedupId: string,
  retentionSeconds: number,
): { write: WriteOp; message?: OutboxMessage } {
  const { frameworkId, taskId } = row;
  const write: WriteOp = {
    kind: 'patch',
    table: 'tasks',
    key: { frameworkId, taskId },
    set: statusSet(set, retentionSeconds) as unknown as Item,
    expect: row.version,
  };
  if (fw?.status !== 'ACTIVE') return { write };
  return {
    write,
    message: toFramework(fw.queueUrl, { v: 1, type: 'UPDATE', status: set.status }, dedupId, {
      frameworkId,
      taskId,
      version: row.version + 1,
    }),
  };
}
