/**
 * Checkpoint and recovery with the agent as a real process (`tsx bin/meso-agent.ts run`, the
 * cluster handed over in the environment) and the test playing the control plane: `kill -9` of
 * the agent while tasks run, a task that exits while the agent is down, then a restart.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRuns } from '../../agent/checkpoint.ts';
import { killCheckpointedTasks } from '../../agent/install.ts';
import { COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS } from '../../agent/session.ts';
import { configToEnv } from '../../lib/config/cluster.ts';
import { isTerminal } from '../../lib/core/task-state.ts';
import type { AgentCallOf } from '../../lib/protocol/agent.ts';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import { createTestCluster, type TestCluster } from '../setup/cluster.ts';
import { TestControlPlane } from './control-plane.ts';
import { tempDir } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FW = 'fw-rec';
const root = process.getuid?.() === 0;

let cluster: TestCluster;
let control: TestControlPlane;
let dir: Awaited<ReturnType<typeof tempDir>>;
const agentId = `rec-${process.pid}`;
const children: ChildProcess[] = [];
let queueUrl: string | undefined;

beforeAll(async () => {
  cluster = await createTestCluster();
  control = new TestControlPlane(cluster.sqs, cluster.config.queues.agentCalls);
  dir = await tempDir();
  // A known agent id, so the test knows the agent's calls before the agent says anything.
  await writeFile(join(dir.path, 'agent-id'), `${agentId}\n`);
  await mkdir(join(dir.path, 'gates'), { mode: 0o755 });
  await chmod(join(dir.path, 'gates'), 0o755);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // Whatever the agents left running dies with the test, and its cgroups go with it.
  await killCheckpointedTasks(dir.path);
  await control?.stop();
  if (queueUrl) await cluster.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => {});
  await cluster?.destroy();
  await dir?.remove();
});

/**
 * `meso-agent run` as a child process (tsx as a loader, not its CLI, which would put the agent in
 * a grandchild that a SIGKILL would miss); its log is kept for a failing test's message.
 */
function startAgent(
  hostname: string,
  o: { pollWaitSeconds?: number } = { pollWaitSeconds: 1 },
): { child: ChildProcess; log: () => string } {
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'bin/meso-agent.ts'),
    'run',
    '--work-dir',
    dir.path,
    '--hostname',
    hostname,
    '--resources',
    'cpus:2;mem:1024;ports:[31000-31010]',
    '--containers',
    'none',
    '--ec2-metadata',
    'off',
    '--monitor-interval-ms',
    '100',
    // Short long-polls by default: a poll the killed agent left open is still handed a message
    // (the emulator does not notice the dead connection), which then stays hidden a while.
    ...(o.pollWaitSeconds !== undefined ? ['--poll-wait-seconds', String(o.pollWaitSeconds)] : []),
    ...(root ? ['--task-user', 'nobody'] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...configToEnv(cluster.config), MESO_AGENT_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (b: Buffer) => {
    log += b.toString();
  });
  children.push(child);
  return { child, log: () => log };
}

async function register(hostname: string): Promise<AgentCallOf<'REGISTER'>> {
  const { body } = await control.take(agentId, 'REGISTER', (c) => c.hostname === hostname);
  queueUrl = body.queueUrl;
  await control.command(body.queueUrl, {
    v: 1,
    type: 'REGISTERED',
    agentId,
    heartbeatIntervalSeconds: 15,
  });
  return body;
}

function next(taskId: string, match: (s: TaskStatus) => boolean = () => true): Promise<TaskStatus> {
  return control
    .take(agentId, 'STATUS_UPDATE', (c) => c.status.taskId === taskId && match(c.status))
    .then((t) => t.body.status);
}

function ack(s: TaskStatus): Promise<void> {
  return control.command(queueUrl!, {
    v: 1,
    type: 'ACKNOWLEDGE',
    frameworkId: s.frameworkId,
    taskId: s.taskId,
    uuid: s.uuid!,
  });
}

async function nextAcked(taskId: string): Promise<TaskStatus> {
  const s = await next(taskId);
  await ack(s);
  return s;
}

/** Waits on a gate file the test creates; then prints and exits with `code`. */
const gated = (taskId: string, code: number) =>
  `while [ ! -f ${join(dir.path, 'gates', taskId)} ]; do sleep 0.05; done; echo "done $MESO_TASK_ID"; exit ${code}`;

