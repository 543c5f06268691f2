/**
 * Bad input gets a clear answer and changes nothing: a rejected call is logged, counted (a
 * metric and a counter in the meta table that `meso status` shows), answered with an ERROR where
 * the sender can be told, and never retried (the record is reported as processed).
 */
import type { AgentCommand, SchedulerEvent } from '../protocol/index.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { sendToAgent, sendToFramework } from './emit.ts';

export type RejectCode =
  | 'MALFORMED_JSON'
  | 'UNKNOWN_TYPE'
  | 'INVALID'
  | 'UNSUPPORTED_VERSION'
  | 'FORBIDDEN'
  | 'UNKNOWN_FRAMEWORK'
  | 'UNKNOWN_AGENT'
  | 'FRAMEWORK_TORN_DOWN'
  | 'UNKNOWN_OFFER'
  | 'UNKNOWN_TASK'
  /** An agent marked gone registers again (lib/control/liveness.ts). */
  | 'AGENT_GONE'
  /** A call from a framework Meso considers disconnected: it must SUBSCRIBE again (lib/control/failover.ts). */
  | 'FRAMEWORK_DISCONNECTED';

export interface Rejection {
  readonly code: RejectCode;
  readonly message: string;
  /** The call's type, if it could be read. */
  readonly call?: string;
  /** Where to send the ERROR, when the sender is known; otherwise it is only logged and counted. */
  readonly replyTo?: { kind: 'framework' | 'agent'; queueUrl: string };
}

/**
 * Whether a queue URL names one of the deployment's framework (`<prefix>-fw-*`) or agent
 * (`<prefix>-agent-*`) queues — the only queues the control plane sends events to.
 */
export function ownQueueProblem(
  prefix: string,
  kind: 'framework' | 'agent',
  queueUrl: string,
): string | undefined {
  let name: string;
  try {
    name = new URL(queueUrl).pathname.split('/').filter(Boolean).at(-1) ?? '';
  } catch {
    return `queueUrl ${JSON.stringify(queueUrl)} is not a URL`;
  }
  const want = `${prefix}-${kind === 'framework' ? 'fw' : 'agent'}-`;
  return name.startsWith(want)
    ? undefined
    : `a ${kind}'s queue must be named ${want}*, got ${JSON.stringify(name)}`;
}

export const rejectedCounterKey = (queue: string, code: RejectCode): string => `rejected#${queue}#${code}`;

export async function reject(
  deps: ControlDeps,
  queue: 'scheduler-calls' | 'agent-calls',
  record: InboundRecord,
  r: Rejection,
): Promise<void> {
  deps.log.warn('call rejected', {
    queue,
    code: r.code,
    reason: r.message,
    call: r.call,
    senderId: record.senderId,
    messageId: record.messageId,
  });
  deps.metrics.count('RejectedCalls', { queue, code: r.code });
  // Counted once per message: a redelivery of the same rejected message re-counts, which is rare
  // (rejections never fail the record) and errs on the side of visibility.
  await deps.store.increment(rejectedCounterKey(queue, r.code));
  if (!r.replyTo || ownQueueProblem(deps.config.prefix, r.replyTo.kind, r.replyTo.queueUrl)) return;
  const dedupId = `error.${record.messageId}`;
  if (r.replyTo.kind === 'framework') {
    const event: SchedulerEvent = { v: 1, type: 'ERROR', code: r.code, message: r.message, call: r.call };
    await sendToFramework(deps, r.replyTo.queueUrl, [{ event, dedupId }]);
  } else {
    const command: AgentCommand = { v: 1, type: 'ERROR', code: r.code, message: r.message };
    await sendToAgent(deps, r.replyTo.queueUrl, [{ command, dedupId }]);
  }
}
