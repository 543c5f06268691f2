/**
 * The registry's half of reading a task's output through the queues (lib/protocol/logs.ts):
 * READ_LOGS from a reader on `scheduler-calls` is authorized and forwarded to the task's agent;
 * LOGS from that agent on `agent-calls` is checked again and sent on to the reader's own queue.
 *
 * Who may read: the framework's own principal, and principals an `access_sandboxes` ACL rule
 * names for the framework's principal. The ACLs' permissive default does not open another
 * principal's output (it may hold secrets). The reader's queue is derived from the SenderId of
 * its READ_LOGS and, on the way back, from the requester the agent echoes — which is authorized
 * again, and the task must be that agent's, so an agent can send nothing anywhere it could not
 * already be read.
 */
import { authorize, OPEN_ACLS } from '../core/acl.ts';
import type { FrameworkRecord } from '../core/model.ts';
import { QueueGoneError } from '../ports/bus.ts';
import {
  LOGS_LIMITS,
  type LogsCall,
  type LogsReply,
  logsQueueName,
  type ReadLogsCall,
} from '../protocol/logs.ts';
import { loadAcls } from './acl-store.ts';
import type { ControlConfig, ControlDeps, InboundRecord } from './deps.ts';
import { sendToAgent } from './emit.ts';
import { getAgent } from './records/agents.ts';
import { getFramework } from './records/frameworks.ts';
import type { AgentRoute } from './records/routes.ts';
import { getTask } from './records/tasks.ts';
import { queueHome, type RejectCode, reject } from './reject.ts';

/** The queue `principal` receives chunks on: `<origin>/<account>/<prefix>-logs-<hash>.fifo`. */
export function logsQueueUrl(config: Pick<ControlConfig, 'prefix' | 'queues'>, principal: string): string {
  const home = queueHome(config);
  return `${home.origin}/${home.account}/${logsQueueName(config.prefix, principal)}`;
}

/** Why `principal` may not read the output of `fw`'s tasks; undefined when it may. */
export async function logsRefusal(
  deps: Pick<ControlDeps, 'store' | 'config'>,
  principal: string,
  fw: Pick<FrameworkRecord, 'frameworkId' | 'principal'>,
): Promise<string | undefined> {
  if (principal === fw.principal) return undefined;
  const { acls } = await loadAcls(deps.store, deps.config.acls ?? OPEN_ACLS);
  const d = authorize(acls, { action: 'access_sandboxes', principal, object: fw.principal });
  if (d.allowed && d.rule !== 'default') return undefined;
  // Not the stored rule itself: it would name the owner's principal to whoever asked.
  return (
    `principal ${JSON.stringify(principal)} may not read the output of framework ${fw.frameworkId}: ` +
    (d.allowed
      ? 'it is not the framework principal, and no access_sandboxes ACL rule allows it'
      : `refused by ACL rule ${d.rule}`)
  );
}

/** Sends to a reader's queue; a queue that is not there (the reader went away) is counted, not retried. */
async function sendReply(deps: ControlDeps, principal: string, reply: LogsReply, dedupId: string) {
  const queueUrl = logsQueueUrl(deps.config, principal);
  try {
    await deps.bus.send(queueUrl, [{ body: JSON.stringify(reply), groupId: reply.requestId, dedupId }]);
    deps.metrics.count('LogChunksSent');
  } catch (e) {
    if (!(e instanceof QueueGoneError)) throw e;
    deps.log.info("a reader's logs queue is gone; chunk dropped", { queueUrl, taskId: reply.taskId });
    deps.metrics.count('EventsToGoneQueue', { kind: 'logs' });
  }
}

/**
 * READ_LOGS: refused (and counted) for an unknown framework or task and for a reader the ACLs do
 * not allow, with nothing forwarded; answered at once when the task's agent is unreachable or
 * gone; otherwise forwarded to the agent with the length cut to a chunk.
 */
