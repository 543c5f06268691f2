/**
 * A job of the jobs framework (`meso job`), as Metronome's: a command run on a cron schedule
 * (evaluated by cron-parser, in the job's time zone) or on demand, with retries, a maximum run
 * time, a starting deadline and a concurrency policy.
 */
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { CommandInfoSchema, Role } from '../../protocol/common.ts';
import { schemaProblems } from '../../protocol/parse.ts';

export const JobId = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'job ids are 1-63 characters of a-z, 0-9 and -, not starting or ending with -',
  );

/** Whether a cron expression and time zone can be evaluated; the parser's message if not. */
export function cronProblem(cron: string, timezone: string): string | undefined {
  try {
    CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(0) }).next();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export const JobDefinitionSchema = z
  .object({
    id: JobId,
    cmd: z.string().min(1).max(65536),
    /** Five or six fields (`0 2 * * *`); none: the job runs only on `meso job run`. */
    cron: z.string().min(1).max(256).optional(),
    /** An IANA zone (`Europe/Berlin`) the schedule is read in. */
    timezone: z.string().min(1).max(64).default('UTC'),
    cpus: z.number().finite().positive().max(1024).default(0.1),
    mem: z.number().finite().positive().max(16_777_216).default(32),
    disk: z.number().finite().nonnegative().max(16_777_216).default(0),
    env: CommandInfoSchema.shape.environment,
    role: Role.default('*'),
    /** Attempts after the first failed one. */
    maxRetries: z.number().int().min(0).max(20).default(0),
    /** Wait before retry n: `retryBackoffSeconds × 2^(n-1)`. */
    retryBackoffSeconds: z.number().finite().nonnegative().max(3600).default(1),
    /** An attempt running longer is killed (and counts as failed). */
    maxRunSeconds: z
      .number()
      .finite()
      .positive()
      .max(7 * 86400)
      .optional(),
    /** A run not started this long after it was due is given up. */
    startingDeadlineSeconds: z.number().finite().positive().max(86400).optional(),
    /** FORBID: a due run is skipped while another runs; ALLOW: they overlap. */
    concurrencyPolicy: z.enum(['FORBID', 'ALLOW']).default('FORBID'),
  })
  .strict()
  .superRefine((j, ctx) => {
    if (j.cron === undefined) {
      const tz = cronProblem('* * * * *', j.timezone);
      if (tz)
        ctx.addIssue({ code: 'custom', path: ['timezone'], message: `unknown time zone ${j.timezone}` });
      return;
    }
    const problem = cronProblem(j.cron, j.timezone);
    if (problem)
      ctx.addIssue({
        code: 'custom',
        path: ['cron'],
        message: `cannot evaluate "${j.cron}" in ${j.timezone}: ${problem}`,
      });
  });

export type JobDefinition = z.infer<typeof JobDefinitionSchema>;

export function parseJobDefinition(
  input: unknown,
): { ok: true; def: JobDefinition } | { ok: false; error: string } {
  const r = JobDefinitionSchema.safeParse(input);
  if (r.success) return { ok: true, def: r.data };
  return { ok: false, error: schemaProblems(r.error, '(definition)') };
}

/** A job as the framework keeps it: its definition and the last schedule time it acted on. */
export interface JobRecord {
  readonly def: JobDefinition;
  /** The latest cron time already turned into a run (or skipped), ms; runs start after it. */
  readonly scheduledUntil: number;
}

/**
 * The latest cron time in `(after, now]`, if any: missed earlier ones are not made up for (as
 * Metronome), only the most recent is run.
 */
export function dueAt(def: JobDefinition, after: number, now: number): number | undefined {
  if (def.cron === undefined || now <= after) return undefined;
  const it = CronExpressionParser.parse(def.cron, { tz: def.timezone, currentDate: new Date(after) });
  let last: number | undefined;
  for (let k = 0; k < 10_000; k++) {
    const t = it.next().getTime();
    if (t > now) break;
    last = t;
  }
  return last;
}

/** The next cron time after `after`, for `meso jobs`. */
export function nextAt(def: JobDefinition, after: number): number | undefined {
  if (def.cron === undefined) return undefined;
  return CronExpressionParser.parse(def.cron, { tz: def.timezone, currentDate: new Date(after) })
    .next()
    .getTime();
}
