/**
 * The jobs framework end to end on the local stack with a real agent: a job on a cron schedule
 * (read in a time zone) runs when a test clock reaches its time, its failing command is retried
 * the configured number of times, and every attempt is recorded with its exit code and output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJobs } from '../../lib/cli/jobs.ts';
import { nextAt } from '../../lib/frameworks/jobs/job.ts';
import { quietLogger } from '../../lib/local/control-plane.ts';
import { type LocalJobs, startLocalJobs } from '../../lib/local/jobs.ts';
import { eventually, type Harness, startHarness } from '../integration/harness.ts';
import { mesoCli } from './meso-cli.ts';

describe('meso job on the local stack', () => {
  let h: Harness;
  let jobs: LocalJobs;
  let offset = 0;
  const clock = { now: () => Date.now() + offset };

  const meso = mesoCli(() => ({ jobs: { open: () => openJobs(h.cluster), now: clock.now } }));

  beforeAll(async () => {
    h = await startHarness({ agents: 1 });
    jobs = await startLocalJobs({
      cluster: h.cluster,
      log: quietLogger,
      clock,
      tickIntervalMs: 0,
      retryDelaySeconds: 1,
    });
  });
  afterAll(async () => {
    await jobs?.stop();
    await h?.stop();
  });

  it('runs at its cron time on a test clock and retries a failing command maxRetries times, recording each attempt', async () => {
    const created = await meso(
      'job',
      'create',
      'nightly',
      '--cron',
      '0 2 * * *',
      '--timezone',
      'Europe/Berlin',
      '--cmd',
      'echo "attempt $MESO_ATTEMPT"; exit 3',
      '--max-retries',
      '2',
      '--retry-backoff',
      '0',
    );
    expect(created.code, created.out).toBe(0);
    await jobs.tick();
    expect(await jobs.deps.store.listRuns('nightly')).toEqual([]); // not due yet

    const job = (await jobs.deps.store.getJob('nightly'))!;
    const due = nextAt(job.def, clock.now())!;
    // 02:00 in Berlin is 01:00 or 00:00 UTC.
    expect([0, 1]).toContain(new Date(due).getUTCHours());
    offset = due + 1000 - Date.now();
    await jobs.tick();

    const [run] = await eventually(
      async () => {
        const runs = await jobs.deps.store.listRuns('nightly');
        return runs[0]?.state === 'failed' ? runs : undefined;
      },
      'the run to fail after its retries',
      60_000,
    );
    expect(run!.dueAt).toBe(due);
    expect(run!.trigger).toBe('cron');
    expect(run!.attempts).toHaveLength(3);
    run!.attempts.forEach((a, k) => {
      expect(a.state).toBe('TASK_FAILED');
      expect(a.exitCode).toBe(3);
      expect(a.stdoutTail).toContain(`attempt ${k + 1}`);
    });
    const history = await meso('job', 'history', 'nightly');
    expect(history.out).toMatch(/failed/);
    expect(history.out.match(/exit 3/g)?.length).toBeGreaterThanOrEqual(3);

    // The same time seen again makes no second run; the next day's does.
    await jobs.tick();
    expect(await jobs.deps.store.listRuns('nightly')).toHaveLength(1);
    offset += 86_400_000;
    await jobs.tick();
    expect(await jobs.deps.store.listRuns('nightly')).toHaveLength(2);
    expect((await meso('jobs')).out).toMatch(/^nightly\s+0 2 \* \* \* \(Europe\/Berlin\)/m);
    expect((await meso('job', 'delete', 'nightly')).code).toBe(0);
  });

  it('runs a job on demand, and refuses a bad schedule with a clear error', async () => {
    expect((await meso('job', 'create', 'once', '--cmd', 'echo done')).code).toBe(0);
    expect((await meso('job', 'run', 'once')).code).toBe(0);
    const [run] = await eventually(
      async () => {
        const runs = await jobs.deps.store.listRuns('once');
        return runs[0]?.state === 'succeeded' ? runs : undefined;
      },
      'the run to succeed',
      60_000,
    );
    expect(run!.attempts[0]!.stdoutTail).toContain('done');
    const bad = await meso('job', 'create', 'bad', '--cron', '61 * * * *', '--cmd', 'true');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/cron/);
    expect(await jobs.deps.store.getJob('bad')).toBeUndefined();
  });
});
