import type { AgentRecord, FrameworkRecord, TaskRecord } from '../../core/model.ts';
import { updateStateOf } from '../../core/task-change.ts';
import { isTerminal } from '../../core/task-state.ts';
import type { Item } from '../../ports/store.ts';
import type { CallOf, SchedulerEvent, TaskStatus } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { sendToFramework } from '../emit.ts';
import { followUpReordered } from '../order.ts';
import { getAgent } from '../records/agents.ts';
import { getTask } from '../records/tasks.ts';
import { reconciledStatus, type SentUpdate, unknownTaskStatus } from '../statuses.ts';

/**
 * RECONCILE, as Mesos answers it: with the state of the last update the framework was sent (Mesos's
 * `status_update_state`), not a latest state still ahead of it. Implicit (no tasks named): every
 * task of the framework whose updates have not ended, except those on unreachable agents (Mesos keeps them apart). Explicit:
 * for each task named, its latest state if Meso knows it (including a terminal one — Mesos forgets
 * tasks once their terminal update is acknowledged and would answer as for an unknown task; the
 * registry keeps them, so the answer is exact), else the unknown-task answer by what is known of the
 * agent named (lib/control/statuses.ts). Answers carry REASON_RECONCILIATION and no uuid.
 */
export async function reconcile(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'RECONCILE'>,
): Promise<void> {
  const now = deps.clock.now();
  let statuses: TaskStatus[];
  // The rows answered from: a newer change may overtake an answer (lib/control/order.ts).
  const answered: SentUpdate[] = [];
  const from = (t: TaskRecord) => {
    answered.push({
      queueUrl: fw.queueUrl,
      frameworkId: t.frameworkId,
      taskId: t.taskId,
      version: t.version,
    });
    return reconciledStatus(now, t);
  };
  if (call.tasks.length === 0) {
    const all = await deps.store.query<TaskRecord & Item>('tasks', {
      name: 'frameworkId',
      value: fw.frameworkId,
    });
    // By the state the framework was sent: a task whose latest state is terminal while its
    // updates still wait for acknowledgements is answered, as Mesos answers for it.
    statuses = all
      .filter((t) => !isTerminal(updateStateOf(t)) && updateStateOf(t) !== 'TASK_UNREACHABLE')
      .map(from);
  } else {
    const agents = new Map<string, Promise<AgentRecord | undefined>>();
    const agent = (id: string) => {
      if (!agents.has(id)) agents.set(id, getAgent(deps.store, id));
      return agents.get(id)!;
    };
    statuses = await Promise.all(
      call.tasks.map(async ({ taskId, agentId }) => {
        const t = await getTask(deps.store, fw.frameworkId, taskId);
        if (t) return from(t);
        return unknownTaskStatus(now, fw, taskId, agentId, agentId ? await agent(agentId) : undefined);
      }),
    );
  }
  await sendToFramework(
    deps,
    fw.queueUrl,
    statuses.map((status) => ({
      event: { v: 1, type: 'UPDATE', status } satisfies SchedulerEvent,
      dedupId: `reconcile.${record.messageId}.${status.taskId}`,
    })),
  );
  await followUpReordered(deps, answered);
  deps.metrics.count(
    'TasksReconciled',
    { kind: call.tasks.length === 0 ? 'implicit' : 'explicit' },
    statuses.length,
  );
}
