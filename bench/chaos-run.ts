/**
 * The chaos run: several agents and frameworks launching and killing many tasks on the local stack
 * (DynamoDB Local + fauxqs, the control plane's real handlers, real agents running real processes,
 * frameworks through the SDK) while faults are injected everywhere:
 *
 * - agents: cut off the network (a partition, then healed), crashed with their tasks (the node dies)
 *   and restarted, restarted as a process (their tasks keep running), and marked gone by an operator;
 * - frameworks: fail over to a new process with a new queue;
 * - handler invocations: time out half-way through a batch, crash before doing anything, or get
 *   their batch twice;
 * - DynamoDB: throttling, spurious conditional-check failures, a handler that dies right after its
 *   write lands, a write whose answer is lost (a timeout after it landed);
 * - SQS: sends that fail, sends that get out before their handler dies, messages delivered twice,
 *   delayed sends;
 * - the control plane's AWS clients are thrown away and recreated mid-flight.
 *
 * Injected faults are transient, as real ones are: a message meets them on its first three
 * deliveries at most, so none should reach a dead-letter queue. After the fault phase everything is
 * healed and left to settle, and the invariants are checked. The fault schedule comes from a seeded
 * generator: the same seed injects the same faults at the same calls (timing still varies from run
 * to run, so a replay is close, not identical).
 *
 * The parts: chaos/faults.ts (what fails), chaos/actors.ts (the agents and frameworks, and what
 * they saw), lib/testing/invariants.ts (the checks, shared with the integration tests). This file
 * runs the phases: set up, inject faults, settle, check, report, tear down.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiCalls, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { deadLetterQueues, listDeadLetters } from '../lib/adapters/dlq.ts';
import { createSqsClient } from '../lib/adapters/sqs.ts';
import type { ClusterConfig } from '../lib/config/cluster.ts';
import { markGone } from '../lib/control/liveness.ts';
import type { FrameworkRecord } from '../lib/core/model.ts';
import { isTerminal } from '../lib/core/task-state.ts';
import type { QueueName } from '../lib/definition/tables-queues.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../lib/local/control-plane.ts';
import type { Item } from '../lib/ports/store.ts';
import {
  checkingStore,
  everyTaskTerminalOrRunning,
  everyUpdateDelivered,
  frameworkDisagrees,
  frameworksAgreeWithRegistry,
  type Invariant,
  noAcknowledgedMessageLost,
  noDeadLetters,
  noOverCommit,
  noTaskLaunchedTwice,
  runningOnLiveAgent,
} from '../lib/testing/invariants.ts';
import { Agents, Frameworks, Observations, type Stage } from './chaos/actors.ts';
import { Faults, faultyBus, faultyHandler, faultyStore, SwappableClients } from './chaos/faults.ts';
import { mulberry32, sleep } from './common.ts';

export interface ChaosOptions {
  readonly seed: number;
  readonly cluster: ClusterConfig;
  readonly dlqs: Readonly<Record<QueueName, string>>;
  /** How long faults are injected. */
  readonly faultPhaseMs: number;
  /** Longest wait for the cluster to settle afterwards. */
  readonly settleMs: number;
  readonly agents: number;
  readonly frameworks: number;
  /** Tasks the frameworks launch in all (they stop launching when the fault phase ends). */
  readonly maxTasks: number;
  /** Chance that a control-plane call (store, bus, handler) meets a fault. */
  readonly faultRate: number;
  /** Mean time between agent/framework/client faults. */
  readonly eventEveryMs: number;
  /**
   * Whether a partition also blocks the agent's deletes. A delete lost to a partition leaves its
   * command in flight until the agent queue's visibility timeout (30 s) and holds that message
   * group meanwhile; a short run lets deletes through so it can settle in its time budget.
   */
  readonly partitionBlocksDeletes: boolean;
  readonly log?: (line: string) => void;
}

export interface ChaosReport {
  readonly seed: number;
  readonly options: Omit<ChaosOptions, 'cluster' | 'dlqs' | 'log'>;
  readonly wallMs: number;
  readonly settledMs: number;
  readonly tasks: { launched: number; byState: Record<string, number> };
  readonly faults: Record<string, number>;
  /** Injected agent deaths (partition or crash) → a framework told TASK_UNREACHABLE/TASK_LOST. */
  readonly unreachableMs: number[];
  /** Injected agent deaths → the registry marked it UNREACHABLE. */
  readonly markedMs: number[];
  /** A framework's new process subscribes → it has a status for every task it had. */
  readonly failoverRecoverMs: number[];
  readonly invariants: Invariant[];
  readonly violations: number;
  readonly deadLetters: number;
  readonly apiCalls: Record<string, number>;
}

