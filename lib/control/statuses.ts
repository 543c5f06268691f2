/**
 * Statuses Meso itself reports (source SOURCE_MASTER, no uuid: nothing to acknowledge), and the
 * rules that choose them: what a partition-aware framework is told versus one that is not, and
 * what reconciliation answers for a task the registry does not know (Mesos's `Master::reconcile`).
 */
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import type { TaskReason, TaskState, TaskStatus } from '../protocol/index.ts';

/** A status Meso itself reports (no uuid: not to be acknowledged). */
export function masterStatus(
  now: number,
  frameworkId: string,
  taskId: string,
  state: TaskState,
  reason: TaskReason | undefined,
  message: string,
  agentId?: string,
): TaskStatus {
  return {
    taskId,
    frameworkId,
    ...(agentId ? { agentId } : {}),
    state,
    ...(reason ? { reason } : {}),
    message,
    source: 'SOURCE_MASTER',
    timestamp: now,
  };
}

/**
 * A state as a framework is told it: frameworks that are not partition-aware know nothing of
 * TASK_UNREACHABLE, TASK_GONE, TASK_GONE_BY_OPERATOR, TASK_UNKNOWN or TASK_DROPPED and are told
 * TASK_LOST instead (Mesos's backward-compatible mapping).
 */
export function forFramework(state: TaskState, partitionAware: boolean): TaskState {
  if (partitionAware) return state;
  switch (state) {
    case 'TASK_UNREACHABLE':
    case 'TASK_GONE':
    case 'TASK_GONE_BY_OPERATOR':
    case 'TASK_UNKNOWN':
    case 'TASK_DROPPED':
      return 'TASK_LOST';
    default:
      return state;
  }
}

/**
 * The answer to reconciling a task the registry has no record of, by what it knows of the agent
 * the framework named (Mesos's explicit reconciliation cases 3–6):
 * agent registered → TASK_GONE; unreachable → TASK_UNREACHABLE (with its unreachable time);
 * gone → TASK_GONE_BY_OPERATOR; unknown or not named → TASK_UNKNOWN. Frameworks that are not
 * partition-aware get TASK_LOST for all four.
 */
export function unknownTaskStatus(
  now: number,
  fw: Pick<FrameworkRecord, 'frameworkId' | 'partitionAware'>,
  taskId: string,
  agentId: string | undefined,
  agent: Pick<AgentRecord, 'status' | 'unreachableAt'> | undefined,
): TaskStatus {
  let state: TaskState = 'TASK_UNKNOWN';
  let message = 'Reconciliation: task is unknown';
  let unreachableTime: number | undefined;
  if (agentId && agent?.status === 'ACTIVE') {
    state = 'TASK_GONE';
    message = 'Reconciliation: task is unknown to the agent';
  } else if (agentId && agent?.status === 'UNREACHABLE') {
    state = 'TASK_UNREACHABLE';
    message = 'Reconciliation: task is unreachable';
    unreachableTime = agent.unreachableAt ?? undefined;
  } else if (agentId && agent?.status === 'GONE') {
    state = 'TASK_GONE_BY_OPERATOR';
    message = 'Reconciliation: task is gone';
  }
  const status = masterStatus(
    now,
    fw.frameworkId,
    taskId,
    forFramework(state, fw.partitionAware),
    'REASON_RECONCILIATION',
    message,
    agentId,
  );
  return unreachableTime !== undefined ? { ...status, unreachableTime } : status;
}

/**
 * The answer to reconciling a task the registry knows: the latest state the framework was sent
 * (Mesos's `status_update_state`), marked REASON_RECONCILIATION, without the uuid (it needs no
 * acknowledgement).
 */
export function reconciledStatus(now: number, t: TaskRecord): TaskStatus {
  const { uuid: _uuid, stdoutTail: _out, stderrTail: _err, ...rest } = t.status;
  return { ...rest, reason: 'REASON_RECONCILIATION', source: 'SOURCE_MASTER', timestamp: now };
}

/** A task update that was sent, and the version of its task row it reflects. */
export interface SentUpdate {
  readonly queueUrl: string;
  readonly frameworkId: string;
  readonly taskId: string;
  /** The row's version the update reflects (after the write that made it, or as read). */
  readonly version: number;
}
