/**
 * The two commands a user types: `meso dev` (what `npm start` runs) brings up emulators, control
 * plane and an agent, and `meso run` in another process runs a task on it through the files and
 * queues alone. Real processes throughout; a temporary directory stands in for the checkout so a
 * developer's own running stack is left alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { awsConfigFromEnv } from '../../lib/adapters/aws-config.ts';
import { deprovision } from '../../lib/local/provision.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MESO = join(ROOT, 'bin/meso.js');

function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MESO, ...args], {
      cwd,
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

const embedded = inject('emulators')?.embedded !== false;
const prefix = `e2e${process.pid}`;

describe('meso dev + meso run', () => {
  let dir: string;
  let dev: ChildProcess;
  let devOut = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meso-e2e-'));
    // The embedded emulators of `meso dev`, not the test run's: unset what the test setup exported.
    // Against LocalStack (AWS_ENDPOINT_URL, where Java for the embedded ones may be missing)
    // `meso dev` uses that endpoint instead, as a user's would, under a prefix of its own.
    const env = { ...process.env };
    for (const k of Object.keys(env))
      if ((embedded && k.startsWith('AWS_ENDPOINT_URL')) || k.startsWith('MESO_QUEUE_')) delete env[k];
    if (!embedded)
      console.warn(`LocalStack mode: meso dev runs against ${env.AWS_ENDPOINT_URL}, not embedded emulators`);
    const args = [
      'dev',
      '--resources',
      'cpus:2;mem:1024;disk:1024',
      ...(embedded ? [] : ['--prefix', prefix]),
    ];
    dev = spawn(process.execPath, [MESO, ...args], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev.stderr?.on('data', (d) => (devOut += d));
    await new Promise<void>((ready, fail) => {
      dev.stdout?.on('data', (d) => {
        devOut += d;
        if (devOut.includes('Meso is running')) ready();
      });
      dev.once('exit', (code) => fail(new Error(`meso dev exited with ${code}:\n${devOut}`)));
    });
  }, 180_000);

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      const exited = new Promise((r) => dev.once('exit', r));
      dev.kill('SIGINT');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
    // LocalStack keeps what meso dev created; the embedded emulators went with it.
    if (!embedded) await deprovision({ aws: awsConfigFromEnv(), prefix });
  });

  it('writes .meso/dev.json when ready', () => {
    expect(existsSync(join(dir, '.meso/dev.json'))).toBe(true);
  });

  it('meso run shows the progress and the output of a task and exits 0', async () => {
    const r = await run(
      ['run', '--cpus', '0.5', '--mem', '64', '--', 'sh', '-c', 'echo hello from meso'],
      dir,
    );
    // Nothing to fetch: STAGING → RUNNING → FINISHED, no STARTING.
    expect(r.stdout + r.stderr).toMatch(/STAGING → RUNNING[\s\S]*RUNNING → FINISHED/);
    expect(r.stdout + r.stderr).not.toContain('STARTING');
    expect(r.stdout).toContain('hello from meso');
    expect(r.code).toBe(0);
  });

  it('a failing command exits non-zero and shows the state, the reason, the exit code and stderr', async () => {
    const r = await run(['run', '--', 'sh', '-c', 'echo it broke >&2; exit 4'], dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/TASK_FAILED|FAILED/);
    expect(r.stderr).toMatch(/exit(ed with)? code:? 4|exit code 4/i);
    expect(r.stderr).toContain('it broke');
  });

  it('Ctrl-C stops everything and removes .meso/dev.json, even when it arrives twice', async () => {
    const exited = new Promise<number | null>((r) => dev.once('exit', r));
    const stopping = new Promise<void>((r) => {
      const seen = () => devOut.includes('stopping Meso');
      dev.stdout?.on('data', () => seen() && r());
      if (seen()) r();
    });
    dev.kill('SIGINT');
    // Under `npm start` the terminal's Ctrl-C reaches meso dev twice (tsx relays it): the second
    // one, mid-cleanup, must not cut the cleanup short.
    await stopping;
    dev.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(devOut).toContain('Stopped.');
    expect(existsSync(join(dir, '.meso/dev.json'))).toBe(false);
  });
});
