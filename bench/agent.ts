/**
 * Agent benchmark (`npm run bench:agent`; a script, not a test):
 *
 * 1. **Footprint.** The bundled agent (`dist/meso-agent.mjs`, built first) runs as its own
 *    process with the isolation it detects; the bench plays the control plane over the SQS
 *    emulator (answers REGISTER, acknowledges every update at once). Resident memory (VmRSS) and
 *    CPU (utime + stime over a window) are read from /proc with 0, then 50 running tasks.
 * 2. **Start latency.** An in-process Agent (the same code and isolation) times, for each LAUNCH:
 *    received → process spawned → TASK_RUNNING sent ("sent" = SendMessage returned). The tasks
 *    fetch nothing, so the agent sends no TASK_STARTING: RUNNING is the task's first update and
 *    waits on no acknowledgement.
 *
 * Options: --tasks 50 --launches 200 --window 20 (seconds per CPU window).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Agent } from '../agent/agent.ts';
import { killCheckpointedTasks } from '../agent/install.ts';
import { detectIsolation } from '../agent/isolation/index.ts';
import { silentLog } from '../agent/log.ts';
import { createSqsClient, type SqsApi } from '../lib/adapters/sqs.ts';
import { createSqsHttpClient } from '../lib/adapters/sqs-http.ts';
import { bundleAgent } from '../lib/build/agent-bundle.ts';
import { configToEnv } from '../lib/config/cluster.ts';
import { AGENT_ENV_VARS, NODE_FLAGS } from '../lib/definition/agent-runtime.ts';
import { provision } from '../lib/local/provision.ts';
import type { AgentCall, AgentCommand } from '../lib/protocol/agent.ts';
import { percentile, sleep, startBenchEmulators } from './common.ts';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '50' },
    launches: { type: 'string', default: '200' },
    window: { type: 'string', default: '20' },
    // The second footprint row: Node's defaults unless other flags are given to compare with.
    'compare-flags': { type: 'string', default: '' },
  },
});
const TASKS = Number(values.tasks);
const LAUNCHES = Number(values.launches);
const WINDOW_S = Number(values.window);
const COMPARE_FLAGS = values['compare-flags'].split(' ').filter(Boolean);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUNDLE = join(ROOT, 'dist/meso-agent.mjs');
const FW = 'bench-fw';

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** The control plane's side, as the bench plays it: REGISTERED for REGISTER, ACKNOWLEDGE for every update. */
class BenchControlPlane {
  readonly queues = new Map<string, string>();
  readonly running = new Map<string, number>();
  #stop = false;
  readonly #loop: Promise<void>;
  constructor(
    readonly sqs: SQSClient,
    readonly callsUrl: string,
  ) {
    this.#loop = this.#poll();
  }

