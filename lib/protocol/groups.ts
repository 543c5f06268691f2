/**
 * The FIFO message groups per-task calls travel in. A framework's ACKNOWLEDGE may use
 * `<frameworkId>:ack:<taskId>` (one acknowledgement) or `<frameworkId>:ack` (several), and an agent's STATUS_UPDATE `<agentId>:<taskId>`, so that
 * different tasks' calls are handled in parallel; with ids of up to 128 characters each these can
 * pass SQS's 128-character limit on a group id, and such a send would be refused. Then the call
 * travels in its sender's own group, which Meso also accepts: the order is kept, only the
 * parallelism is lost.
 */

/** SQS's limit on a `MessageGroupId`. */
export const MAX_GROUP_ID_LENGTH = 128;

/** `<owner><separator><taskId>` when SQS accepts it as a group id, else `owner`. */
export function perTaskGroup(owner: string, separator: string, taskId: string): string {
  const group = `${owner}${separator}${taskId}`;
  return group.length <= MAX_GROUP_ID_LENGTH ? group : owner;
}

/**
 * The group of a framework's ACKNOWLEDGE carrying several acknowledgements (`acks`):
 * `<frameworkId>:ack`, apart from its other calls (the framework's own id when that would be too
 * long). Acknowledgements change nothing in Meso, so they need no order with its other calls.
 */
export const acknowledgementsGroup = (frameworkId: string): string => {
  const group = `${frameworkId}:ack`;
  return group.length <= MAX_GROUP_ID_LENGTH ? group : frameworkId;
};

/** The group of a framework's ACKNOWLEDGE of `taskId`. */
export const acknowledgeGroup = (frameworkId: string, taskId: string): string =>
  perTaskGroup(frameworkId, ':ack:', taskId);

/** The group of an agent's STATUS_UPDATE for `taskId`. */
export const statusUpdateGroup = (agentId: string, taskId: string): string =>
  perTaskGroup(agentId, ':', taskId);
