/**
 * Changes to a task row. An agent's status update is applied once (its uuid is remembered on the
 * row) and only along the task's state machine (lib/core/task-state.ts); a status Meso makes
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
}

export type AgentStatusOutcome =
  /** Applied before (the uuid is remembered): only its messages are sent again. */
  | { readonly kind: 'again' }
  /** Not a step the state machine allows (an update overtaken by another): ignored. */
  | { readonly kind: 'out-of-order' }
  | { readonly kind: 'apply'; readonly set: StatusSet; readonly terminal: boolean };

/** An agent's status update (`uuid` set) applied to the task row it is about. */
export function applyAgentStatus(
  task: Pick<TaskRecord, 'state' | 'seenUuids'>,
  status: TaskStatus & { readonly uuid: string },
  now: number,
): AgentStatusOutcome {
  if (task.seenUuids.includes(status.uuid)) return { kind: 'again' };
  if (!canTransition(task.state, status.state)) return { kind: 'out-of-order' };
  return {
    kind: 'apply',
    set: {
      state: status.state,
      status,
      seenUuids: [...task.seenUuids, status.uuid].slice(-SEEN_UUIDS),
      updatedAt: now,
    },
    terminal: isTerminal(status.state),
  };
}

/** A status Meso decides itself; the row may keep a state other than the one its framework hears. */
export const masterChange = (state: TaskState, status: TaskStatus, now: number): StatusSet => ({
  state,
  status,
  updatedAt: now,
});
