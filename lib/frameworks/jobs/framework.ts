/**
 * The jobs framework: a Meso framework over the public scheduler protocol, like the services
 * framework (lib/frameworks/services/framework.ts) — its event queue feeds a handler, its state
 * is a table. `jobsTick()` (a scheduled rule, a timer locally) turns due cron times into runs,
 * enforces starting deadlines and maximum run times, and subscribes when Meso went quiet. The CLI
 * writes jobs and manual runs to the table and sends `JOBS_CHANGED` on the queue.
 */
import { z } from 'zod';
import { PROTOCOL_VERSION, type TaskStatus } from '../../protocol/common.ts';
import type { SchedulerEvent } from '../../protocol/scheduler.ts';
import type { Calls } from '../calls.ts';
import { endsTask } from '../host/ends.ts';
import {
  acknowledge,
  answerHeartbeat,
  builtInQueueName,
  declineAll,
  type FrameworkDeps,
  launchOn,
  mesoError,
  newCalls,
  parseIncoming,
  reconcileAll,
  rolesOf,
  subscribe as subscribeWith,
} from '../host/framework.ts';
import { isSilent } from '../host/meta.ts';
import { dueAt, type JobRecord } from './job.ts';
import {
  applyRunStatus,
  checkClock,
  isActive,
  parseTaskId,
  planJobOffers,
  type Run,
  startRun,
  wantsLaunch,
} from './run.ts';
import { HISTORY_LIMIT, type JobsStore } from './store.ts';

export const JOBS_FRAMEWORK_ID = 'meso-jobs';
export const JOBS_FAILOVER_SECONDS = 7 * 86400;

export type JobsDeps = FrameworkDeps<JobsStore>;

export const JobsChangedSchema = z
  .object({ v: z.literal(1), type: z.literal('JOBS_CHANGED'), jobId: z.string().max(64).optional() })
  .strict();
export const jobsChangedMessage = (jobId?: string) =>
  JSON.stringify({ v: PROTOCOL_VERSION, type: 'JOBS_CHANGED', ...(jobId ? { jobId } : {}) });

export const jobsQueueName = (prefix: string): string => builtInQueueName(prefix, JOBS_FRAMEWORK_ID);

async function loadState(deps: JobsDeps): Promise<{ jobs: Map<string, JobRecord>; runs: Run[] }> {
  const list = await deps.store.listJobs();
  const jobs = new Map(list.map((j) => [j.def.id, j]));
  const runs = (await Promise.all(list.map((j) => deps.store.listRuns(j.def.id)))).flat();
  return { jobs, runs };
}

export async function handleJobsMessage(deps: JobsDeps, messageId: string, body: string): Promise<void> {
  const incoming = parseIncoming(deps, messageId, body, {
    schema: JobsChangedSchema,
    type: 'JOBS_CHANGED',
    badMessageMetric: 'JobsBadMessage',
  });
  if (!incoming) return;
  const calls = newCalls(deps, messageId);
  const now = deps.clock.now();
  if ('mine' in incoming) {
    await offersWanted(deps, calls, now, true);
    return calls.flush();
  }
  await onEvent(deps, calls, incoming.event, now);
  await calls.flush();
}

async function onEvent(deps: JobsDeps, calls: Calls, event: SchedulerEvent, now: number): Promise<void> {
  const _fid = deps.config.frameworkId;
  switch (event.type) {
    case 'SUBSCRIBED': {
      await deps.store.updateMeta({ lastContactAt: now });
      const { runs } = await loadState(deps);
      const live = runs.filter(isActive).flatMap((r) => r.attempts.filter((a) => a.endedAt === undefined));
      reconcileAll(deps, calls, live);
      await offersWanted(deps, calls, now, true);
      return;
    }
    case 'HEARTBEAT':
      await answerHeartbeat(deps, calls, now);
      return;
    case 'OFFERS': {
      const { jobs, runs } = await loadState(deps);
      const plan = planJobOffers(jobs, runs, event.offers, now);
      for (const l of plan.launches) for (const r of l.runs) await deps.store.putRun(r);
      for (const l of plan.launches) launchOn(deps, calls, l.offerId, l.tasks, 1);
      declineAll(deps, calls, plan.declines, 5);
      await offersWanted(deps, calls, now, false);
      return;
    }
    case 'UPDATE':
      await onUpdate(deps, calls, event.status, now);
      return;
    case 'ERROR':
      if (mesoError(deps, event)) await subscribe(deps, calls, now);
      return;
    default:
      return;
  }
}

