/**
 * Shared pieces of the Meso protocol (version 1): ids, resources, task info and task status.
 * Every message on every queue is a JSON object `{ "v": 1, "type": "...", ... }`.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1 as const;

/** Ids are chosen by their owner (a framework, an agent, a scheduler for its tasks). */
export const Id = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/,
    'ids use letters, digits and . _ : @ - and start with a letter or digit',
  );

/** Agent ids name the agent's queue, so they use only characters SQS queue names allow. */
export const AgentId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'agent ids are 1-64 characters of letters, digits, _ and -');

const scalar = z
  .number()
  .finite()
  .nonnegative()
  .max(1e12)
  .refine((n) => Math.abs(Math.round(n * 1000) - n * 1000) < 1e-6, 'at most three decimal places');

const port = z.number().int().min(0).max(65535);

export const WireResourcesSchema = z
  .object({
    cpus: scalar.optional(),
    mem: scalar.optional(),
    disk: scalar.optional(),
    gpus: scalar.optional(),
    ports: z
      .array(
        z.tuple([port, port]).refine(([b, e]) => b <= e, 'a port range is [begin, end] with begin <= end'),
      )
      .max(1024)
      .optional(),
  })
  .strict();

export const Attributes = z.record(z.string().max(128), z.string().max(1024));

export const CommandInfoSchema = z
  .object({
    /** true (default): `value` runs through `sh -c`; false: `value` is the executable and `arguments` its argv. */
    shell: z.boolean().default(true),
    value: z.string().min(1).max(65536),
    arguments: z.array(z.string().max(65536)).max(4096).optional(),
    environment: z.record(z.string().max(1024), z.string().max(65536)).optional(),
    user: z.string().max(64).optional(),
  })
  .strict();

export const TaskInfoSchema = z
  .object({
    taskId: Id,
    name: z.string().max(256).optional(),
    agentId: Id,
    resources: WireResourcesSchema,
    command: CommandInfoSchema,
    /** Seconds between SIGTERM and SIGKILL when the task is killed (default 3, as Mesos). */
    killGracePeriodSeconds: z.number().finite().nonnegative().max(3600).optional(),
  })
  .strict();

export const TASK_STATES = [
  'TASK_STAGING',
  'TASK_STARTING',
  'TASK_RUNNING',
  'TASK_KILLING',
  'TASK_FINISHED',
  'TASK_FAILED',
  'TASK_KILLED',
  'TASK_ERROR',
  'TASK_LOST',
  'TASK_DROPPED',
  'TASK_UNREACHABLE',
  'TASK_GONE',
  'TASK_GONE_BY_OPERATOR',
  'TASK_UNKNOWN',
] as const;
export const TaskStateSchema = z.enum(TASK_STATES);

/** Mesos reasons Meso uses (a subset of TaskStatus.Reason). */
export const TASK_REASONS = [
  'REASON_COMMAND_EXECUTOR_FAILED',
  'REASON_EXECUTOR_TERMINATED',
  'REASON_TASK_INVALID',
  'REASON_TASK_UNKNOWN',
  'REASON_INVALID_OFFERS',
  'REASON_OFFER_EXPIRED',
  'REASON_OFFER_RESCINDED',
  'REASON_DUPLICATE_TASK_ID',
  'REASON_RESOURCES_UNKNOWN',
  'REASON_AGENT_UNKNOWN',
  'REASON_AGENT_REMOVED',
  'REASON_AGENT_RESTARTED',
  'REASON_AGENT_DISCONNECTED',
  'REASON_FRAMEWORK_REMOVED',
  'REASON_TASK_KILLED_DURING_LAUNCH',
  'REASON_CONTAINER_LAUNCH_FAILED',
  'REASON_CONTAINER_LIMITATION_MEMORY',
  'REASON_FETCHER_FAILED',
  'REASON_TASK_HEALTH_CHECK_STATUS_UPDATED',
  'REASON_TASK_UNHEALTHY',
  'REASON_RECONCILIATION',
] as const;
export const TaskReasonSchema = z.enum(TASK_REASONS);

export const TaskStatusSchema = z
  .object({
    taskId: Id,
    frameworkId: Id,
    agentId: Id.optional(),
    state: TaskStateSchema,
    reason: TaskReasonSchema.optional(),
    message: z.string().max(8192).optional(),
    source: z.enum(['SOURCE_MASTER', 'SOURCE_AGENT', 'SOURCE_EXECUTOR']),
    /** Present on updates that must be acknowledged (those from agents). */
    uuid: z.string().min(1).max(64).optional(),
    /** Milliseconds since the epoch. */
    timestamp: z.number().finite(),
    healthy: z.boolean().optional(),
    exitCode: z.number().int().optional(),
    /** The last lines of the task's stdout and stderr, on terminal updates. */
    stdoutTail: z.string().max(8192).optional(),
    stderrTail: z.string().max(8192).optional(),
  })
  .strict();

export const FiltersSchema = z
  .object({
    /** Seconds not to re-offer the declined resources; invalid values mean the default (5). */
    refuseSeconds: z.unknown().optional(),
  })
  .strict();

export type WireResources = z.infer<typeof WireResourcesSchema>;
export type CommandInfo = z.infer<typeof CommandInfoSchema>;
export type TaskInfo = z.infer<typeof TaskInfoSchema>;
export type TaskState = z.infer<typeof TaskStateSchema>;
export type TaskReason = z.infer<typeof TaskReasonSchema>;
export type TaskStatus = z.infer<typeof TaskStatusSchema>;
export type Filters = z.infer<typeof FiltersSchema>;
