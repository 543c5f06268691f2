/**
 * STATUS_UPDATE: applied once (its uuid is remembered on the task, lib/core/task-change.ts) and
 * forwarded to the framework at least once; when it is terminal, the task leaves its agent's
 * ledger in the same transaction. Updates from an UNREACHABLE agent are applied and forwarded
 * (Mesos drops them and waits for the agent to re-register; the registry has every record, and
 * dropping them would lose them if the agent never comes back).
 */
import type { TaskRecord } from '../../core/model.ts';
import { applyAgentStatus } from '../../core/task-change.ts';
import { isTerminal } from '../../core/task-state.ts';
import type { Item } from '../../ports/store.ts';
import type { AgentCallOf, TaskStatus } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator, sendToAgent, sendToFramework } from '../emit.ts';
import { followUpReordered } from '../order.ts';
import { releaseTask } from '../records/agents.ts';
import { type AgentRoute, frameworkRoute, rememberTaskAgent } from '../records/routes.ts';
import { statusSet, updateTask } from '../records/tasks.ts';
import type { Change } from '../records/transact.ts';
import { type Rejection, reject } from '../reject.ts';

type Outcome =
  | { kind: 'forward' | 'ack-only'; task?: TaskRecord; freed: boolean; again?: boolean }
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
  // Set once the task has left its agent's ledger: a retry after a lost race must not forget it.
  const released = { done: false };
  const outcome = await updateTask(deps.store, status.frameworkId, status.taskId, (task) =>
    applyUpdate(deps, agent, stamped, task, released),
  );
  if ('code' in outcome) return reject(deps, 'agent-calls', record, outcome);
  await deliver(deps, record, agent, stamped, outcome);
}

/** The change the update makes to its task row as read, or why it makes none. */
async function applyUpdate(
  deps: ControlDeps,
  agent: AgentRoute,
  status: TaskStatus & { readonly uuid: string },
  task: TaskRecord | undefined,
  released: { done: boolean },
): Promise<Change<Outcome>> {
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
  const change = applyAgentStatus(task, status, deps.clock.now());
  // Redelivered: re-send only.
  if (change.kind === 'again') return { result: { kind: 'forward', task, freed: false, again: true } };
  if (change.kind === 'out-of-order') {
    deps.log.warn('status update out of order; acknowledged, not applied', {
      taskId: task.taskId,
      from: task.state,
      to: status.state,
    });
    deps.metrics.count('StatusUpdatesIgnored', { from: task.state, to: status.state });
    return { result: { kind: 'ack-only', task, freed: false } };
  }
  // An ended task leaves its agent's ledger first, by a write of its own (lib/control/records/agents.ts).
  if (change.terminal && !released.done)
    released.done = await releaseTask(deps.store, agent.agentId, task.taskId);
  return {
    set: statusSet(change.set, deps.config.taskRetentionSeconds) as unknown as Item,
    result: { kind: 'forward', task, freed: change.terminal },
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
        dedupId: `ack.${uuid}`,
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
  // A redelivered terminal update nudges again: the first attempt may have died before its nudge.
  if (outcome.kind === 'forward' && (outcome.freed || (outcome.again && isTerminal(status.state)))) {
    deps.metrics.count('TasksTerminal', { state: status.state });
    await nudgeAllocator(deps, `task ${status.taskId} ${status.state}`, [agent.shard]);
  }
}