async function onUpdate(deps: JobsDeps, calls: Calls, status: TaskStatus, now: number): Promise<void> {
  const fid = deps.config.frameworkId;
  const ids = parseTaskId(status.taskId);
  const run = ids ? await deps.store.getRun(ids.jobId, ids.runId) : undefined;
  if (run) {
    const job = await deps.store.getJob(run.jobId);
    const next = applyRunStatus(run, job?.def, status, now);
    if (next !== run) await deps.store.putRun(next);
    if (next.state === 'waiting' && run.state !== 'waiting') await offersWanted(deps, calls, now, true);
  } else if (status.agentId && !endsTask(status.state)) {
    calls.add({ type: 'KILL', frameworkId: fid, taskId: status.taskId, agentId: status.agentId });
  }
  acknowledge(deps, calls, status);
}

/** REVIVE when a run waits (always after a change), SUPPRESS when none does. */
async function offersWanted(deps: JobsDeps, calls: Calls, now: number, changed: boolean): Promise<void> {
  const { runs } = await loadState(deps);
  const want = runs.some((r) => r.state === 'waiting');
  const meta = await deps.store.getMeta();
  if (want && (changed || meta.suppressed || runs.some((r) => wantsLaunch(r, now)))) {
    if (changed || meta.suppressed) calls.add({ type: 'REVIVE', frameworkId: deps.config.frameworkId });
    if (meta.suppressed) await deps.store.updateMeta({ suppressed: false });
  } else if (!want && !meta.suppressed) {
    calls.add({ type: 'SUPPRESS', frameworkId: deps.config.frameworkId });
    await deps.store.updateMeta({ suppressed: true });
  }
}

async function subscribe(deps: JobsDeps, calls: Calls, now: number): Promise<void> {
  const jobs = await deps.store.listJobs();
  await subscribeWith(deps, calls, now, rolesOf(jobs.map((j) => j.def.role)), JOBS_FAILOVER_SECONDS);
}

/**
 * The tick: due cron times become runs (one per job and tick; a time two ticks both see becomes
 * one run, through the schedule mark's conditional update), deadlines and maximum run times are
 * enforced, old history is trimmed, and the framework subscribes when Meso went quiet.
 */
export async function jobsTick(deps: JobsDeps): Promise<void> {
  const now = deps.clock.now();
  const calls = newCalls(deps, `tick-${deps.ids.next()}`);
  const meta = await deps.store.getMeta();
  if (isSilent(meta, now)) await subscribe(deps, calls, now);
  const { jobs, runs } = await loadState(deps);
  let changed = false;
  for (const job of jobs.values()) {
    const due = dueAt(job.def, job.scheduledUntil, now);
    if (due === undefined) continue;
    if (!(await deps.store.advanceSchedule(job.def.id, job.scheduledUntil, due))) continue;
    const run = startRun(job.def, runs, due, 'cron', deps.ids.next());
    await deps.store.putRun(run);
    runs.push(run);
    changed ||= run.state === 'waiting';
    deps.log.info('jobs: run due', { jobId: job.def.id, runId: run.runId, state: run.state });
  }
  for (const run of runs) {
    const { run: next, kill } = checkClock(run, jobs.get(run.jobId)?.def, now);
    if (next !== run) await deps.store.putRun(next);
    if (kill)
      calls.add({
        type: 'KILL',
        frameworkId: deps.config.frameworkId,
        taskId: kill.taskId,
        agentId: kill.agentId,
      });
  }
  for (const job of jobs.values()) {
    const mine = runs.filter((r) => r.jobId === job.def.id).sort((a, b) => (a.runId < b.runId ? 1 : -1));
    for (const old of mine.slice(HISTORY_LIMIT))
      if (!isActive(old)) await deps.store.deleteRun(old.jobId, old.runId);
  }
  await offersWanted(deps, calls, now, changed);
  await calls.flush();
}
