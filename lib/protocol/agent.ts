/**
 * The agent API: calls an agent sends to the `agent-calls` FIFO queue (MessageGroupId = its
 * agent id) and the commands Meso sends to the agent's own FIFO queue (MessageGroupId
 * `task.<taskId>` for LAUNCH, KILL and ACKNOWLEDGE of one update; `ack` for an ACKNOWLEDGE of
 * several; `control` for REGISTERED and ERROR).
 */
import { z } from 'zod';
import {
  AgentId,
  Attributes,
  Id,
  TaskInfoSchema,
  TaskStateSchema,
  TaskStatusSchema,
  WireResourcesSchema,
} from './common.ts';
import { LIMITS } from './limits.ts';
import { LogsCallSchema, ReadLogsCommandSchema } from './logs.ts';

const v = z.literal(1);

/**
 * A task's latest state as its agent knows it (Mesos's `StatusUpdate.latest_state`), with what the
 * registry records of it: the state of the newest update the agent holds for the task, which may
 * be ahead of the update being delivered while that one waits for its acknowledgement.
 */
export const LatestStatusSchema = TaskStatusSchema.pick({
  state: true,
  reason: true,
  message: true,
  source: true,
  timestamp: true,
  healthy: true,
  exitCode: true,
  stdoutTail: true,
  stderrTail: true,
}).strict();

export const AgentCallSchema = z.discriminatedUnion('type', [
  z
    .object({
      v,
      type: z.literal('REGISTER'),
      /**
       * Chosen by the agent and kept in its work directory; bound to the sender that first
       * registers it. At most 64 characters of [A-Za-z0-9_-]: it names the agent's queue.
       */
      agentId: AgentId,
      hostname: z.string().min(1).max(255),
      resources: WireResourcesSchema,
      attributes: Attributes.default({}),
      /** The agent's own command queue. */
      queueUrl: z.string().url().max(2048),
      agentVersion: z.string().max(64).optional(),
      /**
       * The tasks this agent process runs (not yet ended), so the registry can reconcile them when
       * the agent comes back (re-registration): tasks it does not list are asked about with a
       * RECONCILE command, tasks it lists that are unknown or whose framework is gone are killed.
       * Absent: nothing is reconciled (an agent that predates this field).
       */
      tasks: z
        .array(z.object({ frameworkId: Id, taskId: Id, state: TaskStateSchema.optional() }).strict())
        .max(LIMITS.registerTasks)
        .optional(),
    })
    .strict(),
  z.object({ v, type: z.literal('HEARTBEAT'), agentId: Id }).strict(),
  z
    .object({
      v,
      type: z.literal('STATUS_UPDATE'),
      agentId: Id,
      status: TaskStatusSchema,
      /**
       * The task's latest state (and, when it differs from `status.state`, its details): the
       * registry records it on the task at once, while `status` itself still reaches the framework
       * in order. Absent (an agent that predates it): `status` is the latest.
       */
      latest: LatestStatusSchema.optional(),
    })
    .strict(),
  /**
   * The task's state changed while an earlier update of it waits for its acknowledgement: the
   * registry records `latest` on the task (and recovers its resources when it is terminal) but
   * forwards nothing; the updates themselves follow, in order.
   */
  z
    .object({
      v,
      type: z.literal('LATEST_STATE'),
      agentId: Id,
      frameworkId: Id,
      taskId: Id,
      latest: LatestStatusSchema,
    })
    .strict(),
  /** A chunk of a task's output, answering READ_LOGS (lib/protocol/logs.ts). */
  LogsCallSchema,
]);

export const AgentCommandSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('REGISTERED'), agentId: Id, heartbeatIntervalSeconds: z.number() }).strict(),
  z.object({ v, type: z.literal('LAUNCH'), frameworkId: Id, task: TaskInfoSchema }).strict(),
  z
    .object({
      v,
      type: z.literal('KILL'),
      frameworkId: Id,
      taskId: Id,
      gracePeriodSeconds: z.number().finite().nonnegative().optional(),
    })
    .strict(),
  /**
   * One acknowledgement (`taskId`, `uuid`) or several of the framework's for this agent (`acks`):
   * exactly one of the two forms.
   */
  z
    .object({
      v,
      type: z.literal('ACKNOWLEDGE'),
      frameworkId: Id,
      taskId: Id.optional(),
      uuid: z.string().optional(),
      acks: z
        .array(z.object({ taskId: Id, uuid: z.string() }).strict())
        .min(1)
        .max(LIMITS.acknowledgements)
        .optional(),
    })
    .strict()
    .superRefine((c, ctx) => {
      const single = (c.taskId !== undefined ? 1 : 0) + (c.uuid !== undefined ? 1 : 0);
      if (c.acks !== undefined ? single > 0 : single !== 2) {
        ctx.addIssue({ code: 'custom', message: 'either acks or taskId and uuid' });
      }
    }),
  z.object({ v, type: z.literal('ERROR'), message: z.string(), code: z.string() }).strict(),
  /**
   * The registry marked this agent unreachable (or no longer knows it): send REGISTER again, with
   * the tasks it runs, and resend pending status updates.
   */
  z.object({ v, type: z.literal('REREGISTER'), agentId: Id, reason: z.string().max(1024) }).strict(),
  /**
   * Tasks the registry believes run on this agent but the agent did not list when it registered
   * (Mesos's ReconcileTasksMessage). For each one the agent does not know, it sends `ifUnknown`
   * (TASK_LOST, TASK_DROPPED or TASK_GONE) with REASON_RECONCILIATION and will not run a LAUNCH
   * for it that arrives later; tasks it knows need nothing (their updates are on their way).
   */
  z
    .object({
      v,
      type: z.literal('RECONCILE'),
      tasks: z
        .array(
          z
            .object({
              frameworkId: Id,
              taskId: Id,
              ifUnknown: z.enum(['TASK_LOST', 'TASK_DROPPED', 'TASK_GONE']),
            })
            .strict(),
        )
        .max(1000),
    })
    .strict(),
  /** Send a chunk of a task's stdout or stderr back as LOGS (lib/protocol/logs.ts). */
  ReadLogsCommandSchema,
]);

export type AgentCall = z.infer<typeof AgentCallSchema>;
export type AgentCallInput = z.input<typeof AgentCallSchema>;
export type AgentCommand = z.infer<typeof AgentCommandSchema>;
export type LatestStatus = z.infer<typeof LatestStatusSchema>;
export type AgentCallOf<T extends AgentCall['type']> = Extract<AgentCall, { type: T }>;
export type AgentCommandOf<T extends AgentCommand['type']> = Extract<AgentCommand, { type: T }>;
export { Attributes, WireResourcesSchema };

/** The (taskId, uuid) pairs an agent's ACKNOWLEDGE carries, in either form. */
export function commandAcknowledgements(
  c: AgentCommandOf<'ACKNOWLEDGE'>,
): { taskId: string; uuid: string }[] {
  if (c.acks !== undefined) return c.acks;
  return c.taskId !== undefined && c.uuid !== undefined ? [{ taskId: c.taskId, uuid: c.uuid }] : [];
}
