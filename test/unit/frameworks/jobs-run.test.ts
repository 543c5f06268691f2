import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dueAt, type JobDefinition, parseJobDefinition } from '../../../lib/frameworks/jobs/job.ts';
import {
  applyRunStatus,
  checkClock,
  parseTaskId,
  planJobOffers,
  type Run,
  retryDelayMs,
  startRun,
  taskIdOf,
} from '../../../lib/frameworks/jobs/run.ts';
import type { TaskStatus } from '../../../lib/protocol/common.ts';
import type { Offer } from '../../../lib/protocol/scheduler.ts';

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);

function job(over: Record<string, unknown> = {}): JobDefinition {
  const r = parseJobDefinition({ id: 'nightly', cmd: 'make backup', ...over });
  if (!r.ok) throw new Error(r.error);
  return r.def;
}

const offer = (i: number, cpus = 1): Offer => ({
  offerId: `o${i}`,
  frameworkId: 'f',
  agentId: `a${i}`,
  hostname: `h${i}`,
  resources: { cpus, mem: 1024 },
  attributes: {},
  expiresAt: NOW + 60_000,
});

const status = (taskId: string, state: TaskStatus['state'], extra: Partial<TaskStatus> = {}): TaskStatus => ({
  taskId,
  frameworkId: 'f',
  agentId: 'a1',
  state,
  source: 'SOURCE_AGENT',
  timestamp: NOW,
  ...extra,
});

describe('job definitions and the schedule', () => {
  it('refuses a bad cron expression or time zone, naming the field', () => {
    const r1 = parseJobDefinition({ id: 'j', cmd: 'x', cron: '61 * * * *' });
    expect(r1.ok === false && r1.error).toMatch(/^cron/);
    const r2 = parseJobDefinition({ id: 'j', cmd: 'x', cron: '0 2 * * *', timezone: 'Mars/Olympus' });
    expect(r2.ok).toBe(false);
    expect(parseJobDefinition({ id: 'j', cmd: 'x', concurrencyPolicy: 'SOMETIMES' }).ok).toBe(false);
  });

  it('reads the schedule in the job time zone and runs only the latest missed time', () => {
    const berlin = job({ cron: '0 2 * * *', timezone: 'Europe/Berlin' });
    // 02:00 in Berlin in December is 01:00 UTC.
    expect(dueAt(berlin, NOW, Date.UTC(2026, 11, 4, 1, 0, 1))).toBe(Date.UTC(2026, 11, 4, 1, 0, 0));
    expect(dueAt(berlin, NOW, Date.UTC(2026, 11, 4, 0, 59, 59))).toBeUndefined();
    expect(dueAt(berlin, NOW, Date.UTC(2026, 11, 7, 1, 30))).toBe(Date.UTC(2026, 11, 7, 1, 0, 0));
    expect(dueAt(job(), NOW, NOW + 86_400_000)).toBeUndefined(); // on demand only
  });

  it('a due time falls in (after, now] and is a schedule time', () => {
    const every5 = job({ cron: '*/5 * * * *' });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        (a, span) => {
          const after = NOW + a;
          const d = dueAt(every5, after, after + span);
          if (d === undefined) return;
          expect(d).toBeGreaterThan(after);
          expect(d).toBeLessThanOrEqual(after + span);
          expect(d % 300_000).toBe(0);
        },
      ),
    );
  });
});

