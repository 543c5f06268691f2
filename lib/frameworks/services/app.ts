/**
 * An app of the services framework (`meso app`): the versioned definition an operator deploys,
 * checked with zod, as Marathon's app definition (a subset: command apps with resources, ports,
 * placement constraints, a health check, an upgrade strategy and a restart backoff).
 */
import { z } from 'zod';
import { CommandInfoSchema, ContainerInfoSchema, Role } from '../../protocol/common.ts';
import { schemaProblems } from '../../protocol/parse.ts';

/** App ids name tasks (`<app>.<uuid>`): lower-case letters, digits and `-`, as Marathon's path segments. */
export const AppId = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'app ids are 1-63 characters of a-z, 0-9 and -, not starting or ending with -',
  );

export const CONSTRAINT_OPERATORS = ['UNIQUE', 'CLUSTER', 'GROUP_BY', 'LIKE', 'UNLIKE', 'MAX_PER'] as const;
export type ConstraintOperator = (typeof CONSTRAINT_OPERATORS)[number];

/**
 * A placement constraint as Marathon writes it: `[field, operator, value?]`, where `field` is
 * `hostname` or an agent attribute.
 */
export const ConstraintSchema = z
  .tuple([z.string().min(1).max(128), z.enum(CONSTRAINT_OPERATORS)])
  .rest(z.string().max(256))
  .superRefine((c, ctx) => {
    const [, op, value, ...more] = c;
    if (more.length > 0)
      ctx.addIssue({ code: 'custom', message: 'a constraint is [field, operator, value?]' });
    if ((op === 'LIKE' || op === 'UNLIKE' || op === 'MAX_PER') && value === undefined)
      ctx.addIssue({ code: 'custom', message: `${op} needs a value` });
    if (
      (op === 'MAX_PER' || (op === 'GROUP_BY' && value !== undefined)) &&
      !/^[1-9][0-9]{0,5}$/.test(value ?? '')
    )
      ctx.addIssue({ code: 'custom', message: `${op} takes a positive whole number` });
    if ((op === 'LIKE' || op === 'UNLIKE') && value !== undefined) {
      try {
        new RegExp(`^(?:${value})$`);
      } catch {
        ctx.addIssue({ code: 'custom', message: `${op} value is not a regular expression: ${value}` });
      }
    }
  });
export type Constraint = z.infer<typeof ConstraintSchema>;

const seconds = z.number().finite().nonnegative().max(86400);

/** The app's health check: the agent runs it; HTTP and TCP checks name a port by index (PORT<i>). */
export const AppHealthCheckSchema = z
  .object({
    protocol: z.enum(['COMMAND', 'HTTP', 'TCP']),
    /** HTTP and TCP: which of the app's ports (default 0, i.e. PORT0). */
    portIndex: z.number().int().min(0).max(15).default(0),
    /** HTTP: the path to GET (default /). */
    path: z.string().max(2048).startsWith('/').optional(),
    /** COMMAND: the shell command; exit 0 is healthy. */
    command: z.string().min(1).max(4096).optional(),
    gracePeriodSeconds: seconds.default(15),
    intervalSeconds: seconds.default(10),
    timeoutSeconds: seconds.default(20),
    maxConsecutiveFailures: z.number().int().min(1).max(1000).default(3),
  })
  .strict()
  .refine((h) => h.protocol !== 'COMMAND' || h.command !== undefined, {
    message: 'a COMMAND health check needs `command`',
  });

export const UpgradeStrategySchema = z
  .object({
    /** Fraction of `instances` kept healthy while a new version replaces the old (Marathon default 1). */
    minimumHealthCapacity: z.number().min(0).max(1).default(1),
    /** Fraction of `instances` that may run on top during a deployment (Marathon default 1). */
    maximumOverCapacity: z.number().min(0).max(1).default(1),
    /**
     * Seconds a deployment (a new version, a scale, a replacement) may go without progress — an
     * instance of the current version becoming ready — before it shows as stuck (Kubernetes'
     * progressDeadlineSeconds; default {@link DEFAULT_PROGRESS_DEADLINE_SECONDS}).
     */
    progressDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 86400)
      .optional(),
  })
  .strict();

