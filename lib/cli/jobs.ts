/**
 * `meso job …` and `meso jobs`: the jobs framework's commands (Metronome's, on Meso). They write
 * jobs and manual runs to the framework's table and tell its handler (`JOBS_CHANGED`).
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { type ClusterConfig, loadClusterConfig } from '../config/cluster.ts';
import { JOBS } from '../frameworks/jobs/built-in.ts';
import { nextAt, parseJobDefinition } from '../frameworks/jobs/job.ts';
import { isActive, type Run, startRun } from '../frameworks/jobs/run.ts';
import type { JobsStore } from '../frameworks/jobs/store.ts';
import { collect, parseAmount, parseSeconds } from './args.ts';
import {
  envOptions,
  type FrameworkCliDeps,
  type FrameworkConnection,
  frameworkCommand,
  openBuiltIn,
  wholeNumber,
} from './framework-host.ts';
import { EXIT, line, UsageError } from './io.ts';
import { formatTable } from './table.ts';

export type JobsConnection = FrameworkConnection<JobsStore>;

export type JobsCliDeps = FrameworkCliDeps<JobsStore>;

/** The jobs framework of the configured cluster: its table, and its queue for notices. */
export const openJobs = (config: ClusterConfig = loadClusterConfig()): JobsConnection =>
  openBuiltIn(JOBS, config);

export interface CreateOptions {
  cmd: string;
  cron?: string;
  timezone?: string;
  cpus?: number;
  mem?: number;
  disk?: number;
  role?: string;
  maxRetries?: string;
  retryBackoff?: number;
  maxRunTime?: number;
  startingDeadline?: number;
  concurrency?: string;
  env: string[];
}

export function jobFromOptions(id: string, o: CreateOptions) {
  const env = envOptions(o.env);
  const parsed = parseJobDefinition({
    id,
    cmd: o.cmd,
    ...(o.cron !== undefined ? { cron: o.cron } : {}),
    ...(o.timezone !== undefined ? { timezone: o.timezone } : {}),
    ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
    ...(o.mem !== undefined ? { mem: o.mem } : {}),
    ...(o.disk !== undefined ? { disk: o.disk } : {}),
    ...(o.role !== undefined ? { role: o.role } : {}),
    ...(o.maxRetries !== undefined ? { maxRetries: wholeNumber(o.maxRetries, '--max-retries') } : {}),
    ...(o.retryBackoff !== undefined ? { retryBackoffSeconds: o.retryBackoff } : {}),
    ...(o.maxRunTime !== undefined ? { maxRunSeconds: o.maxRunTime } : {}),
    ...(o.startingDeadline !== undefined ? { startingDeadlineSeconds: o.startingDeadline } : {}),
    ...(o.concurrency !== undefined ? { concurrencyPolicy: o.concurrency.toUpperCase() } : {}),
    ...(o.env.length > 0 ? { env } : {}),
  });
  if (!parsed.ok) throw new UsageError(`invalid job: ${parsed.error}`);
  return parsed.def;
}

const iso = (ms: number | undefined) =>
  ms === undefined ? '-' : new Date(ms).toISOString().replace('.000Z', 'Z');

export function formatHistory(runs: readonly Run[]): string {
  if (runs.length === 0) return 'no runs yet\n';
  const rows: string[][] = [];
  for (const r of runs) {
    rows.push([r.runId, r.trigger, iso(r.dueAt), r.state, String(r.attempts.length), r.reason ?? '']);
  }
  let out = formatTable(['RUN', 'TRIGGER', 'DUE', 'STATE', 'ATTEMPTS', 'REASON'], rows);
  for (const r of runs.slice(0, 3))
    for (const a of r.attempts) {
      out += `  ${a.taskId}: ${a.state}${a.exitCode !== undefined ? ` exit ${a.exitCode}` : ''}${a.reason ? ` ${a.reason}` : ''}${a.timedOut ? ' (max run time)' : ''}\n`;
      if (a.stderrTail) out += `    stderr: ${a.stderrTail.trim().split('\n').slice(-3).join(' | ')}\n`;
      if (a.stdoutTail) out += `    stdout: ${a.stdoutTail.trim().split('\n').slice(-3).join(' | ')}\n`;
    }
  return out;
}

const isUsage = (e: unknown): e is Error => e instanceof UsageError;

