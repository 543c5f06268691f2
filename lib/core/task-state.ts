/**
 * The Mesos task state machine.
 *
 * Status updates reach the registry at least once, out of order after redelivery, and from more
 * than one source (the agent, the master's own decisions such as TASK_DROPPED or
 * TASK_UNREACHABLE). The registry must therefore decide, for every update, whether it may move a
 * task's recorded state. This module is that decision, kept pure so it is the same in Lambda,
 * in local mode and in tests.
 *
 * The rules, as Mesos keeps them:
 * - A task is born TASK_STAGING and never goes back to it.
 * - TASK_STAGING → STARTING, RUNNING, KILLING, UNREACHABLE or any terminal state.
 * - TASK_STARTING → RUNNING, KILLING, UNREACHABLE or any terminal state.
 * - TASK_RUNNING → RUNNING (health-check updates repeat the state), KILLING, UNREACHABLE or any
 *   terminal state.
 * - TASK_KILLING → UNREACHABLE or any terminal state.
 * - TASK_UNREACHABLE is *not* terminal: the agent may come back and report the task as it is
 *   (STARTING, RUNNING or KILLING), or the task may end (GONE, LOST, or any terminal state). When
 *   an unreachable agent is garbage-collected the master no longer knows the task, so
 *   UNREACHABLE → UNKNOWN is allowed too.
 * - TASK_UNKNOWN is not final: it only says "the master has no record", so any later, more
 *   precise state may replace it (except STAGING).
 * - Terminal states (FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR) are
 *   final: nothing moves a task out of one.
 * - A repeat of the same non-terminal state is a valid (idempotent) transition. A repeat of the
 *   same terminal state is *not* a transition: it is a redelivered update, recognised with
 *   {@link isRepeat} so the caller can acknowledge it and change nothing.
 */
import type { TaskState } from '../protocol/common.ts';

/** The states after which a task never changes again. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'TASK_FINISHED',
  'TASK_FAILED',
  'TASK_KILLED',
  'TASK_ERROR',
  'TASK_LOST',
  'TASK_DROPPED',
  'TASK_GONE',
  'TASK_GONE_BY_OPERATOR',
]);

/** Thrown by {@link transition} for a move the state machine forbids. */
export class InvalidTransitionError extends Error {
  override name = 'InvalidTransitionError';
  constructor(
    readonly from: TaskState,
    readonly to: TaskState,
  ) {
    super(
      TERMINAL_STATES.has(from)
        ? `task is already ${from}; it cannot become ${to}`
        : `a task cannot go from ${from} to ${to}`,
    );
  }
}

/**
 * Whether `state` is final. TASK_UNREACHABLE and TASK_UNKNOWN are not: the task may still be
 * found running.
 *
 * @example
 * if (isTerminal(update.state)) releaseResources(task);
 */
export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}

/** The non-terminal states each non-terminal state may move to (terminal targets are added below). */
const NON_TERMINAL_NEXT: Readonly<Record<string, readonly TaskState[]>> = {
  TASK_STAGING: ['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_UNREACHABLE'],
  TASK_STARTING: ['TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_UNREACHABLE'],
  TASK_RUNNING: ['TASK_RUNNING', 'TASK_KILLING', 'TASK_UNREACHABLE'],
  TASK_KILLING: ['TASK_KILLING', 'TASK_UNREACHABLE'],
  TASK_UNREACHABLE: ['TASK_UNREACHABLE', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_UNKNOWN'],
  TASK_UNKNOWN: ['TASK_UNKNOWN', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_UNREACHABLE'],
};

/**
 * Whether a task recorded in `from` may be moved to `to`. Same-state repeats of non-terminal
 * states are valid; anything out of a terminal state (including a repeat of it) is not — use
 * {@link isRepeat} to recognise a redelivered terminal update.
 *
 * @example
 * if (canTransition(task.state, update.state)) task = { ...task, state: update.state };
 */
export function canTransition(from: TaskState, to: TaskState): boolean {
  if (isTerminal(from)) return false;
  if (isTerminal(to)) return true;
  return NON_TERMINAL_NEXT[from]?.includes(to) ?? false;
}

/**
 * Whether an update repeats the state already recorded. For a terminal state this is how a
 * redelivered final update is told apart from an invalid one: acknowledge it, change nothing.
 *
 * @example
 * if (isRepeat(task.state, update.state) && isTerminal(task.state)) return ack(update);
 */
export function isRepeat(from: TaskState, to: TaskState): boolean {
  return from === to;
}

/**
 * The state after applying `to` to a task in `from`; throws {@link InvalidTransitionError} when
 * the move is forbidden (including a repeat of a terminal state).
 *
 * @example
 * const next = transition('TASK_STAGING', 'TASK_RUNNING'); // 'TASK_RUNNING'
 */
export function transition(from: TaskState, to: TaskState): TaskState {
  if (!canTransition(from, to)) throw new InvalidTransitionError(from, to);
  return to;
}
