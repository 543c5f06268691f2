/**
 * KILL. A task Meso does not know (or that has ended) is answered as reconciliation answers it
 * (Mesos: "performing reconciliation"). A task on an UNREACHABLE agent is marked so that the agent
 * kills it when it comes back (Mesos's `killedTasks`); the KILL also waits in the agent's queue.
 */
import type { FrameworkRecord } from '../../core/model.ts';
import { isTerminal } from '../../core/task-state.ts';
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { sendToAgent, sendToFramework } from '../emit.ts';
import { getAgent } from '../records/agents.ts';
import { getTask, updateTask } from '../records/tasks.ts';
import { reject } from '../reject.ts';
import { reconciledStatus, unknownTaskStatus } from '../statuses.ts';

export async function kill(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'KILL'>,
): Promise<void> {
  const now = deps.clock.now();
  const task = await getTask(deps.store, fw.frameworkId, call.taskId);
  if (!task || isTerminal(task.state)) {
    const agentId = task?.agentId ?? call.agentId;
    const status = task
      ? reconciledStatus(now, task)
      : unknownTaskStatus(
          now,
          fw,
          call.taskId,
          agentId,
          agentId ? await getAgent(deps.store, agentId) : undefined,
        );
    return sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'UPDATE', status }, dedupId: `kill.${record.messageId}` },
    ]);
  }
  if (call.agentId && call.agentId !== task.agentId) {
    return reject(deps, 'scheduler-calls', record, {
      code: 'UNKNOWN_TASK',
      message: `task ${call.taskId} runs on agent ${task.agentId}, not ${call.agentId}`,
      call: 'KILL',
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    });
  }
  const agent = await getAgent(deps.store, task.agentId);
  if (!agent || agent.status === 'GONE') return;
  if (agent.status === 'UNREACHABLE' && !task.killRequested) {
    await updateTask(deps.store, fw.frameworkId, call.taskId, (t) =>
      !t || isTerminal(t.state) || t.killRequested
        ? { result: undefined }
        : { set: { killRequested: true }, result: undefined },
    );
  }
  await sendToAgent(deps, agent.queueUrl, [
    {
      command: {
        v: 1,
        type: 'KILL',
        frameworkId: fw.frameworkId,
        taskId: task.taskId,
        ...(task.info.killGracePeriodSeconds !== undefined
          ? { gracePeriodSeconds: task.info.killGracePeriodSeconds }
          : {}),
      },
      dedupId: `kill.${record.messageId}`,
    },
  ]);
}
