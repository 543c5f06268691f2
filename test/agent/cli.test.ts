/**
 * `meso agents`, `meso task` and `meso logs` against a whole in-process Meso (the integration
 * harness: real handlers, DynamoDB and SQS emulators) with an agent that isolates its tasks.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.ts';
import { createDynamoClient, DynamoStore } from '../../lib/adapters/dynamo-store.ts';
import { runProgram } from '../../lib/cli/program.ts';
import { runTask } from '../../lib/sdk/run-task.ts';
import { type Harness, startHarness } from '../integration/harness.ts';

const root = process.getuid?.() === 0;
let h: Harness;
let agent: Agent;
let dynamo: ReturnType<typeof createDynamoClient>;

beforeAll(async () => {
  h = await startHarness({ agents: 0 });
  agent = await h.startAgent({
    isolation: { ...(root ? { taskUser: 'nobody' } : {}), containers: 'none' },
    monitorIntervalMs: 100,
  });
  dynamo = createDynamoClient(h.cluster.aws);
});

afterAll(async () => {
  dynamo?.destroy();
  await h?.stop();
});

function io() {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      onInterrupt: () => () => {},
      exit: (code: number): never => {
        throw new Error(`exit ${code}`);
      },
    },
    out: () => out,
    err: () => err,
  };
}

async function meso(args: string[]) {
  const c = io();
  const code = await runProgram(args, {
    io: c.io,
    store: { openStore: () => ({ store: new DynamoStore(dynamo, h.cluster.tables), close: () => {} }) },
    logs: { workDirs: () => [], pollMs: 20 },
  });
  return { code, out: c.out(), err: c.err() };
}

function run(command: string, taskId: string) {
  return runTask({
    sqs: h.sqs,
    schedulerCallsQueueUrl: h.cluster.queues.schedulerCalls,
    prefix: h.cluster.prefix,
    command,
    taskId,
    cpus: 0.1,
    mem: 32,
  });
}

const workDir = (sandbox: string) => resolve(sandbox, '../../../..');

describe('operator views of agents and tasks', () => {
  it('meso agents says which isolation each agent enforces', async () => {
    const r = await meso(['agents']);
    expect(r.code).toBe(0);
    const [header, row] = r.out.split('\n');
    expect(header).toMatch(/^AGENT\s+HOSTNAME\s+STATUS\s+SEEN\s+TASKS\s+RESOURCES\s+ISOLATION\s+CONTAINERS/);
    expect(row).toContain(agent.agentId);
    expect(row).toContain(agent.isolation.attributes()['meso.isolation']!);
    expect(row).toMatch(/ACTIVE/);
    expect(row).toMatch(/\bnone\b/); // containers
  });

  it('meso task shows why a task failed, with the end of its output', async () => {
    const result = await run(
      'echo partial output; echo "config file missing: /etc/app.conf" >&2; exit 4',
      'cli-fail',
    );
    expect(result.status.state).toBe('TASK_FAILED');
    const r = await meso(['task', 'cli-fail']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`task cli-fail (meso-run) of framework ${result.frameworkId}`);
    expect(r.out).toContain(`agent:     ${agent.agentId}`);
    expect(r.out).toMatch(/^state: {5}TASK_FAILED, \d+s ago$/m);
    expect(r.out).toContain('exit code: 4');
    expect(r.out).toContain('message:   exited with code 4');
    expect(r.out).toContain('--- stdout (last lines) ---\npartial output');
    expect(r.out).toContain('--- stderr (last lines) ---\nconfig file missing: /etc/app.conf');

    const missing = await meso(['task', 'no-such-task']);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('meso: no task no-such-task is recorded\n');
  });

  it("meso logs prints a local task's stdout and stderr, and -f follows it to its end", async () => {
    const done = await run('echo one; echo two >&2', 'cli-logs');
    const sandbox = agent.task(done.frameworkId, 'cli-logs')!.sandbox;
    const r = await meso(['logs', 'cli-logs', '--work-dir', workDir(sandbox)]);
    expect(r).toMatchObject({ code: 0, out: 'one\n', err: 'two\n' });
    const tail = await meso(['logs', 'cli-logs', '--work-dir', workDir(sandbox), '--stdout', '--tail', '1']);
    expect(tail).toMatchObject({ out: 'one\n', err: '' });

    // A task that prints over time: -f shows everything and returns once the task has ended.
    const slow = run('for i in 1 2 3; do echo tick $i; sleep 0.2; done', 'cli-follow');
    let following: Promise<{ code: number; out: string; err: string }> | undefined;
    for (let i = 0; i < 200 && !following; i++) {
      const found = agent.runningTasks().find((t) => t.taskId === 'cli-follow');
      if (found && existsSync(join(found.sandbox, 'stdout')))
        following = meso(['logs', 'cli-follow', '-f', '--work-dir', workDir(found.sandbox)]);
      else await new Promise((r) => setTimeout(r, 10));
    }
    await slow;
    const f = await following!;
    expect(f).toMatchObject({ code: 0, out: 'tick 1\ntick 2\ntick 3\n' });

    const none = await meso(['logs', 'nope', '--work-dir', workDir(sandbox)]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/^meso: no sandbox of task nope in /);
  });
});
