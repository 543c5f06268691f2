/**
 * Reconciling an agent that registers again (it was UNREACHABLE, its process restarted, or a
 * spurious re-registration) with what the registry knows, as Mesos's master does in
 * `__reregisterSlave` and `reconcileKnownSlave`. The decision is pure; agent/register.ts applies it.
 *
 * - A task the agent runs and the registry knows on it, whose framework is still there: it stays
 *   in the agent's accounting if the accounting still holds it (the ledger is the registry's, and
 *   a task it no longer holds has ended and was released while this REGISTER was on its way); if it was TASK_UNREACHABLE it is back (STARTING/RUNNING/KILLING as
 *   the agent reports it) and its framework gets an UPDATE with REASON_AGENT_REREGISTERED — for
 *   frameworks that are partition-aware and for those that are not (Mesos ≥ 1.2 lets both run).
 * - A task the agent runs that must not run — unknown to the registry, on another agent, already
 *   terminal, its framework removed, or killed while the agent was away — is killed.
 * - A task the registry believes runs on the agent but the agent did not list: the agent is asked
 *   (RECONCILE), because its REGISTER may have been sent before a LAUNCH reached it (Mesos's
 *   ReconcileRace). If it does not know the task it reports `ifUnknown`: TASK_DROPPED for a task
 *   never started (partition-aware) or TASK_GONE for one that had started (its agent restarted), and
 *   TASK_LOST for frameworks that are not partition-aware (ReconcileDroppedTask / ReconcileLostTask).
 */
import { heldKey, ledgerEntries, ledgerKey } from '../core/ledger.ts';
import type { AgentTaskRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import { isTerminal } from '../core/task-state.ts';
import type { TaskState } from '../protocol/index.ts';

export interface ReportedTask {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly state?: TaskState;
}

export interface ReregistrationInput {
  readonly agentId: string;
  /** What the agent says it runs. */
  readonly reported: readonly ReportedTask[];
  /** The agent's accounting before (its record's `tasks`). */
  readonly known: Readonly<Record<string, AgentTaskRecord>>;
  /** Task rows of both, by {@link taskKey}. */
  readonly rows: ReadonlyMap<string, TaskRecord>;
  readonly frameworks: ReadonlyMap<string, FrameworkRecord>;
}

export interface ReregistrationPlan {
  /**
   * The agent's accounting afterwards, by `ledgerKey`: entries of a record written before that
   * key (under bare task ids) are written under it.
   */
  readonly tasks: Record<string, AgentTaskRecord>;
  /** Rows to move from TASK_UNREACHABLE to the state the agent reports. */
  readonly revive: { frameworkId: string; taskId: string; state: TaskState }[];
  readonly kill: { frameworkId: string; taskId: string; why: string }[];
  readonly reconcile: {
    frameworkId: string;
    taskId: string;
    ifUnknown: 'TASK_LOST' | 'TASK_DROPPED' | 'TASK_GONE';
  }[];
}

export const taskKey = (frameworkId: string, taskId: string): string => `${frameworkId}\u0000${taskId}`;

/** The state a task comes back in from TASK_UNREACHABLE (which never goes back to STAGING). */
export function revivedState(reported: TaskState | undefined): TaskState {
  return reported === 'TASK_STARTING' || reported === 'TASK_RUNNING' || reported === 'TASK_KILLING'
    ? reported
    : reported === 'TASK_STAGING'
      ? 'TASK_STARTING'
      : 'TASK_RUNNING';
}

/**
 * @example
 * const plan = planReregistration({ agentId, reported: call.tasks, known: agent.tasks, rows, frameworks });
 * // write plan.tasks on the agent, move plan.revive rows, send plan.kill and plan.reconcile
 */
export function planReregistration(input: ReregistrationInput): ReregistrationPlan {
  const { agentId, rows, frameworks } = input;
  const plan: ReregistrationPlan = { tasks: {}, revive: [], kill: [], reconcile: [] };
  const reported = new Set<string>();
  for (const r of input.reported) {
    reported.add(taskKey(r.frameworkId, r.taskId));
    const row = rows.get(taskKey(r.frameworkId, r.taskId));
    const fw = frameworks.get(r.frameworkId);
    const why = !row
      ? 'unknown to Meso'
      : row.agentId !== agentId
        ? `Meso has it on agent ${row.agentId}`
        : isTerminal(row.state)
          ? `already ${row.state}`
          : !fw || fw.status === 'TORN_DOWN'
            ? 'its framework was removed'
            : undefined;
    if (why) {
      plan.kill.push({ frameworkId: r.frameworkId, taskId: r.taskId, why });
      continue;
    }
    // Only a task the ledger still holds is charged. One it lacks has ended: its terminal update
    // released it (releaseTask, before that update's row write) after this REGISTER listed it
    // running. Charging it again would count resources already offered to someone else.
    const held = heldKey(input.known, r.frameworkId, r.taskId);
    if (held !== undefined)
      plan.tasks[ledgerKey(r.frameworkId, r.taskId)] = { ...input.known[held]!, taskId: r.taskId };
    if (row!.killRequested) {
      plan.kill.push({
        frameworkId: r.frameworkId,
        taskId: r.taskId,
        why: 'killed while its agent was away',
      });
    }
    if (row!.state === 'TASK_UNREACHABLE') {
      plan.revive.push({ frameworkId: r.frameworkId, taskId: r.taskId, state: revivedState(r.state) });
    }
  }
  for (const { frameworkId, taskId, entry: t } of ledgerEntries(input.known)) {
    if (reported.has(taskKey(frameworkId, taskId))) continue;
    const row = rows.get(taskKey(frameworkId, taskId));
    // Accounting for a task that has ended (or is not on this agent) is dropped.
    if (!row || row.agentId !== agentId || isTerminal(row.state)) continue;
    plan.tasks[ledgerKey(frameworkId, taskId)] = { ...t, taskId };
    const pa = frameworks.get(t.frameworkId)?.partitionAware ?? false;
    const started = row.state !== 'TASK_STAGING';
    plan.reconcile.push({
      frameworkId: t.frameworkId,
      taskId,
      ifUnknown: !pa ? 'TASK_LOST' : started ? 'TASK_GONE' : 'TASK_DROPPED',
    });
  }
  return plan;
}