describe('agent recovery', () => {
  it('kill -9 with 4 tasks running: after a restart the 3 still running are reported RUNNING then FINISHED, the one that exited meanwhile with its real exit code', async () => {
    const first = startAgent('before-crash');
    let unacked: TaskStatus;
    try {
      await register('before-crash');
      for (const [taskId, code] of [
        ['t1', 0],
        ['t2', 0],
        ['t3', 0],
        ['t4', 3],
      ] as const) {
        await control.command(queueUrl!, {
          v: 1,
          type: 'LAUNCH',
          frameworkId: FW,
          task: {
            taskId,
            agentId,
            resources: { cpus: 0.1, mem: 32 },
            command: { shell: true, value: gated(taskId, code) },
          },
        });
      }
      // Nothing to fetch: each goes STAGING → RUNNING, no STARTING.
      for (const t of ['t1', 't2', 't4']) expect((await nextAcked(t)).state).toBe('TASK_RUNNING');
      // t3's RUNNING is never acknowledged: the restarted agent must send it again.
      unacked = await next('t3');
      expect(unacked.state).toBe('TASK_RUNNING');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- agent log ---\n${first.log()}`);
    }

    // The agent deletes each command once handled; let it, or an ACK still in flight would hold
    // t3's FIFO group for the queue's visibility timeout (30 s) after the crash.
    for (let i = 0; i < 100; i++) {
      const a = await control.queueAttributes(queueUrl!, ['ApproximateNumberOfMessagesNotVisible']);
      if (a.ApproximateNumberOfMessagesNotVisible === '0') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    await new Promise((r) => setTimeout(r, 1200)); // its last long-poll runs out

    // While the agent is down, t4 exits with code 3; its supervisor records it.
    await writeFile(join(dir.path, 'gates', 't4'), '');
    const t4run = listRuns(dir.path).find((f) => f.readRun()?.taskId === 't4')!;
    for (let i = 0; i < 200 && !existsSync(t4run.exitFile); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(t4run.exitFile)).toBe(true);

    const second = startAgent('after-restart');
    try {
      const reg = await register('after-restart');
      expect(reg.tasks?.map((t) => t.taskId).sort()).toEqual(['t1', 't2', 't3']);

      const resent = await next('t3');
      expect(resent).toMatchObject({ state: 'TASK_RUNNING', uuid: unacked.uuid });
      await ack(resent);
      for (const t of ['t1', 't2', 't3']) {
        const s = await nextAcked(t);
        expect(s).toMatchObject({ state: 'TASK_RUNNING', source: 'SOURCE_AGENT' });
        expect(s.message).toMatch(/^recovered after an agent restart/);
      }
      const t4 = await nextAcked('t4');
      expect(t4).toMatchObject({ state: 'TASK_FAILED', exitCode: 3, stdoutTail: 'done t4\n' });
      expect(t4.message).toMatch(/^exited with code 3 while the agent was down/);

      for (const t of ['t1', 't2', 't3']) await writeFile(join(dir.path, 'gates', t), '');
      for (const t of ['t1', 't2', 't3']) {
        const s = await nextAcked(t);
        expect(isTerminal(s.state)).toBe(true);
        expect(s).toMatchObject({ state: 'TASK_FINISHED', exitCode: 0, stdoutTail: `done ${t}\n` });
        // They ended under the restarted agent, not while it was down.
        expect(s.message).toBe('exited with code 0');
      }
      // Every terminal update acknowledged: the checkpoints are gone, the sandboxes stay.
      for (let i = 0; i < 100 && listRuns(dir.path).length > 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(listRuns(dir.path)).toEqual([]);
      expect(existsSync(join(dir.path, 'sandboxes', FW, 't1'))).toBe(true);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- agent log ---\n${second.log()}`);
    } finally {
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');
    }
  });
  it('kill -9 then an immediate restart: the agent registers and recovers its task without waiting out a visibility timeout', async () => {
    // The default 20 s long poll: the killed process leaves one open, and it takes the
    // REGISTERED its successor waits for.
    const first = startAgent('killed', {});
    try {
      await register('killed');
      await control.command(queueUrl!, {
        v: 1,
        type: 'LAUNCH',
        frameworkId: FW,
        task: {
          taskId: 'k1',
          agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { shell: true, value: gated('k1', 0) },
        },
      });
      expect((await nextAcked('k1')).state).toBe('TASK_RUNNING');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- agent log ---\n${first.log()}`);
    }
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');

    const second = startAgent('restarted', {});
    try {
      // Bounded below the command queue's visibility timeout: a restart that waits it out fails.
      const bound = (COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS - 5) * 1000;
      let timer: NodeJS.Timeout | undefined;
      const recovered = (async () => {
        const reg = await register('restarted');
        expect(reg.tasks?.map((t) => t.taskId)).toEqual(['k1']);
        // An update the killed agent sent but had not yet seen acknowledged is resent first
        // (at least once); the recovery's own RUNNING follows it.
        for (;;) {
          const next = await nextAcked('k1');
          if (next.source === 'SOURCE_AGENT' || isTerminal(next.state)) return next;
        }
      })();
      const s = await Promise.race([
        recovered,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`not registered and recovered within ${bound / 1000} s of the restart`)),
            bound,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      expect(s).toMatchObject({ state: 'TASK_RUNNING', source: 'SOURCE_AGENT' });
      expect(s.message).toMatch(/^recovered after an agent restart/);

      await writeFile(join(dir.path, 'gates', 'k1'), '');
      const end = await nextAcked('k1');
      expect(end).toMatchObject({ state: 'TASK_FINISHED', exitCode: 0, stdoutTail: 'done k1\n' });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- agent log ---\n${second.log()}`);
    } finally {
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');
    }
  });
});
