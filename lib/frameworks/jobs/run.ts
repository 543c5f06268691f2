/**
 * A job's runs and the decisions about them, pure: when a run starts, where its attempts go,
 * what an update does to it (retry, success, failure), and what the clock does (deadline, maximum
 * run time). The framework around it (framework.ts) loads, stores and sends.
 */
import type { TaskState, TaskStatus } from '../../protocol/common.ts';
import type { Offer } from '../../protocol/scheduler.ts';
import { endsTask } from '../host/ends.ts';
import type { JobDefinition, JobRecord } from './job.ts';

export type RunState = 'waiting' | 'launched' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface Attempt {
  readonly taskId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly offerId: string;
  readonly launchedAt: number;
  readonly state: TaskState | 'LAUNCHED';
  readonly endedAt?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly exitCode?: number;
  readonly stdoutTail?: string;
  readonly stderrTail?: string;
  /** Killed by the framework: the maximum run time passed. */
  readonly timedOut?: boolean;
}

export interface Run {
  readonly jobId: string;
  /** Sortable: `<due time in ms, 13 digits>-<suffix>`. */
  readonly runId: string;
  readonly trigger: 'cron' | 'manual';
  readonly dueAt: number;
  readonly state: RunState;
  /** Not before this time (a retry's backoff). */
  readonly notBefore: number;
  readonly attempts: readonly Attempt[];
  readonly endedAt?: number;
  /** Why it ended, when it did not succeed (or why it was skipped). */
  readonly reason?: string;
}

export const isActive = (r: Run): boolean =>
  r.state === 'waiting' || r.state === 'launched' || r.state === 'running';

export function newRunId(dueAt: number, suffix: string): string {
  return `${String(dueAt).padStart(13, '0')}-${suffix.replace(/[^a-z0-9]/gi, '').slice(0, 8)}`;
}

/** Task ids carry the job and run: `<jobId>.<runId>.<attempt>`. */
export const taskIdOf = (run: Run, attempt: number) => `${run.jobId}.${run.runId}.${attempt}`;

export function parseTaskId(taskId: string): { jobId: string; runId: string; attempt: number } | undefined {
  const m = /^([a-z0-9-]{1,63})\.(\d{13}-[A-Za-z0-9]{1,8})\.(\d{1,3})$/.exec(taskId);
  return m ? { jobId: m[1]!, runId: m[2]!, attempt: Number(m[3]) } : undefined;
}

/**
 * A run due at `dueAt`: waiting, or skipped when the job forbids overlap and one is active.
 */
export function startRun(
  job: JobDefinition,
  active: readonly Run[],
  dueAt: number,
  trigger: Run['trigger'],
  suffix: string,
): Run {
  const base = {
    jobId: job.id,
    runId: newRunId(dueAt, suffix),
    trigger,
    dueAt,
    notBefore: dueAt,
    attempts: [],
  };
  if (job.concurrencyPolicy === 'FORBID' && active.some((r) => r.jobId === job.id && isActive(r)))
    return {
      ...base,
      state: 'skipped',
      endedAt: dueAt,
      reason: 'a run was still active (concurrencyPolicy FORBID)',
    };
  return { ...base, state: 'waiting' };
}

/** Runs that want an offer now. */
export const wantsLaunch = (r: Run, now: number) => r.state === 'waiting' && r.notBefore <= now;

export interface JobLaunch {
  readonly offerId: string;
  readonly agentId: string;
  readonly tasks: {
    taskId: string;
    name: string;
    agentId: string;
    resources: { cpus: number; mem: number; disk?: number };
    command: { shell: true; value: string; environment: Record<string, string> };
  }[];
  readonly runs: Run[];
}

const fixed = (n: number) => Math.round(n * 1000);

