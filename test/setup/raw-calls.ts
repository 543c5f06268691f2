/**
 * Calls sent as raw JSON straight to a calls queue, as a hand-written client or an attacker
 * would: past the SDK's and the agent's own checks, so a test can send what they never would
 * (a REGISTER of an id its identity may not hold, a RESERVE the ACLs refuse, malformed JSON).
 *
 * @example
 * ```ts
 * await sendRawCall(h.sqs, h.cluster.queues.agentCalls, registerCall(h.controlPlane.deps.config, 'rogue'));
 * await sendRawCall(h.as('intruder'), h.cluster.queues.schedulerCalls, { type: 'KILL', frameworkId, taskId });
 * ```
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ControlConfig } from '../../lib/control/deps.ts';
import { queueHome } from '../../lib/control/reject.ts';
import { ownQueueUrl } from '../../lib/protocol/queues.ts';

export type RawCall = Record<string, unknown>;

export interface RawCallOptions {
  /** The FIFO group; default the id the call names, as the SDK and the agent send it ({@link ownGroup}). */
  readonly group?: string;
  /** The deduplication id; default a fresh one, so every send is a new message. */
  readonly dedupId?: string;
}

/** The group the SDK or the agent would send `call` in: the id it names. */
export function ownGroup(call: RawCall): string {
  const framework = call.framework as { frameworkId?: unknown } | undefined;
  return String(call.frameworkId ?? framework?.frameworkId ?? call.agentId);
}

/**
 * Sends `call` to `queueUrl` as one message signed by `sqs`'s identity: an object as JSON (with
 * `v: 1` unless it names a version), a string as it is (malformed input).
 */
export async function sendRawCall(
  sqs: SQSClient,
  queueUrl: string,
  call: RawCall | string,
  o: RawCallOptions = {},
): Promise<void> {
  const body = typeof call === 'string' ? call : JSON.stringify({ v: 1, ...call });
  const group = o.group ?? (typeof call === 'string' ? undefined : ownGroup(call));
  if (group === undefined) throw new Error('sendRawCall: a string body needs a group');
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: body,
      MessageGroupId: group,
      MessageDeduplicationId: o.dedupId ?? randomUUID(),
    }),
  );
}

/**
 * A REGISTER of `agentId` naming that agent's own queue in the deployment (`config`: the control
 * plane's), with one cpu and 64 MB; `over` replaces or adds fields.
 */
export function registerCall(
  config: Pick<ControlConfig, 'prefix' | 'queues'>,
  agentId: string,
  over: RawCall = {},
): RawCall {
  return {
    type: 'REGISTER',
    agentId,
    hostname: agentId,
    resources: { cpus: 1, mem: 64 },
    queueUrl: ownQueueUrl(queueHome(config), 'agent', agentId),
    ...over,
  };
}