/** A deployment without progress for this long is stuck: ten minutes, as Kubernetes. */
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

export const progressDeadlineSeconds = (def: AppDefinition): number =>
  def.upgradeStrategy.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS;

/** What the operator writes (`meso app deploy web.json`). */
export const AppDefinitionSchema = z
  .object({
    id: AppId,
    /** The shell command (`sh -c`); its environment holds PORT0..PORTn-1 and PORT. */
    cmd: z.string().min(1).max(65536),
    instances: z.number().int().min(0).max(1000).default(1),
    cpus: z.number().finite().positive().max(1024).default(0.1),
    mem: z.number().finite().positive().max(16_777_216).default(32),
    disk: z.number().finite().nonnegative().max(16_777_216).default(0),
    /** Host ports to take from the offer (Marathon's `portDefinitions` with port 0): PORT0..PORTn-1. */
    ports: z.number().int().min(0).max(16).default(0),
    env: CommandInfoSchema.shape.environment,
    container: ContainerInfoSchema.optional(),
    constraints: z.array(ConstraintSchema).max(16).default([]),
    healthCheck: AppHealthCheckSchema.optional(),
    upgradeStrategy: UpgradeStrategySchema.default({ minimumHealthCapacity: 1, maximumOverCapacity: 1 }),
    /** The role whose offers the app's tasks take (fairness and quota apply to it). */
    role: Role.default('*'),
    /** Restart backoff: first delay, factor and cap, in seconds (Marathon: 1, 1.15, 3600). */
    backoffSeconds: z.number().finite().nonnegative().max(3600).default(1),
    backoffFactor: z.number().finite().min(1).max(10).default(1.15),
    maxLaunchDelaySeconds: z.number().finite().nonnegative().max(86400).default(3600),
    killGracePeriodSeconds: z.number().finite().nonnegative().max(3600).optional(),
  })
  .strict()
  .refine(
    (d) => !d.healthCheck || d.healthCheck.protocol === 'COMMAND' || d.healthCheck.portIndex < d.ports,
    {
      message: 'an HTTP or TCP health check names a port the app has: set `ports` above its portIndex',
      path: ['healthCheck', 'portIndex'],
    },
  );

export type AppDefinitionInput = z.input<typeof AppDefinitionSchema>;
export type AppDefinition = z.infer<typeof AppDefinitionSchema>;

/** A deployed definition: the definition plus the version it was deployed as. */
export interface AppVersion {
  readonly def: AppDefinition;
  /** ISO time of the deploy; a restart makes a new version of the same definition. */
  readonly version: string;
}

/** An app as the framework keeps it: its current version and how it is doing. */
export interface AppRecord extends AppVersion {
  /** Suspended apps run no instances (Marathon's "suspend" is a scale to 0 that keeps `instances`). */
  readonly suspended: boolean;
  /** Launch failures in a row, and no launch before `delayUntil` (ms since the epoch). */
  readonly backoff: { readonly failures: number; readonly delayUntil: number };
  /** When the current deployment began (the version's time, or the last scale). */
  readonly deployedAt: number;
  /**
   * The framework's last sign of progress (an instance of the current version became ready, or
   * a ready one ended): with `deployedAt`, where the progress deadline runs from.
   */
  readonly progressAt?: number;
}

/** Reads a definition; a clear message for each problem, nothing changed on failure. */
export function parseAppDefinition(
  input: unknown,
): { ok: true; def: AppDefinition } | { ok: false; error: string } {
  const r = AppDefinitionSchema.safeParse(input);
  if (r.success) return { ok: true, def: r.data };
  return { ok: false, error: schemaProblems(r.error, '(definition)') };
}

/** How many instances an app wants running now. */
export const wanted = (app: Pick<AppRecord, 'def' | 'suspended'>): number =>
  app.suspended ? 0 : app.def.instances;
