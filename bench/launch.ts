/**
 * Launch benchmark: tasks through the local stack (DynamoDB Local + fauxqs, the control plane's
 * real handlers behind the local event-source mappings), agents that run real processes, one
 * framework through the SDK. Prints one JSON object, so runs can be compared line by line:
 *
 * - `calibration`: the emulators' raw ceiling for the calls a task makes, measured after the run
 *   against the same (warm) emulator processes, once the framework, agents and control plane
 *   have stopped: the run's calls (`callsPerTask`) replayed in the same proportions and sizes
 *   (bench/calibrate.ts) by `--calibrate-callers` callers, median of `--calibrate-rounds` rounds
 *   of `--calibrate` seconds;
 * - `burst`: `--tasks` trivial tasks (`true`, 0.1 cpu, 32 MB) launched into offers as they come
 *   (one ACCEPT per offer, at most 64 tasks, the rest left with refuseSeconds 0): tasks/s and
 *   ACCEPT → RUNNING, and each stage (ACCEPT → STARTING → RUNNING → FINISHED) p50/p99 (these
 *   tasks fetch nothing, so the agent sends no STARTING and its two stages are null);
 * - `steady`: `--rate` tasks a second for `--steady` seconds, one task per ACCEPT into an offer
 *   the framework holds: ACCEPT → RUNNING and arrival → RUNNING percentiles;
 * - `callsPerTask` (burst): AWS calls by operation, counted at every client (control plane,
 *   framework, and the agents — in their own processes too);
 * - `lambda` (burst): invocations and handler time per task, per function;
 * - `usdPerMillionTasks` (burst) from list prices: FIFO SQS $0.50/M requests, DynamoDB on-demand
 *   $0.625/M write units (a transaction's item counts twice) and $0.125/M read units (a strongly
 *   consistent get, each item a Scan or Query read or a BatchGetItem asked for), Lambda $0.20/M
 *   invocations plus $0.0000166667 per GB-second at the memory the CDK stack configures;
 *   `dynamodbBySize` and `totalBySize` price DynamoDB by the capacity DynamoDB itself reported
 *   (`dynamodbCapacityPerTask`: `ReturnConsumedCapacity`, by the size of each item written or
 *   read, as AWS bills — a write of a 10 KB agent record is 10 units, not 1), where `dynamodb`
 *   counts an item as one unit (kept so earlier runs compare line by line);
 * - `ceilingTasksPerSecond` and `shareOfCeiling`: the calibrated calls/s over this run's calls
 *   per task — the tasks/s the emulators allow for this run's calls — and the burst's share of it.
 *
 * Each runs in its own process, as in AWS: the control plane (`bench/launch-control.ts`; in this
 * one with `--control-in-process`), the agents (`bench/launch-agent.ts`; in this one with
 * `--in-process`), and the framework (this process). `--control-cpu-prof DIR` writes a CPU
 * profile of the control plane's process there. `controlPlanePerTask` says where the control
 * plane's calls go: store calls by operation and table, messages sent by destination and type.
 * Run: `npm run bench:launch [-- --tasks N --agents N --rate N --steady S --interval S]`
 * (calibration: `--calibrate S --calibrate-rounds N --calibrate-callers N --calibrate-processes N`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.ts';
import { silentLog } from '../agent/log.ts';
import { apiCalls, apiCapacity, apiUnits, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { createSqsClient } from '../lib/adapters/sqs.ts';
import { createSqsHttpClient } from '../lib/adapters/sqs-http.ts';
import { type ClusterConfig, configToEnv } from '../lib/config/cluster.ts';
import type { QueueName } from '../lib/definition/tables-queues.ts';
import { MEMORY_MB } from '../lib/infra/cdk/control-plane.ts';
import { provision } from '../lib/local/provision.ts';
import type { Offer, TaskStatus } from '../lib/protocol/index.ts';
import { LIMITS } from '../lib/protocol/limits.ts';
import { MesoScheduler } from '../lib/sdk/scheduler.ts';
import { calibrate, callMix, ceilingOf } from './calibrate.ts';
import { percentile, sleep, startBenchEmulators } from './common.ts';
import { type ControlPlaneTally, startBenchControlPlane } from './launch-control-plane.ts';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000' },
    agents: { type: 'string', default: '4' },
    'in-process': { type: 'boolean', default: false },
    'control-in-process': { type: 'boolean', default: false },
    'control-cpu-prof': { type: 'string' },
    rate: { type: 'string', default: '10' },
    steady: { type: 'string', default: '20' },
    calibrate: { type: 'string', default: '3' },
    'calibrate-rounds': { type: 'string', default: '3' },
    'calibrate-callers': { type: 'string', default: '64' },
    'calibrate-processes': { type: 'string', default: '2' },
    interval: { type: 'string' },
  },
});
const TASKS = Number(values.tasks);
const AGENTS = Number(values.agents);
const IN_PROCESS = values['in-process'];
const CONTROL_IN_PROCESS = values['control-in-process'];
const RATE = Number(values.rate);
const STEADY_S = Number(values.steady);
const CALIBRATE = {
  seconds: Number(values.calibrate),
  rounds: Number(values['calibrate-rounds']),
  callers: Number(values['calibrate-callers']),
  processes: Number(values['calibrate-processes']),
};
const CPUS_PER_TASK = 0.1;
const MEM_PER_TASK = 32;
const AGENT_RESOURCES = 'cpus:8;mem:8192;disk:1024';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Every DynamoDB call (here and in the processes this one starts) reports the capacity it consumed.
process.env.MESO_COUNT_CAPACITY ??= '1';
const PRICE = { sqs: 0.5, write: 0.625, read: 0.125, invocation: 0.2, gbSecond: 0.0000166667 * 1e6 };
const TERMINAL = ['TASK_FINISHED', 'TASK_FAILED', 'TASK_ERROR', 'TASK_DROPPED', 'TASK_LOST', 'TASK_KILLED'];

const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).map(Number);
const ms = (sorted: number[], ...ps: number[]) =>
  Object.fromEntries(ps.map((p) => [`p${p}`, sorted.length ? Math.round(percentile(sorted, p)) : null]));
const asc = (xs: number[]) => [...xs].sort((a, b) => a - b);
const round = (x: number, d = 2) => Number(x.toFixed(d));

type Ask = <T>(
  command: string | undefined,
  pick: (m: Record<string, unknown>) => T | undefined,
) => Promise<T>;

/** A bench process (`args`: a TypeScript file and its arguments) that takes commands on stdin and answers in JSON lines on stdout. */
function childProcess(args: string[], env: Record<string, string>, nodeArgs: string[] = []) {
  const child: ChildProcess = spawn(
    process.execPath,
    // tsx as a loader in the one process (its CLI would start a second one, which a profile misses).
    [...nodeArgs, '--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, ...args],
    { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const waiting: ((line: Record<string, unknown>) => boolean)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    const i = waiting.findIndex((w) => w(msg));
    if (i >= 0) waiting.splice(i, 1);
  });
  const ask: Ask = (command, pick) =>
    new Promise((resolve) => {
      waiting.push((m) => {
        const v = pick(m);
        if (v === undefined) return false;
        resolve(v);
        return true;
      });
      if (command) child.stdin!.write(`${command}\n`);
    });
  return { ask, child };
}

/** What the bench reads off the control plane, wherever it runs. */
interface ControlReport {
  readonly calls: Record<string, number>;
  readonly units: Record<string, number>;
  /** DynamoDB's reported capacity, `read` and `write` (absent from a process that counts none). */
  readonly capacity?: Record<string, number>;
  readonly lambda: Record<string, { invocations: number; ms: number }>;
  readonly detail: Record<string, number>;
}

interface BenchControl {
  readonly allocationIntervalSeconds: number;
  report(): Promise<ControlReport>;
  reset(): void;
  stop(): Promise<void>;
}

async function startControl(cluster: ClusterConfig, dlqs: Record<QueueName, string>): Promise<BenchControl> {
  const interval = values.interval !== undefined ? Number(values.interval) : undefined;
  if (CONTROL_IN_PROCESS) {
    const { cp, tally } = startBenchControlPlane(cluster, dlqs, interval);
    const copy = (t: ControlPlaneTally) => ({
      lambda: Object.fromEntries([...t.lambda].map(([k, v]) => [k, { ...v }])),
      detail: Object.fromEntries(t.detail),
    });
    // Calls and units are counted in this process's tally with the framework's.
    return {
      allocationIntervalSeconds: cp.deps.config.allocationIntervalSeconds,
      report: async () => ({ calls: {}, units: {}, ...copy(tally) }),
      reset: () => {
        tally.lambda.clear();
        tally.detail.clear();
      },
      stop: () => cp.stop(),
    };
  }
  const prof = values['control-cpu-prof'];
  const { ask, child } = childProcess(
    [join(ROOT, 'bench/launch-control.ts'), JSON.stringify({ cluster, dlqs, interval })],
    {},
    prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [],
  );
  const started = await ask(undefined, (m) => (m.started ? m : undefined));
  return {
    allocationIntervalSeconds: Number(started.allocationIntervalSeconds),
    report: () => ask('calls', (m) => (m.calls ? (m as unknown as ControlReport) : undefined)),
    reset: () => child.stdin!.write('reset\n'),
    stop: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      await ask('stop', (m) => (m.stopped ? true : undefined));
      await exited;
    },
  };
}