const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
// ---------------------------------------------------------------------------------------------
// The run

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const { cluster } = opts;
  const faults = new Faults(mulberry32(opts.seed), opts.faultRate);
  const { random } = faults;
  const seen = new Observations();

  // ----- the control plane, with faults in its store, bus and handlers
  const clients = new SwappableClients(cluster, faults);
  const violations: string[] = [];
  const controlPlane: LocalControlPlane = startLocalControlPlane({
    cluster,
    dlqs: opts.dlqs,
    config: {
      offerTimeoutSeconds: 10,
      heartbeatIntervalSeconds: 1,
      agentPingTimeouts: 5,
      frameworkHeartbeatSeconds: 1,
      frameworkPingTimeouts: 5,
      agentUnreachableTimeoutSeconds: 3600,
      // Scaled down with the rest, so a short run still sees many allocation cycles.
      allocationIntervalSeconds: 0.1,
    },
    sweepIntervalMs: 1000,
    retryDelaySeconds: 1,
    // Every write to an agent is checked for over-commitment, even one whose answer a fault loses.
    wrap: {
      store: () => faultyStore(faults, checkingStore(clients.store, violations)),
      bus: () => faultyBus(faults, clients.bus),
    },
    wrapHandlers: (_q, h) => faultyHandler(faults, h),
    log: {
      info: () => {},
      warn: () => {},
      error: (m, e) => {
        if (!/injected/.test(JSON.stringify(e)))
          log(`control plane: ${m} ${JSON.stringify(e).slice(0, 300)}`);
      },
    },
  });

  // Shared SQS client for frameworks; agents get their own (so they can be cut off).
  const sqs = createSqsClient(cluster.aws);
  apiCalls.clear();

  // ----- the actors
  const workDirs: string[] = [];
  const stage: Stage = {
    cluster,
    seed: opts.seed,
    faults,
    seen,
    // The registry as the invariant checks read it: without faults.
    registry: clients.store,
    allRows: async () => (await Promise.all(fws.list.map((f) => fws.rowsOf(f.frameworkId)))).flat(),
    newWorkDir: async () => {
      const d = await mkdtemp(join(tmpdir(), 'meso-chaos-'));
      workDirs.push(d);
      return d;
    },
    log,
  };
  const agents = new Agents(stage, opts.partitionBlocksDeletes, async (agentId) => {
    // The operator's own call (meso mark-agent-gone): not through the faulty Lambda path.
    await markGone({ ...controlPlane.deps, store: clients.store, bus: clients.bus }, agentId, {
      byOperator: true,
    });
  });
  const fws = new Frameworks(stage, sqs, opts.maxTasks);
  for (let i = 0; i < opts.agents; i++) await agents.add();
  for (let i = 0; i < opts.frameworks; i++) await fws.add();

  // ----- the fault phase
  log(
    `chaos: seed ${opts.seed}, ${opts.agents} agents, ${opts.frameworks} frameworks, ${opts.faultPhaseMs / 1000} s of faults`,
  );
  const background: Promise<unknown>[] = [];
  const phaseEnd = Date.now() + opts.faultPhaseMs;
  let goneUsed = false;
  while (Date.now() < phaseEnd) {
    await sleep(opts.eventEveryMs * (0.5 + random()));
    const r = random();
    // Keep at least one agent up, or nothing can run.
    const spare = agents.spare();
    if (r < 0.2 && spare) background.push(agents.partition(spare));
    else if (r < 0.32 && spare) {
      const gone: boolean = !goneUsed && random() < 0.5;
      goneUsed ||= gone;
      background.push(agents.crash(spare, gone));
    } else if (r < 0.42 && spare) background.push(agents.restartProcess(spare));
    else if (r < 0.52) background.push(fws.failover(fws.pick()));
    else if (r < 0.6) clients.restart();
    else if (r < 0.68) {
      faults.count('queues-delayed');
      faults.delayUntil = Date.now() + 2_000;
    } else background.push(fws.killSome());
  }

  // ----- settle
  log('chaos: faults off; settling');
  faults.on = false;
  fws.launching = false;
  const settleStart = Date.now();
  await Promise.allSettled(background);
  for (const slot of agents.slots) {
    slot.net.heal();
    if (slot.state === 'down') await agents.start(slot);
  }
  const quiet = async () => {
    if (agents.live().some((a) => a.pendingStatusUpdates().length > 0)) return false;
    const rows = await stage.allRows();
    if (rows.some((r) => frameworkDisagrees(r, seen.received))) return false;
    return rows.every((r) => isTerminal(r.state) || runningOnLiveAgent(r, agents.live()));
  };
  let settled = false;
  for (let stable = 0; Date.now() - settleStart < opts.settleMs; ) {
    await sleep(500);
    if (await quiet()) {
      if (++stable >= 3) {
        settled = true;
        break;
      }
    } else stable = 0;
  }
  const settledMs = Date.now() - settleStart;
  log(`chaos: ${settled ? 'settled' : 'NOT settled'} after ${(settledMs / 1000).toFixed(1)} s`);

  // ----- invariants
  log('chaos: checking the invariants');
  const rows = await stage.allRows();
  const frameworks = new Map(
    (await clients.store.scan<FrameworkRecord & Item>('frameworks')).map((f) => [f.frameworkId, f]),
  );
  const dlq = await deadLetterQueues(sqs, cluster.prefix);
  const invariants: Invariant[] = [
    noOverCommit(violations),
    noTaskLaunchedTwice(seen),
    everyTaskTerminalOrRunning(rows, agents.live()),
    everyUpdateDelivered(seen, rows, frameworks),
    noAcknowledgedMessageLost(seen, rows, agents.live()),
    frameworksAgreeWithRegistry(rows, seen),
    noDeadLetters(dlq.some((q) => q.count > 0) ? await listDeadLetters(sqs, cluster.prefix) : []),
    {
      name: 'the cluster settled',
      ok: settled,
      detail: `${(settledMs / 1000).toFixed(1)} s after the faults stopped`,
    },
  ];
  log('chaos: invariants checked');

  const finalRows = await stage.allRows();
  const byState: Record<string, number> = {};
  for (const r of finalRows) byState[r.state] = (byState[r.state] ?? 0) + 1;
  const report: ChaosReport = {
    seed: opts.seed,
    options: {
      seed: opts.seed,
      faultPhaseMs: opts.faultPhaseMs,
      settleMs: opts.settleMs,
      agents: opts.agents,
      frameworks: opts.frameworks,
      maxTasks: opts.maxTasks,
      faultRate: opts.faultRate,
      eventEveryMs: opts.eventEveryMs,
      partitionBlocksDeletes: opts.partitionBlocksDeletes,
    },
    wallMs: Date.now() - started,
    settledMs,
    tasks: { launched: finalRows.length, byState },
    faults: faults.counts,
    unreachableMs: seen.unreachableMs,
    markedMs: seen.markedMs,
    failoverRecoverMs: seen.failoverRecoverMs,
    invariants,
    violations: invariants.filter((i) => !i.ok).length,
    deadLetters: (await deadLetterQueues(sqs, cluster.prefix)).reduce((n, q) => n + q.count, 0),
    apiCalls: snapshotCalls(),
  };

  // ----- tear down (each step bounded: a step that hangs is reported, not waited on forever)
  log(formatReport(report));
  const bounded = async (what: string, p: Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => {
      timer = setTimeout(() => {
        log(`chaos: tear-down step did not finish in 30 s: ${what}`);
        r();
      }, 30_000);
    });
    await Promise.race([p.catch(() => {}), late]);
    clearTimeout(timer);
  };
  await fws.closeAll(bounded);
  await agents.stopAll(bounded);
  await bounded('stopping the control plane', controlPlane.stop());
  clients.destroy();
  sqs.destroy();
  for (const slot of agents.slots) slot.net.close();
  await Promise.all(workDirs.map((d) => rm(d, { recursive: true, force: true })));
  return report;
}

