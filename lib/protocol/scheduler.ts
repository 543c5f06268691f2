/**
 * The scheduler API: calls a framework sends to the `scheduler-calls` FIFO queue
 * (MessageGroupId = its framework id) and the events Meso sends to the framework's own queue.
 */
import { z } from 'zod';
import {
  Attributes,
  FiltersSchema,
  Id,
  TaskInfoSchema,
  TaskStatusSchema,
  WireResourcesSchema,
} from './common.ts';

const v = z.literal(1);

export const FrameworkInfoSchema = z
  .object({
    /** Chosen by the framework (the SDK uses a UUID); bound to the sender that first subscribes with it. */
    frameworkId: Id,
    name: z.string().min(1).max(256),
    user: z.string().max(64).optional(),
    roles: z.array(z.string().min(1).max(256)).min(1).max(64).default(['*']),
    /** Seconds Meso keeps the framework's tasks after it stops polling (0 = none, as Mesos). */
    failoverTimeoutSeconds: z.number().finite().nonnegative().max(31_536_000).default(0),
    /** The framework's own event queue. */
    queueUrl: z.string().url().max(2048),
    /** TASK_UNREACHABLE instead of TASK_LOST when an agent goes silent. */
    partitionAware: z.boolean().default(false),
  })
  .strict();

export const LaunchOperationSchema = z
  .object({ type: z.literal('LAUNCH'), tasks: z.array(TaskInfoSchema).min(1).max(100) })
  .strict();
export const OperationSchema = z.discriminatedUnion('type', [LaunchOperationSchema]);

export const SchedulerCallSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('SUBSCRIBE'), framework: FrameworkInfoSchema }).strict(),
  z.object({ v, type: z.literal('TEARDOWN'), frameworkId: Id }).strict(),
  z
    .object({
      v,
      type: z.literal('ACCEPT'),
      frameworkId: Id,
      offerIds: z.array(Id).min(1).max(100),
      operations: z.array(OperationSchema).max(100),
      filters: FiltersSchema.optional(),
    })
    .strict(),
  z
    .object({
      v,
      type: z.literal('DECLINE'),
      frameworkId: Id,
      offerIds: z.array(Id).min(1).max(100),
      filters: FiltersSchema.optional(),
    })
    .strict(),
  z.object({ v, type: z.literal('REVIVE'), frameworkId: Id }).strict(),
  z.object({ v, type: z.literal('KILL'), frameworkId: Id, taskId: Id, agentId: Id.optional() }).strict(),
  z
    .object({
      v,
      type: z.literal('ACKNOWLEDGE'),
      frameworkId: Id,
      agentId: Id,
      taskId: Id,
      uuid: z.string().min(1).max(64),
    })
    .strict(),
  z
    .object({
      v,
      type: z.literal('RECONCILE'),
      frameworkId: Id,
      tasks: z.array(z.object({ taskId: Id, agentId: Id.optional() }).strict()).max(1000),
    })
    .strict(),
]);

export const OfferSchema = z
  .object({
    offerId: Id,
    frameworkId: Id,
    agentId: Id,
    hostname: z.string(),
    resources: WireResourcesSchema,
    attributes: Attributes,
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
