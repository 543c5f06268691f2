/**
 * The scheduler API: calls a framework sends to the `scheduler-calls` FIFO queue
 * (MessageGroupId = its framework id) and the events Meso sends to the framework's own queue.
 */
import { z } from 'zod';
import {
  Attributes,
  boundedRecord,
  FiltersSchema,
  Id,
  Role,
  TaskInfoSchema,
  TaskStatusSchema,
  WireResourcesSchema,
} from './common.ts';
import { LIMITS } from './limits.ts';
import { ReadLogsCallSchema } from './logs.ts';

const v = z.literal(1);

/** A status update's uuid, as the agent made it. */
const StatusUuid = z.string().min(1).max(64);

/** One acknowledgement in an ACKNOWLEDGE's `acks`. */
export const AckEntrySchema = z.object({ agentId: Id, taskId: Id, uuid: StatusUuid }).strict();
export type AckEntry = z.infer<typeof AckEntrySchema>;

/** The shortest liveness period a framework may ask for (FrameworkInfo.heartbeatIntervalSeconds). */
export const MIN_FRAMEWORK_HEARTBEAT_SECONDS = 2;

export const FrameworkInfoSchema = z
  .object({
    /** Chosen by the framework (the SDK uses a UUID); bound to the sender that first subscribes with it. */
    frameworkId: Id,
    name: z.string().min(1).max(256),
    user: z.string().max(64).optional(),
    roles: z
      .array(Role)
      .min(1)
      .max(LIMITS.roles)
      .refine((r) => new Set(r).size === r.length, 'roles must not repeat')
      .default(['*']),
    /** Seconds Meso keeps the framework's tasks after it stops polling (0 = none, as Mesos). */
    failoverTimeoutSeconds: z.number().finite().nonnegative().max(31_536_000).default(0),
    /** The framework's own event queue. */
    queueUrl: z.string().url().max(2048),
    /** TASK_UNREACHABLE instead of TASK_LOST when an agent goes silent. */
    partitionAware: z.boolean().default(false),
    /**
     * A liveness period shorter than the cluster's (SUBSCRIBED names the one granted): the
     * framework promises a call (HEARTBEAT will do) at least this often, and is DISCONNECTED after
     * `frameworkPingTimeouts` such periods of silence instead of the cluster's minutes. For
     * short-lived frameworks such as `meso run`, whose resources should come back soon after
     * the process dies.
     */
    heartbeatIntervalSeconds: z.number().int().min(MIN_FRAMEWORK_HEARTBEAT_SECONDS).max(86_400).optional(),
    /**
     * Per role, the smallest offers worth receiving (Mesos's `offer_filters`): an offer is made
     * only if it holds all of at least one of `minAllocatableResources`. Overrides the role's
     * and the cluster's minimum (`cpus:0.01|mem:32`).
     */
    offerFilters: boundedRecord(
      Role,
      z.object({ minAllocatableResources: z.array(WireResourcesSchema).min(1).max(16) }).strict(),
      LIMITS.roles,
      'roles',
    ).optional(),
  })
  .strict();

export const LaunchOperationSchema = z
  .object({ type: z.literal('LAUNCH'), tasks: z.array(TaskInfoSchema).min(1).max(LIMITS.tasksPerAccept) })
  .strict();
/**
 * RESERVE / UNRESERVE: dynamic reservations of offered resources, written as reserved parts
 * (`{ "reserved": { "eng": { "cpus": 2 } } }`) for one of the framework's roles or a role below
 * one of them. RESERVE turns unreserved offered resources into reserved ones; UNRESERVE turns
 * offered reserved ones back. The offer's resources change accordingly for later operations.
 */
export const ReserveOperationSchema = z
  .object({ type: z.literal('RESERVE'), resources: WireResourcesSchema })
  .strict();
export const UnreserveOperationSchema = z
  .object({ type: z.literal('UNRESERVE'), resources: WireResourcesSchema })
  .strict();
export const OperationSchema = z.discriminatedUnion('type', [
  LaunchOperationSchema,
  ReserveOperationSchema,
  UnreserveOperationSchema,
]);

