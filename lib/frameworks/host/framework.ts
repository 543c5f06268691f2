/**
 * What every built-in framework does the same way around its own logic: its dependencies (a
 * table-backed store, the bus, clock, ids, logger), telling its own notices from Meso's events
 * (and dropping what is neither), subscribing with its roles, answering heartbeats, reconciling
 * the tasks it knows of, and naming its event queue. The services and jobs frameworks
 * (lib/frameworks/services, lib/frameworks/jobs) are each only their own decisions over these.
 */
import type { z } from 'zod';
import type { Bus } from '../../ports/bus.ts';
import type { Clock, Ids } from '../../ports/clock.ts';
import type { Metrics } from '../../ports/metrics.ts';
import type { TaskStatus } from '../../protocol/common.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { parseMessage } from '../../protocol/parse.ts';
import { frameworkQueueName } from '../../protocol/queues.ts';
import { type SchedulerEvent, SchedulerEventSchema } from '../../protocol/scheduler.ts';
import { type CallInput, Calls } from '../calls.ts';
import type { FrameworkMeta } from './meta.ts';

export interface FrameworkLogger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/** The part of a framework's store the host uses: its own state. */
export interface MetaStore {
  getMeta(): Promise<FrameworkMeta>;
  updateMeta(change: Partial<FrameworkMeta>): Promise<void>;
}

export interface FrameworkDeps<S extends MetaStore> {
  readonly store: S;
  readonly bus: Bus;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly log: FrameworkLogger;
  readonly metrics?: Metrics;
  readonly config: {
    readonly frameworkId: string;
    readonly name: string;
    /** The cluster's scheduler-calls queue. */
    readonly schedulerCallsQueueUrl: string;
    /** The framework's own event queue. */
    readonly queueUrl: string;
  };
}

const EVENT_TYPES = [...SchedulerEventSchema.options.map((o) => o.shape.type.value)];

/** Calls caused by `cause` (a message id, a tick's id): their deduplication ids derive from it. */
export const newCalls = (deps: FrameworkDeps<MetaStore>, cause: string): Calls =>
  new Calls(deps.bus, deps.config.schedulerCallsQueueUrl, deps.config.frameworkId, cause);

/**
 * A message from the framework's queue: its own notice (`mine`, what the CLI sends after a
 * change), one of Meso's events, or neither — which anyone allowed to send to the queue could
 * send: dropped, logged and counted as `badMessageMetric`, never retried (undefined).
 */
export function parseIncoming<T>(
  deps: FrameworkDeps<MetaStore>,
  messageId: string,
  body: string,
  mine: { readonly schema: z.ZodType<T>; readonly type: string; readonly badMessageMetric: string },
): { readonly mine: T } | { readonly event: SchedulerEvent } | undefined {
  const own = parseMessage(mine.schema, body, [mine.type]);
  if (own.ok) return { mine: own.message };
  const parsed = parseMessage(SchedulerEventSchema, body, EVENT_TYPES);
  if (parsed.ok) return { event: parsed.message };
  deps.log.warn(`${deps.config.name}: message dropped`, { messageId, error: parsed.error });
  deps.metrics?.count(mine.badMessageMetric);
  return undefined;
}

/** A HEARTBEAT from Meso: note the contact and answer it. */
export async function answerHeartbeat(
  deps: FrameworkDeps<MetaStore>,
  calls: Calls,
  now: number,
): Promise<void> {
  await deps.store.updateMeta({ lastContactAt: now });
  calls.add({ type: 'HEARTBEAT', frameworkId: deps.config.frameworkId });
}

/**
 * Reconciliation as on every (re)subscription: implicit (Meso answers with every task it knows
 * of ours; one we do not know of is killed) and explicit for each we name (one Meso lost ends).
 */
