/**
 * `meso logs` from a machine that is not the agent's: the CLI runs in a child process with its own
 * empty working directory (no `.meso/dev.json`, no work directory named), configured only by the
 * cluster's environment variables, and — when the tests run as root, as in CI — as the user
 * `nobody`, who cannot read the agent's work directory at all. So the output it prints can only
 * have come through the queues: READ_LOGS to the registry, the agent's LOGS back, the chunk on
 * the caller's own queue.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.ts';
import { saveAcls } from '../../lib/control/acl-store.ts';
import { aclsFromJson } from '../../lib/core/acl.ts';
import { ENV } from '../../lib/definition/env.ts';
import { QUEUES, type QueueName, TABLES, type TableName } from '../../lib/definition/tables-queues.ts';
import type { SchedulerSettings } from '../../lib/sdk/types.ts';
import { testCredentials } from '../setup/cluster.ts';
import { type Harness, type Recorder, startHarness } from './harness.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MESO = join(ROOT, 'bin/meso.js');
const root = process.getuid?.() === 0;
const NOBODY = 65534;

describe('meso logs through the queues, from a process that cannot see the sandbox', () => {
  let h: Harness;
  let agent: Agent;
  let workDir: string;
  let cwd: string;
  let frameworkId: string;
  let r: Recorder;
  let s: Awaited<ReturnType<Harness['framework']>>['s'];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    h = await startHarness({ agents: 0 });
    workDir = await mkdtemp(join(tmpdir(), 'meso-logs-agent-'));
    agent = await h.startAgent({ workDir });
    // The framework's principal is `fwowner` (its SenderId).
    const settings = { sqs: h.as('fwowner'), name: 'logs' };
    ({ s, r } = await h.framework(settings as Partial<SchedulerSettings>));
    frameworkId = s.frameworkId!;
    cwd = await mkdtemp(join(tmpdir(), 'meso-logs-cli-'));
    if (root) {
      await chown(cwd, NOBODY, NOBODY);
      await chmod(cwd, 0o700);
    }
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await h?.stop();
    if (cwd) await rm(cwd, { recursive: true, force: true });
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** The environment of a machine that knows only the cluster's endpoints and its own keys. */
  function env(principal: string): NodeJS.ProcessEnv {
    const c = h.cluster;
    const out: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: cwd,
      AWS_REGION: c.aws.region,
      ...(c.aws.sqsEndpoint ? { AWS_ENDPOINT_URL_SQS: c.aws.sqsEndpoint } : {}),
      ...(c.aws.dynamoEndpoint ? { AWS_ENDPOINT_URL_DYNAMODB: c.aws.dynamoEndpoint } : {}),
      AWS_ACCESS_KEY_ID: testCredentials(principal).accessKeyId,
      AWS_SECRET_ACCESS_KEY: testCredentials(principal).secretAccessKey,
      [ENV.prefix]: c.prefix,
    };
    for (const q of Object.keys(QUEUES) as QueueName[]) out[ENV.queues(q)] = c.queues[q];
    for (const t of Object.keys(TABLES) as TableName[]) out[ENV.tables(t)] = c.tables[t];
    return out;
  }

  function meso(args: string[], principal: string) {
    const child = spawn(process.execPath, [MESO, ...args], {
      cwd,
      env: env(principal),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(root ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    const exited = new Promise<{ code: number | null; out: string; err: string }>((done) =>
      child.once('exit', (code) => done({ code, out, err })),
    );
    return { child, exited, out: () => out };
  }

  async function launch(taskId: string, command: string): Promise<void> {
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [{ taskId, agentId: offer.agentId, resources: { cpus: 0.1, mem: 32 }, command: { value: command } }],
      { refuseSeconds: 0 },
    );
  }

  const forwarded = () => h.controlPlane.counters.get('LogsRequestsForwarded') ?? 0;

  it('cannot read the work directory itself, so anything it prints came through the queues', () => {
    if (!root) return expect(process.getuid?.()).not.toBe(0);
    const tryRead = spawnSync('ls', [join(workDir, 'sandboxes')], { uid: NOBODY, gid: NOBODY });
    expect(tryRead.status).not.toBe(0);
    expect(String(tryRead.stderr)).toContain('Permission denied');
  });

  it("prints the task's stdout, and with --stderr only its stderr", async () => {
    await launch('hello', 'echo out-line-1; echo err-line-1 >&2; printf "out-line-2\\n"');
    await r.terminal('hello');
    const both = await meso(['logs', 'hello', '--framework', frameworkId], 'fwowner').exited;
    expect(both.err).not.toContain('meso:');
    expect(both.code).toBe(0);
    expect(both.out).toBe('out-line-1\nout-line-2\n');
    expect(both.err).toContain('err-line-1');

    const err = await meso(['logs', 'hello', '--framework', frameworkId, '--stderr'], 'fwowner').exited;
    expect(err.code).toBe(0);
    expect(err.out).toBe('');
    expect(err.err).toBe('err-line-1\n');

    const tail = await meso(
      ['logs', 'hello', '--framework', frameworkId, '--stdout', '--tail', '1'],
      'fwowner',
    ).exited;
    expect(tail.code).toBe(0);
    expect(tail.out).toBe('out-line-2\n');
  });

  it('-f shows lines the task writes later, and ends when the task ends; meso task shows a running task its last lines', async () => {
    const gate = await mkdtemp(join(tmpdir(), 'meso-logs-gate-'));
    const go = join(gate, 'go');
    try {
      await launch(
        'follow',
        `echo before; while [ ! -e ${go} ]; do sleep 0.1; done; echo after; echo late-err >&2`,
      );
      await r.update('follow', 'TASK_RUNNING');
      const f = meso(['logs', 'follow', '--framework', frameworkId, '-f'], 'fwowner');
      // The first line arrives while the task still runs (it waits for the gate).
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (f.out().includes('before\n')) return resolve();
          if (f.child.exitCode !== null) return reject(new Error('meso logs -f ended early'));
        };
        f.child.stdout?.on('data', check);
        f.child.once('exit', check);
        check();
      });
      expect(f.child.exitCode).toBeNull();
      expect(f.out()).not.toContain('after');
      // `meso task` of the running task shows its last lines, asked of its agent now.
      const shown = await meso(['task', 'follow', '--framework', frameworkId], 'fwowner').exited;
      expect(shown.code).toBe(0);
      expect(shown.out).toContain('state:     TASK_RUNNING');
      expect(shown.out).toContain('--- stdout (last lines, from its agent now) ---\nbefore');
      await writeFile(go, '');
      const done = await f.exited;
      expect(done.code).toBe(0);
      expect(done.out).toBe('before\nafter\n');
      expect(done.err).toContain('late-err');
    } finally {
      await rm(gate, { recursive: true, force: true });
    }
  });

  it('refuses another principal (FORBIDDEN, nothing forwarded to the agent); an operator the ACLs name may read', async () => {
    const before = forwarded();
    const refused = await meso(['logs', 'hello', '--framework', frameworkId], 'stranger').exited;
    expect(refused.code).toBe(1);
    expect(refused.out).toBe('');
    expect(refused.err).toContain('FORBIDDEN');
    expect(forwarded()).toBe(before);
    expect(h.controlPlane.counters.get('RejectedCalls') ?? 0).toBeGreaterThan(0);

    await saveAcls(
      h.controlPlane.deps.store,
      aclsFromJson({
        access_sandboxes: [{ principals: { values: ['ops'] }, framework_principals: { type: 'ANY' } }],
      }),
      undefined,
      Date.now(),
    );
    // The operator need not know the framework: `meso logs` looks the task up in the tasks table.
    const ops = await meso(['logs', 'hello', '--stdout'], 'ops').exited;
    expect(ops.err).toBe('');
    expect(ops.code).toBe(0);
    expect(ops.out).toBe('out-line-1\nout-line-2\n');
    // The ACL names ops, not everyone: the stranger is still refused.
    const still = await meso(['logs', 'hello', '--framework', frameworkId], 'stranger').exited;
    expect(still.code).toBe(1);
    expect(still.err).toContain('FORBIDDEN');
  });

  it('says so for an unknown task, and times out (no hang) when the agent does not answer', async () => {
    const unknown = await meso(['logs', 'nope', '--framework', frameworkId], 'fwowner').exited;
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('UNKNOWN_TASK');

    await agent.stop();
    const silent = await meso(['logs', 'hello', '--framework', frameworkId, '--timeout', '3'], 'fwowner')
      .exited;
    expect(silent.code).toBe(1);
    expect(silent.err).toMatch(/no answer about task hello within 3 s/);
  });
});
