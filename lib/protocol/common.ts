/**
 * Shared pieces of the Meso protocol (version 1): ids, resources, task info and task status.
 * Every message on every queue is a JSON object `{ "v": 1, "type": "...", ... }`.
 */
import { z } from 'zod';
import { LIMITS } from './limits.ts';
import { roleNameProblem } from './role-name.ts';

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
  // Exactly a multiple of 0.001 (the fixed point resources are kept in): 1e-10 is not, though it
  // is within any tolerance of 0.
  .refine((n) => Math.round(n * 1000) / 1000 === n, 'at most three decimal places');

const port = z.number().int().min(0).max(65535);

const WirePartSchema = z
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

/**
 * A map from names to values with at most `max` entries, counted before any entry is parsed.
 * `__proto__` is no name: it would set the parsed object's prototype.
 */
export function boundedRecord<K extends z.ZodType<string>, V extends z.ZodType>(
  key: K,
  value: V,
  max: number,
  what: string,
) {
  return z
    .custom<Record<string, unknown>>(
      (r) =>
        typeof r !== 'object' ||
        r === null ||
        Array.isArray(r) ||
        (Object.keys(r).length <= max && !Object.hasOwn(r, '__proto__')),
      `at most ${max} ${what}, and none named __proto__`,
    )
    .pipe(z.record(key, value));
}

/**
 * A role name: `*` (the default role) or `/`-separated segments such as `eng/web` (Mesos's
 * rules; see `roleNameProblem` in lib/protocol/role-name.ts).
 */
export const Role = z.string().superRefine((role, ctx) => {
  const problem = roleNameProblem(role);
  if (problem) ctx.addIssue({ code: 'custom', message: `invalid role "${role}": ${problem}` });
});

/**
 * Resources: the top-level fields are unreserved; `reserved` maps a role to what is reserved for
 * it (Mesos's `cpus(eng):2`).
 */
export const WireResourcesSchema = WirePartSchema.extend({
  reserved: boundedRecord(Role, WirePartSchema, LIMITS.roles, 'roles').optional(),
}).strict();

export const Attributes = boundedRecord(
  z.string().max(LIMITS.attributeNameChars),
  z.string().max(LIMITS.attributeValueChars),
  LIMITS.attributes,
  'attributes',
);

export const CommandInfoSchema = z
  .object({
    /** true (default): `value` runs through `sh -c`; false: `value` is the executable and `arguments` its argv. */
    shell: z.boolean().default(true),
    value: z.string().min(1).max(65536),
    arguments: z.array(z.string().max(65536)).max(LIMITS.arguments).optional(),
    environment: boundedRecord(
      z.string().min(1).max(LIMITS.envNameChars),
      z.string().max(LIMITS.envValueChars),
      LIMITS.envEntries,
      'environment entries',
    ).optional(),
    user: z.string().max(64).optional(),
  })
  .strict();

/** A container image to run the command in (Mesos's ContainerInfo with a DockerInfo). */
export const ContainerInfoSchema = z
  .object({
    type: z.literal('DOCKER'),
    /** An image reference the node's engine can pull: `nginx:1.27`, `ghcr.io/org/app@sha256:…`. */
    image: z
      .string()
      .min(1)
      .max(512)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, 'an image reference: letters, digits and . _ / : @ -'),
    /** Pull even when the image is present (Mesos `force_pull_image`). Default false. */
    forcePullImage: z.boolean().optional(),
    /** HOST (default, as Mesos), BRIDGE or NONE. */
    network: z.enum(['HOST', 'BRIDGE', 'NONE']).optional(),
  })
  .strict();