describe('runs', () => {
  it('FORBID skips a run while another is active; ALLOW overlaps', () => {
    const first = startRun(job(), [], NOW, 'cron', 'a');
    expect(first.state).toBe('waiting');
    expect(startRun(job(), [first], NOW + 1, 'cron', 'b').state).toBe('skipped');
    expect(startRun(job({ concurrencyPolicy: 'ALLOW' }), [first], NOW + 1, 'cron', 'b').state).toBe(
      'waiting',
    );
  });

  it('task ids carry job, run and attempt, and nothing else parses', () => {
    const run = startRun(job(), [], NOW, 'manual', 'abc-123');
    expect(parseTaskId(taskIdOf(run, 2))).toEqual({ jobId: 'nightly', runId: run.runId, attempt: 2 });
    for (const bad of ['web.1234', 'nightly..1', 'x'.repeat(200), 'Nightly.0001764763200000-a.1'])
      expect(parseTaskId(bad)).toBeUndefined();
  });

  it('retries a failing command maxRetries times, with doubling backoff, then fails', () => {
    const def = job({ maxRetries: 2, retryBackoffSeconds: 1 });
    const jobs = new Map([[def.id, { def, scheduledUntil: 0 }]]);
    let run: Run = startRun(def, [], NOW, 'cron', 'r');
    let now = NOW;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const plan = planJobOffers(jobs, [run], [offer(attempt)], now);
      expect(plan.launches).toHaveLength(1);
      run = plan.launches[0]!.runs[0]!;
      const taskId = run.attempts.at(-1)!.taskId;
      run = applyRunStatus(run, def, status(taskId, 'TASK_RUNNING'), now);
      expect(run.state).toBe('running');
      run = applyRunStatus(run, def, status(taskId, 'TASK_FAILED', { exitCode: 3 }), now);
      if (attempt < 3) {
        expect(run.state).toBe('waiting');
        expect(run.notBefore).toBe(now + retryDelayMs(def, attempt));
        // Not before the backoff ends.
        expect(planJobOffers(jobs, [run], [offer(99)], now).launches).toHaveLength(0);
        now = run.notBefore;
      }
    }
    expect(run.state).toBe('failed');
    expect(run.attempts.map((a) => a.exitCode)).toEqual([3, 3, 3]);
    expect(retryDelayMs(def, 2)).toBe(2000);
  });

  it('an offer seen again launches nothing; FINISHED with exit 0 succeeds', () => {
    const def = job();
    const jobs = new Map([[def.id, { def, scheduledUntil: 0 }]]);
    const run = planJobOffers(jobs, [startRun(def, [], NOW, 'manual', 'r')], [offer(1)], NOW).launches[0]!
      .runs[0]!;
    expect(planJobOffers(jobs, [run], [offer(1)], NOW)).toEqual({ launches: [], declines: ['o1'] });
    const done = applyRunStatus(
      run,
      def,
      status(run.attempts[0]!.taskId, 'TASK_FINISHED', { exitCode: 0 }),
      NOW,
    );
    expect(done.state).toBe('succeeded');
    // A late duplicate changes nothing.
    expect(applyRunStatus(done, def, status(run.attempts[0]!.taskId, 'TASK_FAILED'), NOW)).toBe(done);
  });

  it('the clock fails a run past its starting deadline and kills an attempt past its maximum run time', () => {
    const def = job({ startingDeadlineSeconds: 60, maxRunSeconds: 10 });
    const waiting = startRun(def, [], NOW, 'cron', 'r');
    expect(checkClock(waiting, def, NOW + 59_000).run.state).toBe('waiting');
    expect(checkClock(waiting, def, NOW + 61_000).run).toMatchObject({ state: 'failed', reason: /deadline/ });
    const jobs = new Map([[def.id, { def, scheduledUntil: 0 }]]);
    const launched = planJobOffers(jobs, [waiting], [offer(1)], NOW).launches[0]!.runs[0]!;
    const { run, kill } = checkClock(launched, def, NOW + 11_000);
    expect(kill?.taskId).toBe(launched.attempts[0]!.taskId);
    expect(checkClock(run, def, NOW + 12_000).kill).toBeUndefined(); // asked once
    const ended = applyRunStatus(run, def, status(kill!.taskId, 'TASK_KILLED'), NOW + 12_000);
    expect(ended).toMatchObject({ state: 'failed', reason: 'maximum run time passed' });
  });
});
