/**
 * STATUS_UPDATE: applied once (its uuid is remembered on the task, lib/core/task-change.ts) and
 * forwarded to the framework at least once. The task's latest state the update carries (`latest`)
 * is recorded on the row at once, ahead of the update stream when an earlier update still waits
 * for its acknowledgement; when the row's state becomes terminal, the task leaves its agent's
 * ledger by a write of its own, before the row's. Updates from an UNREACHABLE agent are applied and forwarded
 * (Mesos drops them and waits for the agent to re-register; the registry has every record, and
 * dropping them would lose them if the agent never comes back).
 */
import type { TaskRecord } from '../../core/model.ts';
import { type AgentReport, applyAgentReport } from '../../core/task-change.ts';
import { isTerminal } from '../../core/task-state.ts';
import type { Item } from '../../ports/store.ts';
import type { AgentCallOf, LatestStatus, TaskState, TaskStatus } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator, sendToAgent, sendToFramework } from '../emit.ts';
import { followUpReordered } from '../order.ts';
import { releaseTask } from '../records/agents.ts';
import { type AgentRoute, frameworkRoute, rememberTaskAgent } from '../records/routes.ts';
import { statusSet, updateTask } from '../records/tasks.ts';
import type { Change } from '../records/transact.ts';
import { type Rejection, reject } from '../reject.ts';

type Outcome =
  | {
      kind: 'forward' | 'ack-only';
      task?: TaskRecord;
      freed: boolean;
      /** The row's state after the change (the latest state). */
      state?: TaskState;
      again?: boolean;
      /** The row already had the terminal latest state reported (a redelivery may need its nudge). */
      endedBefore?: boolean;
    }
  | Rejection;

export async function statusUpdate(
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRoute,
  call: AgentCallOf<'STATUS_UPDATE'>,
): Promise<void> {
  const status = { ...call.status, agentId: agent.agentId };
  const uuid = status.uuid;
  if (!uuid) {
    return reject(deps, 'agent-calls', record, {
      code: 'INVALID',
      message: 'a STATUS_UPDATE from an agent carries a uuid',
      call: 'STATUS_UPDATE',
      replyTo: { kind: 'agent', queueUrl: agent.queueUrl },
    });
  }
  const stamped = { ...status, uuid };
  const latest = call.latest ? latestStatus(call.latest, stamped) : undefined;
  // Set once the task has left its agent's ledger: a retry after a lost race must not forget it.
  const released = { done: false };
  const outcome = await updateTask(deps.store, status.frameworkId, status.taskId, (task) =>
    applyUpdate(deps, agent, { update: stamped, ...(latest ? { latest } : {}) }, task, released),
  );
  if ('code' in outcome) return reject(deps, 'agent-calls', record, outcome);
  await deliver(deps, record, agent, stamped, outcome);
}

/** A latest state as the row records it: the task's ids and its agent's filled in. */
export const latestStatus = (
  latest: LatestStatus,
  of: Pick<TaskStatus, 'taskId' | 'frameworkId' | 'agentId'>,
): TaskStatus => ({
  taskId: of.taskId,
  frameworkId: of.frameworkId,
  ...(of.agentId ? { agentId: of.agentId } : {}),
  ...latest,
});

/** A latest state the row's state machine does not allow: logged and counted, not applied. */
export function latestRefused(
  deps: ControlDeps,
  task: TaskRecord,
  latest: TaskStatus,
  agentId: string,
): string {
  const why = isTerminal(task.state)
    ? `task ${task.taskId} is already ${task.state}; it cannot become ${latest.state}`
    : `task ${task.taskId} cannot go from ${task.state} to ${latest.state}`;
  deps.log.warn('latest state refused', { taskId: task.taskId, agentId, from: task.state, to: latest.state });
  deps.metrics.count('LatestStatesRefused', { from: task.state, to: latest.state });
  return why;
}

