import { TERMINAL_STATES } from '../../core/task-state.ts';
import type { TaskState } from '../../protocol/common.ts';

/**
 * Whether an update ends a task for a built-in framework: a terminal state, or UNREACHABLE /
 * UNKNOWN (its work is replaced or retried at once rather than waited for).
 */
export const endsTask = (state: TaskState): boolean =>
  TERMINAL_STATES.has(state) || state === 'TASK_UNREACHABLE' || state === 'TASK_UNKNOWN';
