/**
 * LATEST_STATE: a task's state changed on its agent while an earlier update of it waits for the
 * framework's acknowledgement (Mesos's `latest_state`, sent at once rather than with the next
 * resend). The row records it (lib/core/task-change.ts) and, when it is terminal, the task leaves
 * its agent's ledger (a write of its own, before the row's) and the allocator is nudged; nothing is forwarded to
 * the framework, whose updates still come one at a time, in order. Only the task's own agent may
 * move it, and only along the state machine: anything else is refused with an ERROR.
 */
import type { TaskRecord } from '../../core/model.ts';
import { applyAgentReport } from '../../core/task-change.ts';
import { isTerminal } from '../../core/task-state.ts';
import type { Item } from '../../ports/store.ts';
import type { AgentCallOf, TaskState } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator } from '../emit.ts';
import { releaseTask } from '../records/agents.ts';
import type { AgentRoute } from '../records/routes.ts';
import { statusSet, updateTask } from '../records/tasks.ts';
import type { Change } from '../records/transact.ts';
import { type Rejection, reject } from '../reject.ts';
import { latestRefused, latestStatus } from './status-update.ts';

type Outcome = { freed: boolean; state: TaskState; endedBefore: boolean } | Rejection;

export async function latestState(
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRoute,
  call: AgentCallOf<'LATEST_STATE'>,
): Promise<void> {
  const latest = latestStatus(call.latest, { ...call, agentId: agent.agentId });
  const refuse = (code: Rejection['code'], message: string): Change<Outcome> => ({
    result: { code, message, call: 'LATEST_STATE', replyTo: { kind: 'agent', queueUrl: agent.queueUrl } },
  });
  // Set once the task has left its agent's ledger: a retry after a lost race must not forget it.
  const released = { done: false };
  const outcome = await updateTask(
    deps.store,
    call.frameworkId,
    call.taskId,
    async (task: TaskRecord | undefined): Promise<Change<Outcome>> => {
      if (!task) return refuse('UNKNOWN_TASK', `no task ${call.taskId} of framework ${call.frameworkId}`);
      if (task.agentId !== agent.agentId)
        return refuse('FORBIDDEN', `task ${call.taskId} does not run on agent ${agent.agentId}`);
      const change = applyAgentReport(task, { latest }, deps.clock.now());
      if (change.latest === 'refused')
        return refuse('INVALID', latestRefused(deps, task, latest, agent.agentId));
      // The task leaves its agent's ledger first, by a write of its own (as a STATUS_UPDATE's does).
      if (change.ended && !released.done)
        released.done = await releaseTask(deps.store, agent.agentId, task.frameworkId, task.taskId);
      return {
        ...(change.set
          ? { set: statusSet(change.set, deps.config.taskRetentionSeconds) as unknown as Item }
          : {}),
        result: {
          freed: released.done,
          state: change.set?.state ?? task.state,
          endedBefore: change.latest === 'same' && isTerminal(task.state),
        },
      };
    },
  );
  if ('code' in outcome) return reject(deps, 'agent-calls', record, outcome);
  deps.metrics.count('LatestStatesRecorded', { state: outcome.state });
  // A redelivery nudges again: the first attempt may have died before its nudge.
  if (outcome.freed || outcome.endedBefore) {
    if (outcome.freed) deps.metrics.count('TasksTerminal', { state: outcome.state });
    await nudgeAllocator(deps, `task ${call.taskId} ${outcome.state}`, [agent.shard]);
  }
}