/** Places waiting runs on offers (each as much as fits, in due order); unused offers are declined. */
export function planJobOffers(
  jobs: ReadonlyMap<string, JobRecord>,
  runs: readonly Run[],
  offers: readonly Offer[],
  now: number,
): { launches: JobLaunch[]; declines: string[] } {
  const used = new Set(runs.flatMap((r) => r.attempts.map((a) => a.offerId)));
  const queue = runs
    .filter((r) => wantsLaunch(r, now) && jobs.has(r.jobId))
    .sort((a, b) => a.dueAt - b.dueAt);
  const launches: JobLaunch[] = [];
  const declines: string[] = [];
  for (const offer of offers) {
    if (used.has(offer.offerId)) {
      declines.push(offer.offerId);
      continue;
    }
    let cpus = fixed(offer.resources.cpus ?? 0);
    let mem = fixed(offer.resources.mem ?? 0);
    let disk = fixed(offer.resources.disk ?? 0);
    const launch: JobLaunch = { offerId: offer.offerId, agentId: offer.agentId, tasks: [], runs: [] };
    for (let k = 0; k < queue.length; ) {
      const run = queue[k]!;
      const def = jobs.get(run.jobId)!.def;
      if (
        def.role !== (offer.role ?? '*') ||
        cpus < fixed(def.cpus) ||
        mem < fixed(def.mem) ||
        disk < fixed(def.disk)
      ) {
        k++;
        continue;
      }
      cpus -= fixed(def.cpus);
      mem -= fixed(def.mem);
      disk -= fixed(def.disk);
      queue.splice(k, 1);
      const n = run.attempts.length + 1;
      const taskId = taskIdOf(run, n);
      launch.tasks.push({
        taskId,
        name: def.id,
        agentId: offer.agentId,
        resources: { cpus: def.cpus, mem: def.mem, ...(def.disk > 0 ? { disk: def.disk } : {}) },
        command: {
          shell: true,
          value: def.cmd,
          environment: { ...def.env, MESO_JOB_ID: def.id, MESO_RUN_ID: run.runId, MESO_ATTEMPT: String(n) },
        },
      });
      launch.runs.push({
        ...run,
        state: 'launched',
        attempts: [
          ...run.attempts,
          {
            taskId,
            agentId: offer.agentId,
            hostname: offer.hostname,
            offerId: offer.offerId,
            launchedAt: now,
            state: 'LAUNCHED',
          },
        ],
      });
    }
    if (launch.tasks.length > 0) launches.push(launch);
    else declines.push(offer.offerId);
  }
  return { launches, declines };
}

/** Wait before retry `n` (1-based): `retryBackoffSeconds × 2^(n-1)`, at most an hour. */
export const retryDelayMs = (def: JobDefinition, n: number) =>
  Math.round(Math.min(def.retryBackoffSeconds * 2 ** Math.min(n - 1, 30), 3600) * 1000);

/**
 * Applies a status update to the attempt it is about. The current attempt ending: FINISHED with
 * exit 0 succeeds the run; anything else fails the attempt, and the run waits for a retry while
 * `maxRetries` allow, else fails. Updates for other (older) attempts only fill in their record.
 */
export function applyRunStatus(
  run: Run,
  def: JobDefinition | undefined,
  status: TaskStatus,
  now: number,
): Run {
  const index = run.attempts.findIndex((a) => a.taskId === status.taskId);
  if (index < 0) return run;
  const prior = run.attempts[index]!;
  if (prior.endedAt !== undefined) return run;
  const ended = endsTask(status.state);
  const attempt: Attempt = {
    ...prior,
    state: status.state,
    ...(ended ? { endedAt: now } : {}),
    ...(status.reason ? { reason: status.reason } : {}),
    ...(status.message ? { message: status.message.slice(0, 1024) } : {}),
    ...(status.exitCode !== undefined ? { exitCode: status.exitCode } : {}),
    ...(status.stdoutTail ? { stdoutTail: status.stdoutTail } : {}),
    ...(status.stderrTail ? { stderrTail: status.stderrTail } : {}),
  };
  const attempts = run.attempts.map((a, k) => (k === index ? attempt : a));
  const current = index === run.attempts.length - 1 && isActive(run);
  if (!current) return { ...run, attempts };
  if (!ended) return { ...run, attempts, state: status.state === 'TASK_RUNNING' ? 'running' : run.state };
  if (status.state === 'TASK_FINISHED' && (status.exitCode ?? 0) === 0)
    return { ...run, attempts, state: 'succeeded', endedAt: now };
  const why = attempt.timedOut
    ? 'maximum run time passed'
    : `${status.state}${status.exitCode !== undefined ? ` (exit ${status.exitCode})` : ''}${status.reason ? ` ${status.reason}` : ''}`;
  const retries = attempts.length - 1;
  if (def && retries < def.maxRetries)
    return {
      ...run,
      attempts,
      state: 'waiting',
      notBefore: now + retryDelayMs(def, retries + 1),
      reason: why,
    };
  return { ...run, attempts, state: 'failed', endedAt: now, reason: why };
}

/**
 * What the clock decides: a waiting run past its starting deadline fails; an attempt past the
 * maximum run time is to be killed (marked, so its end counts as a timeout).
 */
export function checkClock(
  run: Run,
  def: JobDefinition | undefined,
  now: number,
): { run: Run; kill?: { taskId: string; agentId: string } } {
  if (!def || !isActive(run)) return { run };
  if (
    run.state === 'waiting' &&
    run.attempts.length === 0 &&
    def.startingDeadlineSeconds !== undefined &&
    now - run.dueAt > def.startingDeadlineSeconds * 1000
  )
    return {
      run: { ...run, state: 'failed', endedAt: now, reason: 'not started within its starting deadline' },
    };
  const last = run.attempts.at(-1);
  if (
    def.maxRunSeconds !== undefined &&
    last &&
    last.endedAt === undefined &&
    !last.timedOut &&
    now - last.launchedAt > def.maxRunSeconds * 1000
  ) {
    const attempts = run.attempts.map((a) => (a === last ? { ...a, timedOut: true } : a));
    return { run: { ...run, attempts }, kill: { taskId: last.taskId, agentId: last.agentId } };
  }
  return { run };
}