/** An agent: in this process, or its own (bench/launch-agent.ts), answering on stdout. */
interface BenchAgent {
  calls(): Promise<{ calls: Record<string, number>; units: Record<string, number> }>;
  reset(): void;
  stop(): Promise<void>;
}

async function startAgents(
  cluster: ClusterConfig,
  dirs: string[],
): Promise<{ agents: BenchAgent[]; close: () => void }> {
  const agentSqs = IN_PROCESS ? createSqsHttpClient(cluster.aws) : undefined;
  const started = Array.from({ length: AGENTS }, async (): Promise<BenchAgent> => {
    const workDir = await mkdtemp(join(tmpdir(), 'meso-bench-'));
    dirs.push(workDir);
    if (agentSqs) {
      const agent = new Agent({
        sqs: agentSqs,
        agentCallsQueueUrl: cluster.queues.agentCalls,
        prefix: cluster.prefix,
        workDir,
        resources: AGENT_RESOURCES,
        log: silentLog,
      });
      const registered = new Promise<void>((r) => agent.once('registered', () => r()));
      await agent.start();
      await registered;
      // In-process agents count into this process's tally with everyone else.
      return {
        calls: async () => ({ calls: {}, units: {} }),
        reset: () => {},
        stop: () => agent.stop({ killTasks: true }),
      };
    }
    const { ask, child } = childProcess(
      [
        join(ROOT, 'bench/launch-agent.ts'),
        cluster.queues.agentCalls,
        cluster.prefix,
        workDir,
        AGENT_RESOURCES,
      ],
      configToEnv(cluster),
    );
    await ask(undefined, (m) => (m.registered ? true : undefined));
    return {
      calls: () =>
        ask('calls', (m) =>
          m.calls
            ? { calls: m.calls as Record<string, number>, units: (m.units ?? {}) as Record<string, number> }
            : undefined,
        ),
      reset: () => child.stdin!.write('reset\n'),
      stop: async () => {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        await ask('stop', (m) => (m.stopped ? true : undefined));
        await exited;
      },
    };
  });
  const agents = await Promise.all(started);
  return { agents, close: () => agentSqs?.close() };
}

