/**
 * `meso run` killed with SIGKILL (no cleanup, no TEARDOWN): its task, holding most of the only
 * agent, must not keep the cluster's resources for the cluster's framework timeout (3 × 60 s).
 * The run asks for a 2 s heartbeat and a 5 s failover timeout (lib/sdk/run-task.ts), so Meso
 * disconnects its framework after 6 s of silence, removes it 5 s later and kills its task; the
 * next `meso run` needing those resources then starts. Real `meso run` processes against the
 * in-process control plane (with no minute sweep: only the framework's own timers can do it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrameworkRecord, TaskRecord } from '../../lib/core/model.ts';
import { ENV } from '../../lib/definition/env.ts';
import type { QueueName } from '../../lib/definition/tables-queues.ts';
import type { Item } from '../../lib/ports/store.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

const MESO = join(resolve(fileURLToPath(new URL('../..', import.meta.url))), 'bin/meso.js');

interface RunProcess {
  readonly child: ChildProcess;
  stderr(): string;
  /** Resolves when stderr matches. */
  saw(pattern: RegExp): Promise<RegExpMatchArray>;
  readonly exited: Promise<{ code: number | null; stdout: string }>;
}

function mesoRun(h: Harness, args: string[]): RunProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_REGION: h.cluster.aws.region };
  for (const [q, url] of Object.entries(h.cluster.queues)) env[ENV.queues(q as QueueName)] = url;
  env[ENV.prefix] = h.cluster.prefix;
  if (h.cluster.aws.sqsEndpoint) env.AWS_ENDPOINT_URL_SQS = h.cluster.aws.sqsEndpoint;
  if (h.cluster.aws.dynamoEndpoint) env.AWS_ENDPOINT_URL_DYNAMODB = h.cluster.aws.dynamoEndpoint;
  const child = spawn(process.execPath, [MESO, 'run', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  const watchers: { pattern: RegExp; found: (m: RegExpMatchArray) => void }[] = [];
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
    for (const w of [...watchers]) {
      const m = stderr.match(w.pattern);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.found(m);
      }
    }
  });
  const exited = new Promise<{ code: number | null; stdout: string }>((done) =>
    child.on('exit', (code) => done({ code, stdout })),
  );
  return {
    child,
    stderr: () => stderr,
    saw: (pattern) => {
      const m = stderr.match(pattern);
      if (m) return Promise.resolve(m);
      return new Promise((found, fail) => {
        watchers.push({ pattern, found });
        void exited.then(({ code }) =>
          fail(new Error(`meso run exited (${code}) before ${pattern}:\n${stderr}`)),
        );
      });
    },
    exited,
  };
}

describe('meso run killed with SIGKILL', { timeout: 150_000 }, () => {
  let h: Harness;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    h = await startHarness({ agents: 1, agentResources: 'cpus:1;mem:512;disk:256' });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await h?.stop();
  });

  it('gives its task’s resources back within seconds: the next run that needs them starts', async () => {
    const first = mesoRun(h, ['--cpus', '0.8', '--name', 'holder', 'sleep 300']);
    children.push(first.child);
    const [, frameworkId] = (await first.saw(/subscribed as framework (\S+);/)) as RegExpMatchArray;
    const [, taskId] = (await first.saw(/launching (\S+) on agent/)) as RegExpMatchArray;
    await first.saw(/→ RUNNING/);

    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    await first.exited;
    // Started at once: it waits for the resources the dead run's task holds.
    const second = mesoRun(h, ['--cpus', '0.8', '--name', 'next', 'echo back']);
    children.push(second.child);
    await second.saw(/launching next-\S+ on agent/);
    const backMs = Date.now() - killedAt;
    const { code, stdout } = await second.exited;
    expect(code, second.stderr()).toBe(0);
    expect(stdout).toContain('back');

    // Meso removed the dead run's framework and killed its task, and the measured time is reported.
    const store = h.controlPlane.deps.store;
    const fw = await store.get<FrameworkRecord & Item>('frameworks', { frameworkId: frameworkId! });
    expect(fw?.status).toBe('TORN_DOWN');
    await eventually(
      async () =>
        (await store.get<TaskRecord & Item>('tasks', { frameworkId: frameworkId!, taskId: taskId! }))
          ?.state === 'TASK_KILLED',
      'the dead run’s task killed',
    );
    process.stderr.write(`kill -9 of meso run → the next run launched: ${(backMs / 1000).toFixed(1)} s\n`);
  });
});