export function registerJobCommands(
  program: Command,
  deps: () => JobsCliDeps,
  done: (code: number) => void,
): void {
  const run = frameworkCommand(deps, done, isUsage);
  const mustGet = async (c: JobsConnection, id: string) => {
    const j = await c.store.getJob(id);
    if (!j) throw new UsageError(`no job ${id} (meso jobs lists them)`);
    return j;
  };

  program
    .command('jobs')
    .description('List the jobs of the jobs framework: schedule, next run, last run.')
    .action(async () =>
      run(async (c, d, now) => {
        const jobs = await c.store.listJobs();
        if (jobs.length === 0) {
          d.io.stdout.write(
            'no jobs: create one with `meso job create nightly --cron "0 2 * * *" --cmd ...`\n',
          );
          return EXIT.OK;
        }
        const rows = await Promise.all(
          jobs.map(async (j) => {
            const [last] = await c.store.listRuns(j.def.id, 1);
            return [
              j.def.id,
              j.def.cron ? `${j.def.cron} (${j.def.timezone})` : 'on demand',
              iso(nextAt(j.def, now)),
              last ? `${last.state} ${iso(last.dueAt)}` : '-',
              j.def.cmd.length > 40 ? `${j.def.cmd.slice(0, 37)}...` : j.def.cmd,
            ];
          }),
        );
        d.io.stdout.write(formatTable(['JOB', 'SCHEDULE', 'NEXT', 'LAST RUN', 'CMD'], rows));
        return EXIT.OK;
      })(),
    );

  const job = program
    .command('job')
    .description('Jobs run on a cron schedule or on demand by the jobs framework (as Metronome).');

  job
    .command('create')
    .description('Create or replace a job.')
    .argument('<id>')
    .requiredOption('--cmd <command>', 'the shell command')
    .option('--cron <expression>', 'a cron schedule (5 or 6 fields); none: run on demand only')
    .option('--timezone <zone>', 'the IANA time zone the schedule is read in (default UTC)')
    .option('--cpus <n>', 'CPUs', parseAmount)
    .option('--mem <mb>', 'memory, MB', parseAmount)
    .option('--disk <mb>', 'disk, MB', parseAmount)
    .option('--role <role>', 'the role whose resources it uses')
    .option('--max-retries <n>', 'attempts after a failed one (default 0)')
    .option('--retry-backoff <seconds>', 'wait before the first retry, doubling (default 1)', parseSeconds)
    .option('--max-run-time <seconds>', 'kill an attempt running longer', parseSeconds)
    .option(
      '--starting-deadline <seconds>',
      'give a run up when not started this long after it was due',
      parseSeconds,
    )
    .option('--concurrency <policy>', 'FORBID (default: skip a run while one is active) or ALLOW')
    .option('-e, --env <NAME=value>', 'an environment variable (repeatable)', collect, [] as string[])
    .action(async (id: string, o: CreateOptions) =>
      run(async (c, d, now) => {
        const def = jobFromOptions(id, o);
        await c.store.putJob(def, now);
        await c.notify(id);
        const next = nextAt(def, now);
        d.io.stdout.write(line(`job ${id} saved${next !== undefined ? `; next run ${iso(next)}` : ''}`));
        return EXIT.OK;
      })(),
    );

  job
    .command('run')
    .description('Start a run of a job now.')
    .argument('<id>')
    .action(async (id: string) =>
      run(async (c, d, now) => {
        const j = await mustGet(c, id);
        const active = (await c.store.listRuns(id)).filter(isActive);
        const r = startRun(j.def, active, now, 'manual', randomUUID());
        await c.store.putRun(r);
        await c.notify(id);
        d.io.stdout.write(
          line(r.state === 'skipped' ? `run ${r.runId} skipped: ${r.reason}` : `run ${r.runId} started`),
        );
        return r.state === 'skipped' ? EXIT.FAILED : EXIT.OK;
      })(),
    );

  job
    .command('history')
    .description("A job's runs, newest first, with each attempt's state, exit code and output tails.")
    .argument('<id>')
    .action(async (id: string) =>
      run(async (c, d) => {
        await mustGet(c, id);
        d.io.stdout.write(formatHistory(await c.store.listRuns(id)));
        return EXIT.OK;
      })(),
    );

  job
    .command('delete')
    .description('Delete a job (its history stays until trimmed; a running attempt finishes).')
    .argument('<id>')
    .action(async (id: string) =>
      run(async (c, d) => {
        await mustGet(c, id);
        await c.store.deleteJob(id);
        await c.notify(id);
        d.io.stdout.write(line(`deleted job ${id}`));
        return EXIT.OK;
      })(),
    );
}
