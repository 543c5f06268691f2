/** Task states as a framework sees them: the core's state machine, plus names for people. */
import type { TaskState } from '../protocol/common.ts';

export { isTerminal, TERMINAL_STATES } from '../core/task-state.ts';

/** `TASK_RUNNING` → `RUNNING`, for people. */
export function shortState(state: TaskState): string {
  return state.replace(/^TASK_/, '');
}
