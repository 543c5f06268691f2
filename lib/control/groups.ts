/**
 * The FIFO message groups a framework's or agent's calls travel in. SQS lets a sender pick any
 * group; a call sent in another sender's group would queue behind (and, if it failed, block) that
 * sender's calls. So a call is accepted only in a group of the id it names, the groups the SDK and
 * the agent use: a framework's calls in `<frameworkId>` (an ACKNOWLEDGE may use
 * `<frameworkId>:ack:<taskId>`, or `<frameworkId>:ack` when it carries several, a READ_LOGS `<frameworkId>:logs:<taskId>`), an agent's in
 * `<agentId>` (a STATUS_UPDATE or LATEST_STATE in `<agentId>:<taskId>`). Anything else is
 * rejected at once: never retried, never dead-lettered.
 */
import { acknowledgeGroup, acknowledgementsGroup, statusUpdateGroup } from '../protocol/groups.ts';
import type { AgentCall, SchedulerCall } from '../protocol/index.ts';
import { readLogsGroup } from '../protocol/logs.ts';
import type { InboundRecord } from './deps.ts';

/** The groups a framework's call may travel in. */
export function schedulerCallGroups(call: SchedulerCall): { owner: string; groups: string[] } {
  const owner = call.type === 'SUBSCRIBE' ? call.framework.frameworkId : call.frameworkId;
  const groups = [owner];
  if (call.type === 'ACKNOWLEDGE') {
    groups.push(
      call.taskId !== undefined ? acknowledgeGroup(owner, call.taskId) : acknowledgementsGroup(owner),
    );
  }
  if (call.type === 'READ_LOGS') groups.push(readLogsGroup(owner, call.taskId));
  return { owner, groups };
}

/** The groups an agent's call may travel in. */
export function agentCallGroups(call: AgentCall): { owner: string; groups: string[] } {
  const groups = [call.agentId];
  if (call.type === 'STATUS_UPDATE') groups.push(statusUpdateGroup(call.agentId, call.status.taskId));
  if (call.type === 'LATEST_STATE') groups.push(statusUpdateGroup(call.agentId, call.taskId));
  return { owner: call.agentId, groups };
}

/**
 * Why `record` is not in one of `groups` of the `kind` with id `owner`; undefined when it is, or
 * when it has no group (a standard queue, or a test calling the handler directly).
 */
export function groupProblem(
  kind: 'framework' | 'agent',
  record: Pick<InboundRecord, 'groupId'>,
  { owner, groups }: { owner: string; groups: string[] },
): string | undefined {
  if (record.groupId === undefined || groups.includes(record.groupId)) return undefined;
  const shown = JSON.stringify(
    record.groupId.length > 200 ? `${record.groupId.slice(0, 197)}...` : record.groupId,
  );
  return `message group ${shown} is not ${kind} ${owner}'s: its calls travel in group ${JSON.stringify(owner)}`;
}
