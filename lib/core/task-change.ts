/**
 * Changes to a task row. An agent's report about its task — a status update of the task's stream
 * and the task's latest state (Mesos's `latest_state`) — is applied by {@link applyAgentReport}: the
 * update once (its uuid is remembered on the row) and only along the state machine
 * (lib/core/task-state.ts) from the stream's state; the latest state moves the row's `state` at
 * once, also along the state machine, so a terminal state never goes back. A status Meso makes
 * itself (the agent went away or came back) sets the state as it is.
 */
import type { TaskState, TaskStatus } from '../protocol/index.ts';
import type { TaskRecord } from './model.ts';
import { canTransition, isTerminal } from './task-state.ts';

/** uuids of applied updates a row remembers: enough to recognise any redelivery the agent makes. */
export const SEEN_UUIDS = 16;

/** The attributes of a task row a status change sets. */
export interface StatusSet {
  readonly state: TaskState;
  readonly status: TaskStatus;
  readonly updatedAt: number;
  readonly seenUuids?: readonly string[];
  readonly updateState?: TaskState;
  readonly latest?: TaskStatus | null;
}

/** The attributes of a task row an agent's report sets (`status` only when an update is applied). */
export type AgentStatusSet = Omit<StatusSet, 'status'> & {
  readonly status?: TaskStatus;
  readonly updateState: TaskState;
};

/** What an agent says about one of its tasks. */
export interface AgentReport {
  /** An update of the task's stream (STATUS_UPDATE); absent for a LATEST_STATE. */
  readonly update?: TaskStatus & { readonly uuid: string };
  /**
   * The task's latest status as its agent knows it, ids filled in. Absent, or in the update's
   * state: the update is the latest.
   */
  readonly latest?: TaskStatus;
}

export interface AgentReportOutcome {
  /**
   * `apply`: a step of the stream, to forward. `again`: applied before (its uuid is remembered),
   * to forward again. `out-of-order`: not a step the state machine allows from the stream's state
   * (overtaken by a status Meso made): acknowledged, not forwarded. `none`: no update.
   */
  readonly update: 'apply' | 'again' | 'out-of-order' | 'none';
  /**
   * `apply`: the row's state moves to the reported latest state. `same`: it is already there.
   * `refused`: not a step from the row's state (a terminal state never goes back) or not one from
   * the update it came with. `none`: no latest state other than the update's.
   */
  readonly latest: 'apply' | 'same' | 'refused' | 'none';
  /** What to write; absent when nothing changes. */
  readonly set?: AgentStatusSet;
  /** The row's state becomes terminal with this change: the task's resources are released. */
  readonly ended: boolean;
}

/**
 * An agent's report on the task row it is about (the caller has checked that the agent runs the
 * task).
 *
 * @example
 * // RUNNING waits for its acknowledgement; the task has finished meanwhile:
 * applyAgentReport(row, { update: running, latest: finished }, now);
 * // → update 'again' (forwarded once more), latest 'apply', set.state TASK_FINISHED, ended
 */
export function applyAgentReport(
  task: Pick<TaskRecord, 'state' | 'seenUuids' | 'updateState' | 'latest'>,
  report: AgentReport,
  now: number,
): AgentReportOutcome {
  const base = task.updateState ?? task.state;
  const u = report.update;
  const update: AgentReportOutcome['update'] = !u
    ? 'none'
    : task.seenUuids.includes(u.uuid)
      ? 'again'
      : canTransition(base, u.state)
        ? 'apply'
        : 'out-of-order';
  const streamState = update === 'apply' ? u!.state : base;

  let state = task.state;
  let details: TaskStatus | undefined;
  let latest: AgentReportOutcome['latest'] = 'none';
  const reported = report.latest && (!u || report.latest.state !== u.state) ? report.latest : undefined;
  if (reported) {
    if (u && !canTransition(u.state, reported.state)) latest = 'refused';
    else if (reported.state === task.state) latest = 'same';
    else if (canTransition(task.state, reported.state)) {
      latest = 'apply';
      state = reported.state;
      details = reported;
    } else latest = 'refused';
  }
  if (
    latest !== 'apply' &&
    update === 'apply' &&
    u!.state !== task.state &&
    canTransition(task.state, u!.state)
  ) {
    // No latest state beyond the update: the row follows it unless its state is already ahead.
    state = u!.state;
  }

  // The latest status is kept while the row's state is ahead of its stream, and only then.
  const ahead = state !== streamState;
  const latestField: TaskStatus | null | undefined = ahead ? details : task.latest ? null : undefined;
  const changed = update === 'apply' || state !== task.state || latestField !== undefined;
  const set: AgentStatusSet | undefined = changed
    ? {
        state,
        updateState: streamState,
        updatedAt: now,
        ...(update === 'apply'
          ? { status: u!, seenUuids: [...task.seenUuids, u!.uuid].slice(-SEEN_UUIDS) }
          : {}),
        ...(latestField !== undefined ? { latest: latestField } : {}),
      }
    : undefined;
  return {
    update,
    latest,
    ...(set ? { set } : {}),
    ended: !isTerminal(task.state) && isTerminal(state),
  };
}

/** The state a row's agent updates are checked against (Mesos's `status_update_state`). */
export const updateStateOf = (task: Pick<TaskRecord, 'state' | 'updateState'>): TaskState =>
  task.updateState ?? task.state;

/**
 * A status Meso decides itself; the row may keep a state other than the one its framework hears.
 * It restarts the task's update stream from that state, and the row's state is the latest again —
 * unless the row (`row`, as read) has already ended: a terminal state stays, with its details
 * (Mesos's `updateTask` leaves a terminal state alone too).
 */
export const masterChange = (
  state: TaskState,
  status: TaskStatus,
  now: number,
  row?: Pick<TaskRecord, 'state'>,
): StatusSet =>
  row && isTerminal(row.state) && row.state !== state
    ? { state: row.state, status, updatedAt: now, updateState: state }
    : { state, status, updatedAt: now, updateState: state, latest: null };