/** A file fetched into the sandbox before the task starts (Mesos's CommandInfo.URI). */
export const UriSchema = z
  .object({
    /** `http://`, `https://` or `file://` URL, or an absolute path on the agent. */
    value: z.string().min(1).max(4096),
    /** Extract archives (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip, .gz). Default true. */
    extract: z.boolean().optional(),
    /** Mark the file executable. Default false. */
    executable: z.boolean().optional(),
    /** Reuse an earlier download of the same URI on this agent. Default false. */
    cache: z.boolean().optional(),
    /** File name in the sandbox. Default: the URI's last path segment. */
    outputFile: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[^/\0]+$/, 'a file name, without /')
      .refine((n) => n !== '.' && n !== '..', 'a file name')
      .optional(),
  })
  .strict();

const seconds = z.number().finite().nonnegative().max(86400);

/** A health check of a running task (Mesos's HealthCheck); defaults are Mesos's. */
export const HealthCheckSchema = z
  .object({
    type: z.enum(['COMMAND', 'HTTP', 'TCP']),
    /** Seconds after the task starts before the first check. Default 15. */
    delaySeconds: seconds.optional(),
    /** Seconds between checks. Default 10. */
    intervalSeconds: seconds.optional(),
    /** Seconds a check may take before it counts as failed. Default 20. */
    timeoutSeconds: seconds.optional(),
    /** Failures in a row after which the task is killed. Default 3. */
    consecutiveFailures: z.number().int().min(1).max(1000).optional(),
    /** Seconds after the task starts during which failures are not counted (until one success). Default 10. */
    gracePeriodSeconds: seconds.optional(),
    /** COMMAND: run in the task's sandbox, as its user, with its environment; exit 0 is healthy. */
    command: CommandInfoSchema.optional(),
    /** HTTP: GET `http://127.0.0.1:<port><path>`; a status 200–399 is healthy. */
    http: z
      .object({
        port: z.number().int().min(1).max(65535),
        path: z.string().max(2048).startsWith('/').optional(),
        scheme: z.enum(['http', 'https']).optional(),
      })
      .strict()
      .optional(),
    /** TCP: a connection to `127.0.0.1:<port>` that opens is healthy. */
    tcp: z
      .object({ port: z.number().int().min(1).max(65535) })
      .strict()
      .optional(),
  })
  .strict()
  .refine(
    (h) =>
      (h.type === 'COMMAND' && h.command !== undefined) ||
      (h.type === 'HTTP' && h.http !== undefined) ||
      (h.type === 'TCP' && h.tcp !== undefined),
    { message: 'a COMMAND check needs `command`, an HTTP check `http`, a TCP check `tcp`' },
  );

export const TaskInfoSchema = z
  .object({
    taskId: Id,
    name: z.string().max(256).optional(),
    agentId: Id,
    resources: WireResourcesSchema,
    command: CommandInfoSchema,
    /** Seconds between SIGTERM and SIGKILL when the task is killed (default 3, as Mesos). */
    killGracePeriodSeconds: z.number().finite().nonnegative().max(3600).optional(),
    /** Run the command in this container image instead of directly on the node. */
    container: ContainerInfoSchema.optional(),
    /** Files fetched into the sandbox before the command starts. */
    uris: z.array(UriSchema).max(LIMITS.uris).optional(),
    healthCheck: HealthCheckSchema.optional(),
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
  /** Fault tolerance: an unreachable agent came back; it was removed by an operator; a launch from a disconnected framework. */
  'REASON_AGENT_REREGISTERED',
  'REASON_AGENT_REMOVED_BY_OPERATOR',
  'REASON_MASTER_DISCONNECTED',
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
    /** When the task's agent was marked unreachable (ms since the epoch), on TASK_UNREACHABLE / TASK_LOST for it. */
    unreachableTime: z.number().finite().optional(),
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
export type ContainerInfo = z.infer<typeof ContainerInfoSchema>;
export type Uri = z.infer<typeof UriSchema>;
export type HealthCheck = z.infer<typeof HealthCheckSchema>;
export type TaskState = z.infer<typeof TaskStateSchema>;
export type TaskReason = z.infer<typeof TaskReasonSchema>;
export type TaskStatus = z.infer<typeof TaskStatusSchema>;
export type Filters = z.infer<typeof FiltersSchema>;