/** The change the update makes to its task row as read, or why it makes none. */
async function applyUpdate(
  deps: ControlDeps,
  agent: AgentRoute,
  report: AgentReport & { readonly update: TaskStatus & { readonly uuid: string } },
  task: TaskRecord | undefined,
  released: { done: boolean },
): Promise<Change<Outcome>> {
  const status = report.update;
  if (!task) {
    // Not a task Meso launched on this agent: acknowledge it so the agent stops resending, but
    // forward nothing — an agent must not be able to speak to frameworks about other tasks.
    deps.log.warn('status update for an unknown task; acknowledged, not forwarded', {
      taskId: status.taskId,
      agentId: agent.agentId,
    });
    deps.metrics.count('StatusUpdatesIgnored', { from: 'unknown', to: status.state });
    return { result: { kind: 'ack-only', freed: false } };
  }
  if (task.agentId !== agent.agentId) {
    return {
      result: {
        code: 'FORBIDDEN',
        message: `task ${status.taskId} does not run on agent ${agent.agentId}`,
        call: 'STATUS_UPDATE',
        replyTo: { kind: 'agent', queueUrl: agent.queueUrl },
      },
    };
  }
  const change = applyAgentReport(task, report, deps.clock.now());
  // The update itself is still forwarded: only its latest state is left.
  if (change.latest === 'refused') latestRefused(deps, task, report.latest!, agent.agentId);
  if (change.update === 'out-of-order') {
    deps.log.warn('status update out of order; acknowledged, not applied', {
      taskId: task.taskId,
      from: task.updateState ?? task.state,
      to: status.state,
    });
    deps.metrics.count('StatusUpdatesIgnored', { from: task.updateState ?? task.state, to: status.state });
  }
  // A task that ends (by its latest state) leaves its agent's ledger first, by a write of its own
  // (lib/control/records/agents.ts): no read of the agent, no transaction.
  if (change.ended && !released.done)
    released.done = await releaseTask(deps.store, agent.agentId, task.frameworkId, task.taskId);
  return {
    ...(change.set
      ? { set: statusSet(change.set, deps.config.taskRetentionSeconds) as unknown as Item }
      : {}),
    result: {
      kind: change.update === 'out-of-order' ? 'ack-only' : 'forward',
      task,
      freed: released.done,
      state: change.set?.state ?? task.state,
      again: change.update === 'again',
      // A redelivery or resend of an update whose latest state ended the task before.
      endedBefore: change.latest === 'same' && isTerminal(task.state) && change.update === 'again',
    },
  };
}

/**
 * After the write: forwarded to a connected framework, acknowledged on the framework's behalf
 * when nobody else will, held for a disconnected one; a task that ended nudges the allocator.
 */
async function deliver(
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRoute,
  status: TaskStatus & { readonly uuid: string },
  outcome: Exclude<Outcome, Rejection>,
): Promise<void> {
  const { uuid } = status;
  const fw = await frameworkRoute(deps.store, status.frameworkId, deps.clock.now());
  if (outcome.task) rememberTaskAgent(status.frameworkId, status.taskId, agent.agentId, deps.clock.now());
  const ack = () =>
    sendToAgent(deps, agent.queueUrl, [
      {
        command: { v: 1, type: 'ACKNOWLEDGE', frameworkId: status.frameworkId, taskId: status.taskId, uuid },
        dedupId: `ack.${uuid}.${record.messageId}`, // the call's: a resend is answered again
      },
    ]);
  if (outcome.kind === 'ack-only' || !fw || fw.status === 'TORN_DOWN') {
    // Nobody will acknowledge it: do so on the framework's behalf so the agent stops resending.
    await ack();
  } else if (fw.status === 'DISCONNECTED') {
    // Applied, not forwarded and not acknowledged (Mesos drops updates for a disconnected
    // framework): the agent keeps retrying it, and a re-subscription gets the latest state.
    deps.metrics.count('UpdatesHeldForDisconnected');
  } else {
    // The dedup id names the inbound message: a redelivery of it is dropped by SQS, while an
    // agent's resend (a new message) reaches the framework again, as at-least-once requires.
    await sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'UPDATE', status }, dedupId: `update.${uuid}.${record.messageId}` },
    ]);
    // A non-terminal state can be overtaken by a status Meso makes (UNREACHABLE) whose send
    // raced this one: if the row moved on, its current status follows (lib/control/order.ts).
    if (outcome.task && !outcome.again && !isTerminal(status.state)) {
      await followUpReordered(deps, [
        {
          queueUrl: fw.queueUrl,
          frameworkId: status.frameworkId,
          taskId: status.taskId,
          version: outcome.task.version + 1,
        },
      ]);
    }
  }
  // Launch latency: ACCEPT's task record to the agent's first TASK_RUNNING.
  if (outcome.kind === 'forward' && !outcome.again && status.state === 'TASK_RUNNING' && outcome.task)
    if (outcome.task.state !== 'TASK_RUNNING')
      deps.metrics.measure?.('LaunchLatency', status.timestamp - outcome.task.createdAt, 'Milliseconds');
  // A redelivered terminal update (or terminal latest state) nudges again: the first attempt may
  // have died before its nudge.
  if (
    outcome.freed ||
    (outcome.kind === 'forward' && ((outcome.again && isTerminal(status.state)) || outcome.endedBefore))
  ) {
    const ended = outcome.state && isTerminal(outcome.state) ? outcome.state : status.state;
    if (outcome.freed) deps.metrics.count('TasksTerminal', { state: ended });
    await nudgeAllocator(deps, `task ${status.taskId} ${ended}`, [agent.shard]);
  }
}