export const SchedulerCallSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('SUBSCRIBE'), framework: FrameworkInfoSchema }).strict(),
  z.object({ v, type: z.literal('TEARDOWN'), frameworkId: Id }).strict(),
  z
    .object({
      v,
      type: z.literal('ACCEPT'),
      frameworkId: Id,
      offerIds: z.array(Id).min(1).max(LIMITS.offersPerCall),
      operations: z.array(OperationSchema).max(LIMITS.operationsPerAccept),
      filters: FiltersSchema.optional(),
    })
    .strict()
    .refine(
      (c) =>
        c.operations.reduce((n, op) => n + (op.type === 'LAUNCH' ? op.tasks.length : 0), 0) <=
        LIMITS.tasksPerAccept,
      {
        message: `at most ${LIMITS.tasksPerAccept} tasks in one ACCEPT (over all its LAUNCH operations): send the rest in another`,
        path: ['operations'],
      },
    ),
  z
    .object({
      v,
      type: z.literal('DECLINE'),
      frameworkId: Id,
      offerIds: z.array(Id).min(1).max(LIMITS.offersPerCall),
      filters: FiltersSchema.optional(),
    })
    .strict(),
  /** Clears the framework's filters and ends a SUPPRESS, for the roles named (default: all of them). */
  z
    .object({
      v,
      type: z.literal('REVIVE'),
      frameworkId: Id,
      roles: z.array(Role).max(LIMITS.roles).optional(),
    })
    .strict(),
  /** Stops offers to the framework, for the roles named (default: all of them), until REVIVE. */
  z
    .object({
      v,
      type: z.literal('SUPPRESS'),
      frameworkId: Id,
      roles: z.array(Role).max(LIMITS.roles).optional(),
    })
    .strict(),
  z.object({ v, type: z.literal('KILL'), frameworkId: Id, taskId: Id, agentId: Id.optional() }).strict(),
  /**
   * Acknowledges status updates: one (`agentId`, `taskId`, `uuid`), or several at once (`acks`,
   * up to LIMITS.acknowledgements) — exactly one of the two forms.
   */
  z
    .object({
      v,
      type: z.literal('ACKNOWLEDGE'),
      frameworkId: Id,
      agentId: Id.optional(),
      taskId: Id.optional(),
      uuid: StatusUuid.optional(),
      acks: z.array(AckEntrySchema).min(1).max(LIMITS.acknowledgements).optional(),
    })
    .strict()
    .superRefine((call, ctx) => {
      const single = [call.agentId, call.taskId, call.uuid].filter((f) => f !== undefined).length;
      if (call.acks !== undefined ? single > 0 : single !== 3) {
        ctx.addIssue({
          code: 'custom',
          message:
            call.acks !== undefined
              ? 'either acks or agentId, taskId and uuid, not both'
              : 'agentId, taskId and uuid are required (or acks)',
        });
      }
    }),
  z
    .object({
      v,
      type: z.literal('RECONCILE'),
      frameworkId: Id,
      tasks: z.array(z.object({ taskId: Id, agentId: Id.optional() }).strict()).max(LIMITS.reconcileTasks),
    })
    .strict(),
  /**
   * "Still here": a framework answers each HEARTBEAT event with one (any call counts). Over SQS
   * there is no connection whose loss tells Meso a framework went away, so a framework silent
   * for `frameworkPingTimeouts` heartbeat periods is disconnected and its failover timeout starts.
   */
  z.object({ v, type: z.literal('HEARTBEAT'), frameworkId: Id }).strict(),
  /**
   * Read a task's stdout or stderr from its agent (lib/protocol/logs.ts): allowed to the
   * framework's own principal and to those the ACL `access_sandboxes` names.
   */
  ReadLogsCallSchema,
]);

export const OfferSchema = z
  .object({
    offerId: Id,
    frameworkId: Id,
    agentId: Id,
    hostname: z.string(),
    resources: WireResourcesSchema,
    attributes: Attributes,
    /** The framework role the offer is allocated to: tasks launched from it count against it. */
    role: Role.optional(),
    /** Milliseconds since the epoch after which the offer is rescinded. */
    expiresAt: z.number(),
  })
  .strict();

export const SchedulerEventSchema = z.discriminatedUnion('type', [
  z
    .object({ v, type: z.literal('SUBSCRIBED'), frameworkId: Id, heartbeatIntervalSeconds: z.number() })
    .strict(),
  z.object({ v, type: z.literal('OFFERS'), offers: z.array(OfferSchema) }).strict(),
  z.object({ v, type: z.literal('RESCIND'), offerId: Id }).strict(),
  z.object({ v, type: z.literal('UPDATE'), status: TaskStatusSchema }).strict(),
  z
    .object({
      v,
      type: z.literal('ERROR'),
      message: z.string(),
      /** What was rejected: the call type, if it could be read. */
      call: z.string().optional(),
      code: z.string(),
    })
    .strict(),
  z.object({ v, type: z.literal('HEARTBEAT') }).strict(),
  z.object({ v, type: z.literal('FAILURE'), agentId: Id.optional() }).strict(),
]);

export type FrameworkInfo = z.infer<typeof FrameworkInfoSchema>;
export type Operation = z.infer<typeof OperationSchema>;
export type SchedulerCall = z.infer<typeof SchedulerCallSchema>;
export type SchedulerCallInput = z.input<typeof SchedulerCallSchema>;
export type SchedulerEvent = z.infer<typeof SchedulerEventSchema>;
export type Offer = z.infer<typeof OfferSchema>;
export type CallOf<T extends SchedulerCall['type']> = Extract<SchedulerCall, { type: T }>;
export type EventOf<T extends SchedulerEvent['type']> = Extract<SchedulerEvent, { type: T }>;

/** The acknowledgements an ACKNOWLEDGE carries, in either form. */
export function acknowledgementsOf(call: CallOf<'ACKNOWLEDGE'>): AckEntry[] {
  if (call.acks !== undefined) return call.acks;
  const { agentId, taskId, uuid } = call;
  return agentId !== undefined && taskId !== undefined && uuid !== undefined
    ? [{ agentId, taskId, uuid }]
    : [];
}