  async command(queueUrl: string, c: AgentCommand, group: string): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(c),
        MessageGroupId: group,
        MessageDeduplicationId: randomUUID(),
      }),
    );
  }

  async #poll(): Promise<void> {
    while (!this.#stop) {
      const res = await this.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: this.callsUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      const msgs = res.Messages ?? [];
      if (msgs.length === 0) continue;
      await Promise.all(
        msgs.map(async (m) => {
          const call = JSON.parse(m.Body ?? '{}') as AgentCall;
          if (call.type === 'REGISTER') {
            this.queues.set(call.agentId, call.queueUrl);
            await this.command(
              call.queueUrl,
              { v: 1, type: 'REGISTERED', agentId: call.agentId, heartbeatIntervalSeconds: 15 },
              'control',
            );
          } else if (call.type === 'STATUS_UPDATE') {
            const s = call.status;
            if (s.state === 'TASK_RUNNING') this.running.set(s.taskId, performance.now());
            const q = this.queues.get(call.agentId);
            if (q && s.uuid) {
              await this.command(
                q,
                { v: 1, type: 'ACKNOWLEDGE', frameworkId: s.frameworkId, taskId: s.taskId, uuid: s.uuid },
                `task.${s.taskId}`,
              );
            }
          }
        }),
      );
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.callsUrl,
          Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Median RSS over the window and CPU use as a percentage of one core. */
async function footprint(pid: number, seconds: number): Promise<{ rss: number; cpu: number }> {
  const samples: number[] = [];
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  for (let i = 0; i < seconds; i++) {
    samples.push(rssMb(pid));
    await sleep(1000);
  }
  const cpu = ((cpuTicks(pid) - c0) / CLK_TCK / ((performance.now() - t0) / 1000)) * 100;
  samples.sort((a, b) => a - b);
  return { rss: percentile(samples, 50), cpu };
}

function launch(cp: BenchControlPlane, agentId: string, taskId: string, command: string): Promise<void> {
  return cp.command(
    cp.queues.get(agentId)!,
    {
      v: 1,
      type: 'LAUNCH',
      frameworkId: FW,
      task: { taskId, agentId, resources: { cpus: 0.01, mem: 16 }, command: { shell: true, value: command } },
    },
    `task.${taskId}`,
  );
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let footprints = 0;

async function processFootprint(
  cp: BenchControlPlane,
  env: Record<string, string>,
  nodeFlags: readonly string[],
  tasks: number,
): Promise<{
  idle: { rss: number; cpu: number };
  busy?: { rss: number; cpu: number };
  isolation: string;
  /** LAUNCH handled → RUNNING sent, ms, from the agent's own log (ms timestamps). */
  latency?: number[];
}> {
  const workDir = await mkdtemp(join(tmpdir(), 'meso-bench-agent-'));
  const agentId = `bench-${process.pid}-${++footprints}`;
  await writeFile(join(workDir, 'agent-id'), `${agentId}\n`);
  let log = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeFlags,
      BUNDLE,
      'run',
      '--work-dir',
      workDir,
      '--ec2-metadata',
      'off',
      '--containers',
      'none',
      '--resources',
      'cpus:8;mem:8192',
    ],
    { env: { ...process.env, ...env, MESO_AGENT_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (b: Buffer) => {
    log += b.toString();
  });
  try {
    await waitFor(() => cp.queues.has(agentId), 'REGISTER');
    await sleep(3000); // settle after start
    const idle = await footprint(child.pid!, WINDOW_S);
    const isolation = /isolation: ([^{\n]+)/.exec(log)?.[1]?.trim() ?? '?';
    if (tasks === 0) return { idle, isolation };
    const ids = [...Array(tasks).keys()].map((i) => `fp${footprints}-${i}`);
    for (const id of ids) await launch(cp, agentId, id, 'sleep 3600');
    await waitFor(() => ids.every((id) => cp.running.has(id)), `${tasks} tasks RUNNING`);
    await sleep(3000);
    const busy = await footprint(child.pid!, WINDOW_S);
    // Start latency in the deployed process, one launch at a time, from its log.
    const lat: string[] = [];
    for (let i = 0; i < Math.min(LAUNCHES, 100); i++) {
      const id = `pl${footprints}-${i}`;
      lat.push(id);
      await launch(cp, agentId, id, 'sleep 1');
      await waitFor(() => cp.running.has(id), `RUNNING of ${id}`, 30_000);
      await sleep(20);
    }
    await sleep(200);
    const at = (re: RegExp) => {
      const m = new Map<string, number>();
      for (const line of log.split('\n')) {
        const x = re.exec(line);
        if (x?.[2] && !m.has(x[2])) m.set(x[2], Date.parse(x[1]!));
      }
      return m;
    };
    const launched = at(/^(\S+) INFO {2}launching task \{"frameworkId":"[^"]+","taskId":"([^"]+)"/);
    const running = at(/^(\S+) DEBUG status update sent \{"taskId":"([^"]+)","state":"TASK_RUNNING"/);
    const latency = lat
      .map((id) => (running.get(id) ?? Number.NaN) - (launched.get(id) ?? Number.NaN))
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    return { idle, busy, isolation, latency };
  } finally {
    child.kill('SIGTERM'); // kills its tasks
    await new Promise((r) => child.once('exit', r));
    await killCheckpointedTasks(workDir);
    await rm(workDir, { recursive: true, force: true });
  }
}

async function startLatency(
  cp: BenchControlPlane,
  sqs: SqsApi,
  cluster: { agentCalls: string; prefix: string },
): Promise<Record<string, number[]>> {
  const workDir = await mkdtemp(join(tmpdir(), 'meso-bench-latency-'));
  const root = process.geteuid?.() === 0;
  const isolation = await detectIsolation({ ...(root ? { taskUser: 'nobody' } : {}), containers: 'none' });
  const agent = new Agent({
    sqs,
    agentCallsQueueUrl: cluster.agentCalls,
    prefix: cluster.prefix,
    workDir,
    resources: 'cpus:8;mem:8192;disk:1024',
    isolation,
    pollWaitSeconds: 20,
    log: silentLog,
  });
  const t: Record<string, { launch?: number; spawned?: number; running?: number }> = {};
  agent.on('command', (c) => {
    if (c.type === 'LAUNCH') t[c.task.taskId] = { launch: performance.now() };
  });
  agent.on('taskStarted', (_fw, taskId) => {
    t[taskId]!.spawned = performance.now();
  });
  agent.on('statusSent', (s, attempt) => {
    if (attempt !== 0) return;
    if (s.state === 'TASK_RUNNING' && s.reason === undefined) t[s.taskId]!.running = performance.now();
  });
  await agent.start();
  await waitFor(() => agent.isRegistered, 'in-process agent registration');
  for (let i = 0; i < LAUNCHES; i++) {
    const id = `lat-${i}`;
    await launch(cp, agent.agentId, id, 'sleep 1');
    await waitFor(() => t[id]?.running !== undefined, `RUNNING of ${id}`, 30_000);
    await sleep(20);
  }
  await agent.stop({ killTasks: true, gracePeriodMs: 0 });
  await rm(workDir, { recursive: true, force: true });
  const series = (f: (x: (typeof t)[string]) => number) =>
    Object.values(t)
      .map(f)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
  return {
    'LAUNCH received → process spawned': series((x) => x.spawned! - x.launch!),
    'LAUNCH received → TASK_RUNNING sent': series((x) => x.running! - x.launch!),
  };
}

async function main() {
  if (!existsSync(BUNDLE)) await bundleAgent(BUNDLE);
  const { emulators, aws } = await startBenchEmulators('mesobench');
  const prefix = 'benchagent';
  const p = await provision({ aws, prefix });
  const sqs = createSqsClient(aws);
  const cp = new BenchControlPlane(sqs, p.queues.agentCalls);
  try {
    const env = configToEnv({ aws, prefix, queues: p.queues, tables: p.tables, source: 'bench' });
    // As installed (the unit's node flags and environment), then Node's defaults for comparison.
    const fp = await processFootprint(cp, { ...env, ...AGENT_ENV_VARS }, NODE_FLAGS, TASKS);
    const plain = await processFootprint(cp, env, COMPARE_FLAGS, 0);
    const lat = await startLatency(cp, createSqsHttpClient(aws), { agentCalls: p.queues.agentCalls, prefix });
    const cpuModel = os.cpus()[0]?.model ?? '?';
    console.log(
      `machine: ${os.cpus().length} × ${cpuModel}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    );
    console.log(`isolation: ${fp.isolation}`);
    console.log('');
    console.log(
      `| agent process (dist/meso-agent.mjs) | RSS (median over ${WINDOW_S} s) | CPU (% of one core) |`,
    );
    console.log('| --- | --- | --- |');
    console.log(
      `| idle, 0 tasks (${NODE_FLAGS.join(' ')}, as installed) | ${fp.idle.rss.toFixed(1)} MB | ${fp.idle.cpu.toFixed(2)} % |`,
    );
    console.log(
      `| ${TASKS} running tasks (same) | ${fp.busy!.rss.toFixed(1)} MB | ${fp.busy!.cpu.toFixed(2)} % |`,
    );
    console.log(
      `| idle, 0 tasks (${COMPARE_FLAGS.length > 0 ? COMPARE_FLAGS.join(' ') : "Node's default flags"}) | ${plain.idle.rss.toFixed(1)} MB | ${plain.idle.cpu.toFixed(2)} % |`,
    );
    if (fp.latency && fp.latency.length > 0) {
      console.log('');
      console.log(
        `agent process, from its own log (ms resolution), ${fp.latency.length} launches one at a time: ` +
          `LAUNCH handled → TASK_RUNNING sent p50 ${ms(percentile(fp.latency, 50))}, p99 ${ms(percentile(fp.latency, 99))}`,
      );
    }
    console.log('');
    console.log(`| start latency (${LAUNCHES} launches) | p50 | p99 |`);
    console.log('| --- | --- | --- |');
    for (const [name, s] of Object.entries(lat)) {
      console.log(`| ${name} | ${ms(percentile(s, 50))} | ${ms(percentile(s, 99))} |`);
    }
  } finally {
    await cp.stop();
    sqs.destroy();
    await emulators.stop();
  }
}

await main();