export function reconcileAll(
  deps: FrameworkDeps<MetaStore>,
  calls: Calls,
  tasks: readonly { readonly taskId: string; readonly agentId: string }[],
): void {
  const frameworkId = deps.config.frameworkId;
  calls.add({ type: 'RECONCILE', frameworkId, tasks: [] });
  for (let k = 0; k < tasks.length; k += LIMITS.reconcileTasks)
    calls.add({
      type: 'RECONCILE',
      frameworkId,
      tasks: tasks.slice(k, k + LIMITS.reconcileTasks).map((t) => ({ taskId: t.taskId, agentId: t.agentId })),
    });
}

/** ACKNOWLEDGE an update that asks for it (it carries a uuid and an agent). */
export function acknowledge(deps: FrameworkDeps<MetaStore>, calls: Calls, status: TaskStatus): void {
  if (status.uuid !== undefined && status.agentId !== undefined)
    calls.add({
      type: 'ACKNOWLEDGE',
      frameworkId: deps.config.frameworkId,
      agentId: status.agentId,
      taskId: status.taskId,
      uuid: status.uuid,
    });
}

type LaunchTasks = Extract<
  Extract<CallInput, { type: 'ACCEPT' }>['operations'][number],
  { type: 'LAUNCH' }
>['tasks'];

/** ACCEPT one offer with a LAUNCH of these tasks. */
export function launchOn(
  deps: FrameworkDeps<MetaStore>,
  calls: Calls,
  offerId: string,
  tasks: LaunchTasks,
  refuseSeconds: number,
): void {
  calls.add({
    type: 'ACCEPT',
    frameworkId: deps.config.frameworkId,
    offerIds: [offerId],
    operations: [{ type: 'LAUNCH', tasks }],
    filters: { refuseSeconds },
  });
}

/** DECLINE these offers, as many calls as the protocol's limit of offers per call needs. */
export function declineAll(
  deps: FrameworkDeps<MetaStore>,
  calls: Calls,
  offerIds: readonly string[],
  refuseSeconds: number,
): void {
  for (let k = 0; k < offerIds.length; k += LIMITS.offersPerCall)
    calls.add({
      type: 'DECLINE',
      frameworkId: deps.config.frameworkId,
      offerIds: offerIds.slice(k, k + LIMITS.offersPerCall),
      filters: { refuseSeconds },
    });
}

/** `*` and the roles of the framework's work, sorted, as many as a subscription may name. */
export const rolesOf = (roles: readonly string[]): string[] =>
  [...new Set(['*', ...roles])].sort().slice(0, LIMITS.roles);

export const sameRoles = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((r, k) => r === [...b].sort()[k]);

/** SUBSCRIBE with these roles; a new subscription starts with no filters and unsuppressed. */
export async function subscribe(
  deps: FrameworkDeps<MetaStore>,
  calls: Calls,
  now: number,
  roles: string[],
  failoverTimeoutSeconds: number,
): Promise<void> {
  calls.add({
    type: 'SUBSCRIBE',
    framework: {
      frameworkId: deps.config.frameworkId,
      name: deps.config.name,
      queueUrl: deps.config.queueUrl,
      roles,
      failoverTimeoutSeconds,
    },
  });
  await deps.store.updateMeta({ subscribeSentAt: now, roles, suppressed: false });
}

/** An ERROR event: logged; true when it says Meso forgot the framework (subscribe again). */
export function mesoError(
  deps: FrameworkDeps<MetaStore>,
  event: Extract<SchedulerEvent, { type: 'ERROR' }>,
): boolean {
  deps.log.warn(`${deps.config.name}: Meso reported an error`, {
    code: event.code,
    call: event.call,
    message: event.message,
  });
  return event.code === 'FRAMEWORK_DISCONNECTED';
}

/** A built-in framework's event queue: `<prefix>-fw-<frameworkId>.fifo`, the name any framework's queue has. */
export function builtInQueueName(prefix: string, frameworkId: string): string {
  const name = frameworkQueueName(prefix, frameworkId);
  if (!name) throw new Error(`prefix "${prefix}" is too long to name the ${frameworkId} framework's queue`);
  return name;
}
