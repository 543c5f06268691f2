/**
 * Launch benchmark: 1,000 trivial tasks through the local stack (DynamoDB Local + fauxqs, the
 * control plane's handlers behind the local event-source mappings) on 4 in-process agents that
 * run real processes, driven by one framework through the SDK.
 *
 * Reports tasks per second, ACCEPT→RUNNING p50/p99, and AWS API calls per task by service and
 * operation, counted at the clients (every client in this process: control plane, agents,
 * framework). Run: `npm run bench:launch` (options: --tasks N --agents N).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.ts';
import { silentLog } from '../agent/log.ts';
import { apiCalls, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { createSqsClient } from '../lib/adapters/sqs.ts';
import { createSqsHttpClient } from '../lib/adapters/sqs-http.ts';
import type { ClusterConfig } from '../lib/config/cluster.ts';
import { startLocalControlPlane } from '../lib/local/control-plane.ts';
import { provision } from '../lib/local/provision.ts';
import type { TaskStatus } from '../lib/protocol/index.ts';
import { LIMITS } from '../lib/protocol/limits.ts';
import { MesoScheduler } from '../lib/sdk/scheduler.ts';
import { percentile, startBenchEmulators } from './common.ts';

const { values } = parseArgs({
  options: { tasks: { type: 'string', default: '1000' }, agents: { type: 'string', default: '4' } },
});
const TASKS = Number(values.tasks);
const AGENTS = Number(values.agents);
const CPUS_PER_TASK = 0.1;
const MEM_PER_TASK = 32;

async function main() {
  const { emulators, aws } = await startBenchEmulators('mesobench');
  const prefix = 'bench';
  const p = await provision({ aws, prefix });
  const cluster: ClusterConfig = { aws, prefix, queues: p.queues, tables: p.tables, source: 'bench' };
  const cp = startLocalControlPlane({
    cluster,
    dlqs: p.dlqs,
    sweepIntervalMs: 0,
    log: {
      info: () => {},
      warn: () => {},
      error: (m, e) => console.error('[control]', m, JSON.stringify(e)),
    },
  });
  const sqs = createSqsClient(aws);
  const agentSqs = createSqsHttpClient(aws);
  const dirs: string[] = [];
  const agents: Agent[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const workDir = await mkdtemp(join(tmpdir(), 'meso-bench-'));
    dirs.push(workDir);
    const agent = new Agent({
      sqs: agentSqs,
      agentCallsQueueUrl: cluster.queues.agentCalls,
      prefix,
      workDir,
      resources: 'cpus:8;mem:8192;disk:1024',
      log: silentLog,
    });
    const registered = new Promise<void>((r) => agent.once('registered', () => r()));
    await agent.start();
    await registered;
    agents.push(agent);
  }

  apiCalls.clear();
  const s = new MesoScheduler({
    sqs,
    schedulerCallsQueueUrl: cluster.queues.schedulerCalls,
    prefix,
    name: 'bench',
  });
  let next = 0;
  const acceptedAt = new Map<string, number>();
  const toRunning: number[] = [];
  const toStarting: number[] = [];
  const startingToRunning: number[] = [];
  const startingAt = new Map<string, number>();
  let finished = 0;
  let failed = 0;
  const failures = new Map<string, number>();
  const seen = new Set<string>();
  s.on('offers', async (offers) => {
    for (const offer of offers) {
      if (seen.has(offer.offerId)) continue;
      seen.add(offer.offerId);
      const fit = Math.min(
        Math.floor((offer.resources.cpus ?? 0) / CPUS_PER_TASK + 1e-9),
        Math.floor((offer.resources.mem ?? 0) / MEM_PER_TASK),
        TASKS - next,
      );
      if (fit <= 0) {
        await s.decline([offer.offerId], 1);
        continue;
      }
      const tasks = Array.from({ length: fit }, () => {
        const taskId = `b${next++}`;
        return {
          taskId,
          agentId: offer.agentId,
          resources: { cpus: CPUS_PER_TASK, mem: MEM_PER_TASK },
          command: { value: 'true' },
        };
      });
      const now = performance.now();
      for (let i = 0; i < tasks.length; i += LIMITS.tasksPerAccept) {
        const chunk = tasks.slice(i, i + LIMITS.tasksPerAccept);
        for (const t of chunk) acceptedAt.set(t.taskId, now);
        await s.accept([offer.offerId], chunk, { refuseSeconds: 0 });
      }
    }
  });
  const done = new Promise<void>((resolve) => {
    s.on('update', (u: TaskStatus) => {
      if (u.state === 'TASK_STARTING') {
        const t0 = acceptedAt.get(u.taskId);
        if (t0 !== undefined) {
          toStarting.push(performance.now() - t0);
          startingAt.set(u.taskId, performance.now());
        }
      }
      if (u.state === 'TASK_RUNNING') {
        const t1 = startingAt.get(u.taskId);
        if (t1 !== undefined) startingToRunning.push(performance.now() - t1);
        const t0 = acceptedAt.get(u.taskId);
        if (t0 !== undefined) toRunning.push(performance.now() - t0);
      }
      if (u.state === 'TASK_FINISHED') finished++;
      else if (['TASK_FAILED', 'TASK_ERROR', 'TASK_DROPPED', 'TASK_LOST', 'TASK_KILLED'].includes(u.state)) {
        failed++;
        const key = `${u.state} ${u.reason ?? ''} ${(u.message ?? '').slice(0, 80)}`;
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
      if (finished + failed >= TASKS) resolve();
    });
  });
  const start = performance.now();
  await s.subscribe();
  await done;
  const seconds = (performance.now() - start) / 1000;
  const calls = snapshotCalls();

  toRunning.sort((a, b) => a - b);
  const byService = new Map<string, number>();
  for (const [k, v] of Object.entries(calls))
    byService.set(k.split('.')[0]!, (byService.get(k.split('.')[0]!) ?? 0) + v);
  const report = {
    date: new Date().toISOString().slice(0, 10),
    machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    tasks: TASKS,
    agents: AGENTS,
    finished,
    failed,
    ...(failures.size ? { failures: Object.fromEntries(failures) } : {}),
    seconds: Number(seconds.toFixed(2)),
    tasksPerSecond: Number((TASKS / seconds).toFixed(1)),
    acceptToRunningMs: {
      p50: Math.round(percentile(toRunning, 50)),
      p99: Math.round(percentile(toRunning, 99)),
    },
    acceptToStartingMs: {
      p50: Math.round(
        percentile(
          toStarting.sort((a, b) => a - b),
          50,
        ),
      ),
    },
    startingToRunningMs: {
      p50: Math.round(
        percentile(
          startingToRunning.sort((a, b) => a - b),
          50,
        ),
      ),
    },
    callsPerTask: Object.fromEntries(
      Object.entries(calls).map(([k, v]) => [k, Number((v / TASKS).toFixed(2))]),
    ),
    callsPerTaskByService: Object.fromEntries(
      [...byService].map(([k, v]) => [k, Number((v / TASKS).toFixed(2))]),
    ),
  };
  console.log(JSON.stringify(report, null, 2));

  await s.close({ teardown: true, deleteQueue: true });
  await Promise.all(agents.map((a) => a.stop({ killTasks: true })));
  await cp.stop();
  sqs.destroy();
  agentSqs.close();
  await emulators.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

await main();