export async function readLogs(deps: ControlDeps, record: InboundRecord, call: ReadLogsCall): Promise<void> {
  const base = {
    v: 1,
    type: 'LOGS',
    requestId: call.requestId,
    frameworkId: call.frameworkId,
    taskId: call.taskId,
    stream: call.stream,
  } as const;
  const answer = (code: string, message: string) =>
    sendReply(
      deps,
      record.senderId,
      { ...base, error: { code, message: message.slice(0, LOGS_LIMITS.messageChars) } },
      `logs-error.${record.messageId}`,
    );
  const refuse = async (code: RejectCode, message: string) => {
    await reject(deps, 'scheduler-calls', record, { code, message, call: 'READ_LOGS' });
    if (record.senderId.length <= LOGS_LIMITS.principalChars) await answer(code, message);
  };
  if (record.senderId.length > LOGS_LIMITS.principalChars)
    return refuse('FORBIDDEN', 'the sender id is too long to be a principal');
  const fw = await getFramework(deps.store, call.frameworkId);
  if (!fw) return refuse('UNKNOWN_FRAMEWORK', `framework ${call.frameworkId} is not subscribed`);
  const refusal = await logsRefusal(deps, record.senderId, fw);
  if (refusal) return refuse('FORBIDDEN', refusal);
  const task = await getTask(deps.store, call.frameworkId, call.taskId);
  if (!task)
    return refuse('UNKNOWN_TASK', `framework ${call.frameworkId} has no task ${call.taskId} recorded`);
  const agent = await getAgent(deps.store, task.agentId);
  if (agent?.status !== 'ACTIVE') {
    const code = agent?.status === 'UNREACHABLE' ? 'AGENT_UNREACHABLE' : 'AGENT_GONE';
    deps.metrics.count('LogsUnavailable', { code });
    return answer(
      code,
      `the agent of task ${call.taskId} (${task.agentId}) is ${agent ? agent.status.toLowerCase() : 'not registered'}: ` +
        'its output cannot be read now; the last lines its terminal update carried are in `meso task`',
    );
  }
  const asked = call.maxBytes ?? LOGS_LIMITS.chunkBytes;
  if (asked > LOGS_LIMITS.chunkBytes) deps.metrics.count('LogsRequestsCapped');
  await sendToAgent(deps, agent.queueUrl, [
    {
      command: {
        v: 1,
        type: 'READ_LOGS',
        frameworkId: call.frameworkId,
        taskId: call.taskId,
        requestId: call.requestId,
        requester: record.senderId,
        stream: call.stream,
        offset: call.offset,
        maxBytes: Math.min(asked, LOGS_LIMITS.chunkBytes),
        ...(call.fromEnd ? { fromEnd: true } : {}),
      },
      dedupId: `logs.${record.messageId}`,
    },
  ]);
  deps.metrics.count('LogsRequestsForwarded');
}

/**
 * LOGS from an agent: only for a task on that agent, only to a requester still allowed to read
 * the task's framework; then to the requester's own queue with the task's recorded state.
 */
export async function logsFromAgent(
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRoute,
  call: LogsCall,
): Promise<void> {
  const task = await getTask(deps.store, call.frameworkId, call.taskId);
  if (!task || task.agentId !== agent.agentId)
    return reject(deps, 'agent-calls', record, {
      code: 'UNKNOWN_TASK',
      message: `task ${call.taskId} of framework ${call.frameworkId} is not on agent ${agent.agentId}`,
      call: 'LOGS',
    });
  const fw = await getFramework(deps.store, call.frameworkId);
  const refusal = fw
    ? await logsRefusal(deps, call.requester, fw)
    : `framework ${call.frameworkId} is not subscribed`;
  if (refusal)
    return reject(deps, 'agent-calls', record, { code: 'FORBIDDEN', message: refusal, call: 'LOGS' });
  await sendReply(
    deps,
    call.requester,
    {
      v: 1,
      type: 'LOGS',
      requestId: call.requestId,
      frameworkId: call.frameworkId,
      taskId: call.taskId,
      stream: call.stream,
      offset: call.offset,
      data: call.data,
      size: call.size,
      ended: call.ended,
      state: task.state,
      agentId: agent.agentId,
      ...(call.error ? { error: call.error } : {}),
    },
    `logs-reply.${record.messageId}`,
  );
}
