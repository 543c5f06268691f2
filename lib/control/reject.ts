/**
 * Bad input gets a clear answer and changes nothing: a rejected call is logged, counted (a
 * metric and a counter in the meta table that `meso status` shows), answered with an ERROR where
 * the sender can be told, and never retried (the record is reported as processed).
 */
import { dlqName, QUEUES, queueName } from '../definition/tables-queues.ts';
import type { AgentCommand, SchedulerEvent } from '../protocol/index.ts';
import { type QueueHome, type QueueOwner, queueHomeOf, queueUrlProblem } from '../protocol/queues.ts';
import type { ControlConfig, ControlDeps, InboundRecord } from './deps.ts';
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
  | 'FRAMEWORK_DISCONNECTED'
  /** A call in a FIFO group that is not its framework's or agent's (lib/control/groups.ts). */
  | 'WRONG_GROUP'
  /** A SUBSCRIBE or REGISTER of a new id by an identity that has created its most (lib/control/id-quota.ts). */
  | 'TOO_MANY_IDS';

export interface Rejection {
  readonly code: RejectCode;
  readonly message: string;
  /** The call's type, if it could be read. */
  readonly call?: string;
  /** Where to send the ERROR, when the sender is known; otherwise it is only logged and counted. */
  readonly replyTo?: { kind: 'framework' | 'agent'; queueUrl: string };
}

const homes = new WeakMap<object, QueueHome>();

/** The control plane's own queue names, calls, allocator, timers and their DLQs: never a sender's. */
const controlQueueNames = (prefix: string): string[] =>
  Object.values(QUEUES).flatMap((q) => [queueName(prefix, q), dlqName(prefix, q)]);

/**
 * Where the deployment's queues live, read off the control plane's own agent-calls queue URL:
 * its origin and account, the prefix, and the control plane's queue names.
 */
export function queueHome(config: Pick<ControlConfig, 'prefix' | 'queues'>): QueueHome {
  const known = homes.get(config);
  if (known) return known;
  const home = queueHomeOf(config.queues.agentCalls, config.prefix, controlQueueNames(config.prefix));
  homes.set(config, home);
  return home;
}

/**
 * Why a queue URL is not exactly the queue of a framework or agent of this deployment — the one
 * `id` owns when it is given (see `queueUrlProblem` in lib/protocol/queues.ts); undefined when it
 * is. The only queues the control plane sends events to.
 */
export function ownQueueUrlProblem(
  config: Pick<ControlConfig, 'prefix' | 'queues'>,
  kind: QueueOwner,
  queueUrl: string,
  id?: string,
): string | undefined {
  let home: QueueHome;
  try {
    home = queueHome(config);
  } catch (e) {
    // The deployment's own queue URL is not one (a misconfiguration): send nowhere rather than throw.
    return `the control plane's queue URL is not usable: ${(e as Error).message}`;
  }
  return queueUrlProblem(home, kind, queueUrl, id);
}

/**
 * The shape of a framework's or agent's queue URL without a deployment to compare it with: a
 * plain http(s) queue URL (https for AWS) named `<prefix>-fw-<id>.fifo` / `<prefix>-agent-<id>.fifo`
 * — no userinfo, query, fragment, empty id, or control-plane queue. REGISTER and SUBSCRIBE make
 * the whole check, {@link ownQueueUrlProblem} with the id.
 */
export function ownQueueProblem(prefix: string, kind: QueueOwner, queueUrl: string): string | undefined {
  let home: QueueHome;
  try {
    const u = new URL(queueUrl);
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      return `queueUrl ${JSON.stringify(u.protocol)} is not an SQS scheme (http or https)`;
    const account = u.pathname.split('/')[1] ?? '';
    home = queueHomeOf(`${u.origin}/${account}/q`, prefix, controlQueueNames(prefix));
  } catch (e) {
    return `queueUrl is not a queue URL: ${(e as Error).message.slice(0, 200)}`;
  }
  return queueUrlProblem(home, kind, queueUrl);
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
  // Only to a queue that is exactly a framework's or agent's of this deployment: never another
  // host, nor the control plane's own queues (an ERROR there is another call, a loop).
  if (!r.replyTo || ownQueueUrlProblem(deps.config, r.replyTo.kind, r.replyTo.queueUrl)) return;
  const dedupId = `error.${record.messageId}`;
  if (r.replyTo.kind === 'framework') {
    const event: SchedulerEvent = { v: 1, type: 'ERROR', code: r.code, message: r.message, call: r.call };
    await sendToFramework(deps, r.replyTo.queueUrl, [{ event, dedupId }]);
  } else {
    const command: AgentCommand = { v: 1, type: 'ERROR', code: r.code, message: r.message };
    await sendToAgent(deps, r.replyTo.queueUrl, [{ command, dedupId }]);
  }
}
