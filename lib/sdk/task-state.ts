/** Task states as a framework sees them. */
import type { TaskState } from '../protocol/common.ts';

/** States after which a task never changes again (Mesos's `isTerminalState`). */
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

/** TASK_UNREACHABLE and TASK_UNKNOWN are not terminal: the task may come back. */
export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}

/** `TASK_RUNNING` → `RUNNING`, for people. */
export function shortState(state: TaskState): string {
  return state.replace(/^TASK_/, '');
}
