/**
 * Pure builders of scheduler calls, and the name of a framework's event queue. Every call is
 * validated against the protocol before it is sent, so a mistake is reported to the caller at
 * once instead of coming back later as an ERROR event.
 */

import { PROTOCOL_VERSION, type TaskStatus } from '../protocol/common.ts';
import { schemaProblems } from '../protocol/parse.ts';
import { frameworkQueueName as protocolFrameworkQueueName } from '../protocol/queues.ts';
import {
  type CallOf,
  type SchedulerCall,
  type SchedulerCallInput,
  SchedulerCallSchema,
  SchedulerEventSchema,
} from '../protocol/scheduler.ts';
import { InvalidCallError } from './errors.ts';
import type { TaskInfoInput } from './types.ts';

const v = PROTOCOL_VERSION;

/** The `type` of every scheduler event, for `parseMessage`. */
export const SCHEDULER_EVENT_TYPES: readonly string[] = SchedulerEventSchema.options.map(
  (o) => o.shape.type.value,
);

/** Checks a call against the protocol and returns it with its defaults filled in. */
export function validateCall(call: SchedulerCallInput): SchedulerCall {
  const r = SchedulerCallSchema.safeParse(call);
  if (!r.success) {
    throw new InvalidCallError(
      `invalid ${String((call as { type?: unknown }).type)} call: ${schemaProblems(r.error)}`,
    );
  }
  return r.data;
}

export interface FrameworkInfoInput {
  frameworkId: string;
  name: string;
  queueUrl: string;
  roles?: string[];
  user?: string;
  failoverTimeoutSeconds?: number;
  partitionAware?: boolean;
  heartbeatIntervalSeconds?: number;
}

export function subscribeCall(f: FrameworkInfoInput): CallOf<'SUBSCRIBE'> {
  return validateCall({
    v,
    type: 'SUBSCRIBE',
    framework: {
      frameworkId: f.frameworkId,
      name: f.name,
      ...(f.user !== undefined ? { user: f.user } : {}),
      roles: f.roles ?? ['*'],
      failoverTimeoutSeconds: f.failoverTimeoutSeconds ?? 0,
      queueUrl: f.queueUrl,
      partitionAware: f.partitionAware ?? false,
      ...(f.heartbeatIntervalSeconds !== undefined
        ? { heartbeatIntervalSeconds: f.heartbeatIntervalSeconds }
        : {}),
    },
  }) as CallOf<'SUBSCRIBE'>;
}

/** ACCEPT with one LAUNCH of `tasks`; no tasks is a decline of the offers (as in Mesos). */
export function acceptCall(
  frameworkId: string,
  offerIds: readonly string[],
  tasks: readonly TaskInfoInput[],
  filters?: { refuseSeconds?: number },
): CallOf<'ACCEPT'> {
  return validateCall({
    v,
    type: 'ACCEPT',
    frameworkId,
    offerIds: [...offerIds],
    operations: tasks.length > 0 ? [{ type: 'LAUNCH', tasks: [...tasks] }] : [],
    ...(filters ? { filters } : {}),
  }) as CallOf<'ACCEPT'>;
}

export function declineCall(
  frameworkId: string,
  offerIds: readonly string[],
  refuseSeconds?: number,
): CallOf<'DECLINE'> {
  return validateCall({
    v,
    type: 'DECLINE',
    frameworkId,
    offerIds: [...offerIds],
    ...(refuseSeconds !== undefined ? { filters: { refuseSeconds } } : {}),
  }) as CallOf<'DECLINE'>;
}

export function killCall(frameworkId: string, taskId: string, agentId?: string): CallOf<'KILL'> {
  return validateCall({
    v,
    type: 'KILL',
    frameworkId,
    taskId,
    ...(agentId !== undefined ? { agentId } : {}),
  }) as CallOf<'KILL'>;
}

/**
 * The ACKNOWLEDGE of a status update, or undefined when the update carries no uuid (updates
 * made by Meso itself, such as reconciliation answers, are not acknowledged — as in Mesos).
 */
export function acknowledgeCall(frameworkId: string, status: TaskStatus): CallOf<'ACKNOWLEDGE'> | undefined {
  if (status.uuid === undefined) return undefined;
  if (status.agentId === undefined) {
    throw new InvalidCallError(
      `cannot acknowledge update ${status.uuid} of task ${status.taskId}: it names no agent`,
    );
  }
  return validateCall({
    v,
    type: 'ACKNOWLEDGE',
    frameworkId,
    agentId: status.agentId,
    taskId: status.taskId,
    uuid: status.uuid,
  }) as CallOf<'ACKNOWLEDGE'>;
}

/** RECONCILE: explicit for the tasks named, implicit (all the framework's tasks) for none. */
export function reconcileCall(
  frameworkId: string,
  tasks: readonly { taskId: string; agentId?: string }[] = [],
): CallOf<'RECONCILE'> {
  return validateCall({
    v,
    type: 'RECONCILE',
    frameworkId,
    tasks: tasks.map((t) => ({
      taskId: t.taskId,
      ...(t.agentId !== undefined ? { agentId: t.agentId } : {}),
    })),
  }) as CallOf<'RECONCILE'>;
}

/** A REVIVE or SUPPRESS, for the roles given (default all the framework's roles). */
function rolesCall<T extends 'REVIVE' | 'SUPPRESS'>(
  type: T,
  frameworkId: string,
  roles: readonly string[] | undefined,
): CallOf<T> {
  return validateCall({
    v,
    type,
    frameworkId,
    ...(roles !== undefined ? { roles: [...roles] } : {}),
  }) as CallOf<T>;
}

/** REVIVE: clears the framework's filters and ends SUPPRESS, for the roles given (default all). */
export function reviveCall(frameworkId: string, roles?: readonly string[]): CallOf<'REVIVE'> {
  return rolesCall('REVIVE', frameworkId, roles);
}

/** SUPPRESS: no offers in the roles given (default all the framework's roles) until REVIVE. */
export function suppressCall(frameworkId: string, roles?: readonly string[]): CallOf<'SUPPRESS'> {
  return rolesCall('SUPPRESS', frameworkId, roles);
}

export function teardownCall(frameworkId: string): CallOf<'TEARDOWN'> {
  return validateCall({ v, type: 'TEARDOWN', frameworkId }) as CallOf<'TEARDOWN'>;
}

/** The answer to a HEARTBEAT event: tells Meso the framework is still there (lib/control/failover.ts). */
export function heartbeatCall(frameworkId: string): CallOf<'HEARTBEAT'> {
  return validateCall({ v, type: 'HEARTBEAT', frameworkId }) as CallOf<'HEARTBEAT'>;
}

/** SQS queue names: ≤ 80 characters (with `.fifo`) of letters, digits, `-` and `_`. */
/**
 * The name of the event queue the SDK creates for a framework: the protocol's
 * `frameworkQueueName` (lib/protocol/queues.ts), with an error where the prefix leaves no room.
 */
export function frameworkQueueName(prefix: string, frameworkId: string): string {
  const name = protocolFrameworkQueueName(prefix, frameworkId);
  if (name === undefined)
    throw new InvalidCallError(`prefix "${prefix}" is too long to name a framework queue`);
  return name;
}