async function main() {
  const load = { start: await loadavg(), end: [] as number[] };
  const { emulators, aws } = await startBenchEmulators('mesobench');
  const prefix = 'bench';
  const p = await provision({ aws, prefix });
  const cluster: ClusterConfig = { aws, prefix, queues: p.queues, tables: p.tables, source: 'bench' };

  const control = await startControl(cluster, p.dlqs);
  const sqs = createSqsClient(aws);
  const dirs: string[] = [];
  const { agents, close: closeAgentClient } = await startAgents(cluster, dirs);

  apiCalls.clear();
  apiUnits.clear();
  apiCapacity.clear();
  control.reset();
  for (const a of agents) a.reset();
  const s = new MesoScheduler({
    sqs,
    schedulerCallsQueueUrl: cluster.queues.schedulerCalls,
    prefix,
    name: 'bench',
  });

  // Per task: when it was accepted (or arrived, steady) and when each update came.
  const at = new Map<string, { arrived?: number; accepted: number; starting?: number; running?: number }>();
  const stage = { toStarting: [] as number[], toRunning: [] as number[], startToRun: [] as number[] };
  const runToEnd: number[] = [];
  const failures = new Map<string, number>();
  let mode: 'burst' | 'steady' = 'burst';
  let next = 0;
  let ended = 0;
  let failed = 0;
  let onEnded = () => {};
  const held: Offer[] = [];
  const pending: { taskId: string; arrived: number }[] = [];

  const launchSteady = async () => {
    while (pending.length > 0 && held.length > 0) {
      const offer = held.shift()!;
      if (offer.expiresAt !== undefined && offer.expiresAt < Date.now() + 2000) continue; // about to expire
      const t = pending.shift()!;
      at.set(t.taskId, { arrived: t.arrived, accepted: performance.now() });
      await s.accept(
        [offer.offerId],
        [
          {
            taskId: t.taskId,
            agentId: offer.agentId,
            resources: { cpus: CPUS_PER_TASK, mem: MEM_PER_TASK },
            command: { value: 'true' },
          },
        ],
        { refuseSeconds: 0 },
      );
    }
  };
  s.on('rescind', (id) => {
    const i = held.findIndex((o) => o.offerId === id);
    if (i >= 0) held.splice(i, 1);
  });
  s.on('offers', async (offers) => {
    for (const offer of offers) {
      if (mode === 'steady') {
        held.push(offer);
        continue;
      }
      const fit = Math.min(
        Math.floor((offer.resources.cpus ?? 0) / CPUS_PER_TASK + 1e-9),
        Math.floor((offer.resources.mem ?? 0) / MEM_PER_TASK),
        TASKS - next,
        LIMITS.tasksPerAccept,
      );
      if (fit <= 0) {
        held.push(offer); // kept for the steady phase
        continue;
      }
      const tasks = Array.from({ length: fit }, () => ({
        taskId: `b${next++}`,
        agentId: offer.agentId,
        resources: { cpus: CPUS_PER_TASK, mem: MEM_PER_TASK },
        command: { value: 'true' },
      }));
      const now = performance.now();
      for (const t of tasks) at.set(t.taskId, { accepted: now });
      await s.accept([offer.offerId], tasks, { refuseSeconds: 0 });
    }
    if (mode === 'steady') await launchSteady();
  });
  s.on('update', (u: TaskStatus) => {
    const t = at.get(u.taskId);
    if (!t) return;
    const now = performance.now();
    if (u.state === 'TASK_STARTING' && t.starting === undefined) {
      t.starting = now;
      stage.toStarting.push(now - t.accepted);
    }
    if (u.state === 'TASK_RUNNING' && t.running === undefined) {
      t.running = now;
      stage.toRunning.push(now - t.accepted);
      if (t.starting !== undefined) stage.startToRun.push(now - t.starting);
    }
    if (TERMINAL.includes(u.state)) {
      if (t.running !== undefined) runToEnd.push(now - t.running);
      if (u.state !== 'TASK_FINISHED') {
        failed++;
        const key = `${u.state} ${u.reason ?? ''} ${(u.message ?? '').slice(0, 60)}`;
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
      ended++;
      onEnded();
    }
  });
  const allEnded = (n: number) =>
    new Promise<void>((resolve) => {
      onEnded = () => ended >= n && resolve();
      onEnded();
    });

  // Burst.
  const start = performance.now();
  await s.subscribe();
  await allEnded(TASKS);
  const seconds = (performance.now() - start) / 1000;
  const calls = new Map(Object.entries(snapshotCalls()));
  // Calls by process (with the control plane or the agents in this one, theirs count as the framework's).
  const sum = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
  const byProcess = { framework: sum(Object.fromEntries(calls)), agents: 0, controlPlane: 0 };
  const units = new Map(apiUnits);
  for (const a of agents) {
    const theirs = await a.calls();
    byProcess.agents += sum(theirs.calls);
    for (const [k, v] of Object.entries(theirs.calls)) calls.set(k, (calls.get(k) ?? 0) + v);
    for (const [k, v] of Object.entries(theirs.units)) units.set(k, (units.get(k) ?? 0) + v);
  }
  const fromControl = await control.report();
  byProcess.controlPlane = sum(fromControl.calls);
  for (const [k, v] of Object.entries(fromControl.calls)) calls.set(k, (calls.get(k) ?? 0) + v);
  for (const [k, v] of Object.entries(fromControl.units)) units.set(k, (units.get(k) ?? 0) + v);
  const capacity = new Map(apiCapacity);
  for (const [k, v] of Object.entries(fromControl.capacity ?? {}))
    capacity.set(k, (capacity.get(k) ?? 0) + v);
  const lambdaBurst = new Map(Object.entries(fromControl.lambda));
  const burst = {
    tasks: TASKS,
    finished: TASKS - failed,
    failed,
    ...(failures.size ? { failures: Object.fromEntries(failures) } : {}),
    seconds: round(seconds),
    tasksPerSecond: round(TASKS / seconds, 1),
    acceptToRunningMs: ms(asc(stage.toRunning), 50, 99),
    stagesMs: {
      acceptToStarting: ms(asc(stage.toStarting), 50, 99),
      startingToRunning: ms(asc(stage.startToRun), 50, 99),
      runningToFinished: ms(asc(runToEnd), 50, 99),
    },
  };

  // Steady load: one task per ACCEPT, arriving at RATE a second.
  mode = 'steady';
  stage.toRunning.length = 0;
  const arrivalToRunning: number[] = [];
  const steadyTasks = Math.round(RATE * STEADY_S);
  const steadyFrom = ended;
  const steadyStart = performance.now();
  for (let i = 0; i < steadyTasks; i++) {
    const due = steadyStart + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push({ taskId: `s${i}`, arrived: performance.now() });
    void launchSteady();
  }
  let cap: NodeJS.Timeout | undefined;
  await Promise.race([
    allEnded(steadyFrom + steadyTasks),
    new Promise<void>((r) => {
      cap = setTimeout(r, 120_000);
    }),
  ]);
  clearTimeout(cap);
  for (const [id, t] of at)
    if (id.startsWith('s') && t.running !== undefined && t.arrived !== undefined)
      arrivalToRunning.push(t.running - t.arrived);
  const steadyAccept = [...at]
    .filter(([id, t]) => id.startsWith('s') && t.running !== undefined)
    .map(([, t]) => t.running! - t.accepted);
  const steady = {
    ratePerSecond: RATE,
    seconds: STEADY_S,
    tasks: steadyTasks,
    running: arrivalToRunning.length,
    acceptToRunningMs: ms(asc(steadyAccept), 50, 90, 99),
    arrivalToRunningMs: ms(asc(arrivalToRunning), 50, 90, 99),
  };

  // Calls, cost and ceiling, per burst task.
  const per = (n: number) => n / TASKS;
  const byService = new Map<string, number>();
  for (const [k, v] of calls) byService.set(k.split('.')[0]!, (byService.get(k.split('.')[0]!) ?? 0) + v);
  const sqsCalls = byService.get('SQS') ?? 0;
  const ddbCalls = byService.get('DynamoDB') ?? 0;
  const c = (op: string) => calls.get(`DynamoDB.${op}`) ?? 0;
  const writeUnits =
    c('PutItem') + c('UpdateItem') + c('DeleteItem') + 2 * (units.get('DynamoDB.TransactWriteItems') ?? 0);
  const readUnits =
    c('GetItem') +
    (units.get('DynamoDB.Scan') ?? 0) +
    (units.get('DynamoDB.Query') ?? 0) +
    (units.get('DynamoDB.BatchGetItem') ?? 0);
  let invocations = 0;
  let gbSeconds = 0;
  const lambdaReport: Record<string, unknown> = {};
  for (const [fn, l] of lambdaBurst) {
    const memoryMb = MEMORY_MB[fn as keyof typeof MEMORY_MB];
    invocations += l.invocations;
    gbSeconds += (l.ms / 1000) * (memoryMb / 1024);
    lambdaReport[fn] = {
      invocationsPerTask: round(per(l.invocations), 3),
      msPerInvocation: round(l.ms / Math.max(1, l.invocations), 1),
      memoryMb,
    };
  }
  const usd = {
    sqs: per(sqsCalls) * PRICE.sqs,
    dynamodb: per(writeUnits) * PRICE.write + per(readUnits) * PRICE.read,
    lambda: per(invocations) * PRICE.invocation + per(gbSeconds) * PRICE.gbSecond,
    dynamodbBySize:
      per(capacity.get('write') ?? 0) * PRICE.write + per(capacity.get('read') ?? 0) * PRICE.read,
  };
  // The emulators' ceiling for these calls, measured now that they are warm and nothing else
  // calls them (its items land in `meta` only now).
  await s.close({ teardown: true, deleteQueue: true });
  await Promise.all(agents.map((a) => a.stop()));
  closeAgentClient();
  await control.stop();
  sqs.destroy();
  const mix = callMix(Object.fromEntries(calls), Object.fromEntries(units), TASKS);
  const loadBeforeCalibration = await loadavg();
  // A calibration that fails still leaves the run's figures to print.
  const calibrated = await calibrate(cluster, mix, CALIBRATE).catch((e: Error) => ({ error: e.message }));
  const calibration = {
    ...calibrated,
    loadavg: loadBeforeCalibration,
    uncalibratedCallsPerTask: Object.fromEntries(
      Object.entries(mix.uncalibratedPerTask).map(([k, v]) => [k, round(v, 3)]),
    ),
  };
  const ceiling =
    'callsPerSecond' in calibrated
      ? ceilingOf(
          { tasksPerSecond: burst.tasksPerSecond, callsPerTask: per(sqsCalls + ddbCalls) },
          calibrated.callsPerSecond,
        )
      : undefined;
  load.end = await loadavg();
  const report = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    loadavg: load,
    agents: AGENTS,
    agentProcesses: !IN_PROCESS,
    controlPlaneProcess: !CONTROL_IN_PROCESS,
    allocationIntervalSeconds: control.allocationIntervalSeconds,
    burst,
    steady,
    callsPerTask: Object.fromEntries([...calls].sort().map(([k, v]) => [k, round(per(v))])),
    callsPerTaskByService: Object.fromEntries([...byService].map(([k, v]) => [k, round(per(v))])),
    callsPerTaskByProcess: Object.fromEntries(Object.entries(byProcess).map(([k, v]) => [k, round(per(v))])),
    dynamodbUnitsPerTask: { write: round(per(writeUnits)), read: round(per(readUnits)) },
    dynamodbCapacityPerTask: {
      write: round(per(capacity.get('write') ?? 0)),
      read: round(per(capacity.get('read') ?? 0)),
      byTable: Object.fromEntries(
        [...capacity]
          .filter(([k]) => k.includes(' '))
          .sort()
          .map(([k, v]) => [k, round(per(v))]),
      ),
    },
    controlPlanePerTask: Object.fromEntries(
      Object.entries(fromControl.detail)
        .sort()
        .map(([k, v]) => [k, round(per(v), 3)]),
    ),
    lambda: lambdaReport,
    usdPerMillionTasks: {
      sqs: round(usd.sqs),
      dynamodb: round(usd.dynamodb),
      lambda: round(usd.lambda),
      total: round(usd.sqs + usd.dynamodb + usd.lambda),
      dynamodbBySize: round(usd.dynamodbBySize),
      totalBySize: round(usd.sqs + usd.dynamodbBySize + usd.lambda),
    },
    calibration,
    ceilingTasksPerSecond: ceiling ? round(ceiling.ceilingTasksPerSecond, 1) : null,
    shareOfCeiling: ceiling ? round(ceiling.shareOfCeiling, 3) : null,
  };
  console.log(JSON.stringify(report, null, 2));

  await emulators.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

await main();