/** The report, as printed by `npm run chaos` and the chaos test. */
export function formatReport(r: ChaosReport): string {
  const ms = (xs: number[]) =>
    xs.length === 0
      ? 'n/a'
      : `median ${(median(xs) / 1000).toFixed(1)} s, max ${(Math.max(...xs) / 1000).toFixed(1)} s (${xs.length})`;
  const lines = [
    `chaos run — seed ${r.seed} (replay: npm run chaos -- --seed ${r.seed})`,
    `  ${r.options.agents} agents, ${r.options.frameworks} frameworks, ${(r.options.faultPhaseMs / 1000).toFixed(0)} s of faults at rate ${r.options.faultRate}, wall ${(r.wallMs / 1000).toFixed(1)} s`,
    `  tasks launched: ${r.tasks.launched} — ${Object.entries(r.tasks.byState)
      .sort()
      .map(([s, n]) => `${s.replace('TASK_', '')} ${n}`)
      .join(', ')}`,
    `  faults injected (${Object.values(r.faults).reduce((a, b) => a + b, 0)}): ${Object.entries(r.faults)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    `  agent death → registry marks it UNREACHABLE: ${ms(r.markedMs)}`,
    `  agent death → framework told TASK_UNREACHABLE/LOST: ${ms(r.unreachableMs)}`,
    `  failover → new process has every task's state: ${ms(r.failoverRecoverMs)}`,
    `  settled ${(r.settledMs / 1000).toFixed(1)} s after the faults stopped; dead letters: ${r.deadLetters}`,
    '  invariants:',
    ...r.invariants.map((i) => `    ${i.ok ? 'ok  ' : 'FAIL'} ${i.name} — ${i.detail}`),
    `  violations: ${r.violations}`,
  ];
  return lines.join('\n');
}
