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
 * healed and left to settle, and the invariants are checked (see {@link checkInvariants}). The fault
 * schedule comes from a seeded generator: the same seed injects the same faults at the same calls
 * (timing still varies from run to run, so a replay is close, not identical).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { Agent } from '../agent/agent.ts';
import { silentLog } from '../agent/log.ts';
import { apiCalls, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { deadLetterQueues, listDeadLetters } from '../lib/adapters/dlq.ts';
import { createDynamoClient, DynamoStore } from '../lib/adapters/dynamo-store.ts';
import { createSqsClient, type SqsApi, SqsBus, sdkSqs } from '../lib/adapters/sqs.ts';
import { createSqsHttpClient } from '../lib/adapters/sqs-http.ts';
import type { ClusterConfig } from '../lib/config/cluster.ts';
import { markGone } from '../lib/control/liveness.ts';
import { agentFree } from '../lib/core/ledger.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../lib/core/model.ts';
import { add, contains, EMPTY } from '../lib/core/resources.ts';
import { isTerminal } from '../lib/core/task-state.ts';
import type { QueueName } from '../lib/definition/tables-queues.ts';
import type { SqsHandler } from '../lib/lambda/lambda.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../lib/local/control-plane.ts';
import type { Bus } from '../lib/ports/bus.ts';
import { ConditionFailedError, type Item, type Store, type WriteOp } from '../lib/ports/store.ts';
import type { Offer, TaskStatus } from '../lib/protocol/index.ts';
import { MesoScheduler } from '../lib/sdk/scheduler.ts';
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
  readonly invariants: { name: string; ok: boolean; detail: string }[];
  readonly violations: number;
  readonly deadLetters: number;
  readonly apiCalls: Record<string, number>;
}

const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const taskKey = (fw: string, task: string) => `${fw}\u0000${task}`;

// ---------------------------------------------------------------------------------------------
// The run

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {});
  const random = mulberry32(opts.seed);
  const chance = (p: number) => random() < p;
  const pick = <T>(xs: readonly T[]): T | undefined =>
    xs.length ? xs[Math.floor(random() * xs.length)] : undefined;
  const started = Date.now();
  const { cluster } = opts;
  const faults: Record<string, number> = {};
  const fault = (kind: string) => {
    faults[kind] = (faults[kind] ?? 0) + 1;
  };
  const violations: string[] = [];
  let faultsOn = true;
  /** The delivery attempt of the batch being handled (faults are transient: first 3 only). */
  const attempt = new AsyncLocalStorage<number>();
  const transient = () => faultsOn && (attempt.getStore() ?? 1) <= 3;
  const rate = opts.faultRate;

  // The control plane's clients, swappable: "restart the emulator clients".
  let clients = makeClients(cluster);
  const restartClients = () => {
    const old = clients;
    clients = makeClients(cluster);
    fault('client-restart');
    setTimeout(() => old.destroy(), 3_000).unref();
  };

  const chaosStore: Store = {
    get: (t, k) => storeCall('read', () => clients.store.get(t, k)),
    query: (t, pk, i) => storeCall('read', () => clients.store.query(t, pk, i)),
    scan: (t) => storeCall('read', () => clients.store.scan(t)),
    increment: (k, by) => clients.store.increment(k, by),
    write: (ops) =>
      storeCall('write', async () => {
        await clients.store.write(ops);
        await checkAccounting(ops);
      }),
  };
  async function storeCall<T>(kind: 'read' | 'write', run: () => Promise<T>): Promise<T> {
    if (transient() && chance(rate)) {
      const r = random();
      if (r < 0.4) {
        fault('dynamodb-throttle');
        throw Object.assign(new Error('Throughput exceeds the current capacity (injected)'), {
          name: 'ProvisionedThroughputExceededException',
        });
      }
      if (kind === 'write' && r < 0.6) {
        fault('dynamodb-conflict');
        throw new ConditionFailedError('the item changed first (injected)');
      }
      if (kind === 'write' && r < 0.8) {
        await run();
        fault('crash-after-write');
        throw new Error('the handler died right after its write (injected)');
      }
      if (kind === 'write') {
        await run();
        fault('write-answer-lost');
        throw Object.assign(new Error('the write landed but its answer was lost (injected)'), {
          name: 'TimeoutError',
        });
      }
    }
    return run();
  }
  /** No agent over-committed at any point: checked after every write to an agent. */
  async function checkAccounting(ops: readonly WriteOp[]) {
    for (const op of ops) {
      if (op.table !== 'agents' || op.kind === 'delete') continue;
      const agentId = String(op.kind === 'put' ? op.item.agentId : op.key.agentId);
      const a = await clients.store.get<AgentRecord & Item>('agents', { agentId });
      if (!a) continue;
      try {
        agentFree(a);
        let used = EMPTY;
        for (const o of Object.values(a.offers)) used = add(used, o.resources);
        for (const t of Object.values(a.tasks)) used = add(used, t.resources);
        if (!contains(a.total, used)) violations.push(`${agentId}: over-committed`);
      } catch (e) {
        violations.push(`${agentId}: ${(e as Error).message}`);
      }
    }
  }
  let delayUntil = 0;
  const chaosBus: Bus = {
    async send(queueUrl, messages) {
      if (Date.now() < delayUntil) {
        fault('queue-delay');
        await sleep(50 + random() * 700);
      }
      if (transient() && chance(rate)) {
        const r = random();
        if (r < 0.35) {
          fault('sqs-send-fails');
          throw new Error('SQS is unavailable (injected)');
        }
        if (r < 0.6) {
          await clients.bus.send(queueUrl, messages);
          fault('crash-after-send');
          throw new Error('the handler died right after its send (injected)');
        }
        if (r < 0.85) {
          fault('delivered-twice');
          await clients.bus.send(queueUrl, messages);
          return clients.bus.send(
            queueUrl,
            messages.map((m) => ({ ...m, ...(m.dedupId ? { dedupId: `${m.dedupId}.again` } : {}) })),
          );
        }
        fault('slow-send');
        await sleep(100 + random() * 900);
      }
      return clients.bus.send(queueUrl, messages);
    },
  };
  const chaosHandler =
    (h: SqsHandler): SqsHandler =>
    (event, context) =>
      attempt.run(
        Math.max(1, ...event.Records.map((r) => Number(r.attributes.ApproximateReceiveCount ?? '1'))),
        async () => {
          if (transient() && event.Records.length > 0 && chance(rate)) {
            const r = random();
            if (r < 0.4) {
              fault('invocation-timeout');
              await h({ Records: event.Records.slice(0, Math.ceil(event.Records.length / 2)) }, context);
              throw new Error('Task timed out (injected)');
            }
            if (r < 0.6) {
              fault('invocation-crash');
              throw new Error('Runtime exited (injected)');
            }
            fault('batch-handled-twice');
            const first = await h(event, context);
            const second = await h(event, context);
            const failed = new Set(
              [...(first?.batchItemFailures ?? []), ...(second?.batchItemFailures ?? [])].map(
                (f) => f.itemIdentifier,
              ),
            );
            return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
          }
          return h(event, context);
        },
      );

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
    },
    sweepIntervalMs: 1000,
    retryDelaySeconds: 1,
    wrap: { store: () => chaosStore, bus: () => chaosBus },
    wrapHandlers: (_q, h) => chaosHandler(h),
    log: {
      info: () => {},
      warn: () => {},
      error: (m, e) => {
        if (!/injected/.test(JSON.stringify(e)))
          log(`control plane: ${m} ${JSON.stringify(e).slice(0, 300)}`);
      },
    },
  });
  // The invariant checks read the state without faults.
  const registry = () => clients.store;

  // Shared SQS client for frameworks; agents get their own (so they can be cut off).
  const sqs = createSqsClient(cluster.aws);
  apiCalls.clear();

  // ----- what happened, as seen by agents and frameworks
  const pids = new Map<string, Set<number>>();
  const sent = new Map<string, TaskStatus>(); // uuid → status an agent handed to SQS
  const received = new Map<string, TaskStatus[]>(); // task key → updates its framework got
  const receivedUuids = new Set<string>();
  const receivedAt = new WeakMap<TaskStatus, number>();
  const accepted = new Set<string>(); // task keys in ACCEPTs the SDK sent
  const killed = new Set<string>(); // task keys the frameworks asked to kill
  const unreachableMs: number[] = [];
  const markedMs: number[] = [];
  const failoverRecoverMs: number[] = [];
  let launched = 0;
  let launching = true;

  // ----- agents
  const agentResources = 'cpus:2;mem:1024;disk:1024;ports:[31000-31100]';
  interface Slot {
    readonly index: number;
    workDir: string;
    net: ReturnType<typeof partitionable>;
    agent?: Agent;
    state: 'up' | 'partitioned' | 'down' | 'restarting';
    gone: boolean;
  }
  const slots: Slot[] = [];
  const workDirs: string[] = [];
  const newWorkDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'meso-chaos-'));
    workDirs.push(d);
    return d;
  };
  async function startAgent(slot: Slot): Promise<void> {
    const agent = new Agent({
      sqs: slot.net.client,
      agentCallsQueueUrl: cluster.queues.agentCalls,
      prefix: cluster.prefix,
      workDir: slot.workDir,
      resources: agentResources,
      heartbeatIntervalMs: 1000,
      registerRetryIntervalMs: 1000,
      statusRetryIntervalMs: 2000,
      statusMaxRetryIntervalMs: 8000,
      pollWaitSeconds: 1,
      killGracePeriodMs: 300,
      log: silentLog,
    });
    agent.on('taskStarted', (fw, taskId, pid) => {
      const k = taskKey(fw, taskId);
      const set = pids.get(k) ?? new Set<number>();
      set.add(pid);
      pids.set(k, set);
    });
    agent.on('statusSent', (s) => {
      if (s.uuid) sent.set(s.uuid, s);
    });
    const registered = new Promise<void>((r) => agent.once('registered', () => r()));
    await agent.start();
    slot.agent = agent;
    await Promise.race([registered, sleep(60_000)]);
    slot.state = 'up';
  }
  for (let i = 0; i < opts.agents; i++) {
    const slot: Slot = {
      index: i,
      workDir: await newWorkDir(),
      net: partitionable(cluster.aws, opts.partitionBlocksDeletes),
      state: 'down',
      gone: false,
    };
    slots.push(slot);
    await startAgent(slot);
  }

  /** Watches an injected death: when the registry marks the agent, when a framework is told. */
  function watchDeath(agentId: string, at: number) {
    void (async () => {
      const tasks = (await allRows()).filter((r) => r.agentId === agentId && !isTerminal(r.state));
      for (let waited = 0; waited < 60_000; waited += 100) {
        const a = await registry().get<AgentRecord & Item>('agents', { agentId });
        if (a && a.status !== 'ACTIVE' && typeof a.unreachableAt === 'number') {
          markedMs.push(a.unreachableAt - at);
          break;
        }
        if (a?.status === 'ACTIVE' && a.lastSeenAt > at + 2_000) return; // it came back first
        await sleep(100);
      }
      if (tasks.length === 0) return;
      for (let waited = 0; waited < 60_000; waited += 100) {
        const told = tasks
          .flatMap((t) => received.get(taskKey(t.frameworkId, t.taskId)) ?? [])
          .find(
            (u) =>
              (u.state === 'TASK_UNREACHABLE' || u.state === 'TASK_LOST') &&
              u.reason === 'REASON_AGENT_REMOVED' &&
              u.timestamp >= at,
          );
        if (told) {
          unreachableMs.push((receivedAt.get(told) ?? Date.now()) - at);
          return;
        }
        await sleep(100);
      }
    })();
  }

  async function partition(slot: Slot) {
    if (slot.state !== 'up' || !slot.agent) return;
    fault('agent-partition');
    slot.state = 'partitioned';
    const at = Date.now();
    slot.net.cut();
    watchDeath(slot.agent.agentId, at);
    const ms = 7_000 + random() * 4_000;
    log(`partition ${slot.agent.agentId.slice(0, 8)} for ${(ms / 1000).toFixed(1)} s`);
    await sleep(ms);
    slot.net.heal();
    slot.state = 'up';
  }

  async function crash(slot: Slot, thenGone: boolean) {
    if (slot.state !== 'up' || !slot.agent) return;
    fault('agent-crash');
    slot.state = 'down';
    const agent = slot.agent;
    const at = Date.now();
    log(`crash ${agent.agentId.slice(0, 8)}${thenGone ? ' (then marked gone)' : ''}`);
    agent.killAllNow();
    await agent.stop();
    watchDeath(agent.agentId, at);
    await sleep(7_000 + random() * 3_000);
    if (thenGone) {
      fault('operator-marks-gone');
      // The operator's own call (meso mark-agent-gone): not through the faulty Lambda path.
      await markGone({ ...controlPlane.deps, store: clients.store, bus: clients.bus }, agent.agentId, {
        byOperator: true,
      });
      slot.workDir = await newWorkDir(); // the node comes back as a new agent
    }
    slot.state = 'restarting';
    await startAgent(slot);
  }

  async function restartProcess(slot: Slot) {
    if (slot.state !== 'up' || !slot.agent) return;
    fault('agent-process-restart');
    slot.state = 'restarting';
    const old = slot.agent;
    const running = old.runningTasks();
    log(`restart ${old.agentId.slice(0, 8)} (${running.length} tasks keep running)`);
    await old.stop();
    await sleep(2_000); // its last long poll must end (an abandoned receive can hide a message)
    await startAgent(slot);
    // What the new process did not take over (no checkpoint recovery) is an orphan: its
    // processes are killed, as a Mesos agent without recovery leaves nothing running.
    const adopted = new Set(slot.agent!.runningTasks().map((t) => taskKey(t.frameworkId, t.taskId)));
    for (const t of running)
      if (!adopted.has(taskKey(t.frameworkId, t.taskId))) old.task(t.frameworkId, t.taskId)?.killNow();
  }

  // ----- frameworks
  interface Fw {
    readonly index: number;
    readonly frameworkId: string;
    readonly partitionAware: boolean;
    scheduler: MesoScheduler;
    generation: number;
    seenOffers: Set<string>;
  }
  const fws: Fw[] = [];
  let nextTask = 0;
  const newScheduler = (fw: Omit<Fw, 'scheduler'> & { scheduler?: MesoScheduler }, queueUrl?: string) => {
    const s = new MesoScheduler({
      sqs,
      schedulerCallsQueueUrl: cluster.queues.schedulerCalls,
      prefix: cluster.prefix,
      name: `chaos-${fw.index}`,
      frameworkId: fw.frameworkId,
      partitionAware: fw.partitionAware,
      failoverTimeoutSeconds: 600,
      waitSeconds: 1,
      subscribeRetry: { initialMs: 2_000, maxMs: 4_000 },
      ...(queueUrl ? { queueUrl } : {}),
    });
    s.on('error', () => {});
    s.on('update', (u) => {
      const k = taskKey(u.frameworkId, u.taskId);
      received.set(k, [...(received.get(k) ?? []), u]);
      receivedAt.set(u, Date.now());
      if (u.uuid) receivedUuids.add(u.uuid);
    });
    s.on('offers', async (offers) => {
      if (fw.scheduler !== s) return;
      for (const offer of offers) await useOffer(fw as Fw, s, offer);
    });
    return s;
  };
  async function useOffer(fw: Fw, s: MesoScheduler, offer: Offer) {
    if (fw.seenOffers.has(offer.offerId)) return;
    fw.seenOffers.add(offer.offerId);
    let cpus = offer.resources.cpus ?? 0;
    let mem = offer.resources.mem ?? 0;
    const tasks = [];
    while (launching && launched < opts.maxTasks && tasks.length < 3) {
      const c = Math.round((0.1 + random() * 0.3) * 1000) / 1000;
      const m = Math.round(16 + random() * 48);
      if (c > cpus || m > mem) break;
      cpus -= c;
      mem -= m;
      const taskId = `t${nextTask++}`;
      const seconds = random() < 0.15 ? 8 + random() * 10 : 0.2 + random() * 3;
      tasks.push({
        taskId,
        agentId: offer.agentId,
        resources: { cpus: c, mem: m },
        command: {
          value: random() < 0.1 ? `sleep ${seconds.toFixed(1)}; exit 3` : `sleep ${seconds.toFixed(1)}`,
        },
        killGracePeriodSeconds: 0.3,
      });
      launched++;
    }
    try {
      if (tasks.length === 0) await s.decline([offer.offerId], launching ? 1 : 30);
      else {
        await s.accept([offer.offerId], tasks, { refuseSeconds: 0 });
        for (const t of tasks) accepted.add(taskKey(fw.frameworkId, t.taskId));
      }
    } catch {
      // The call may not have been sent: the final reconciliation settles it.
    }
  }
  for (let i = 0; i < opts.frameworks; i++) {
    const base = {
      index: i,
      frameworkId: `chaos-${opts.seed}-${i}-${Math.floor(random() * 1e9).toString(36)}`,
      partitionAware: i % 2 === 0,
      generation: 0,
      seenOffers: new Set<string>(),
    };
    const fw = base as Fw;
    fw.scheduler = newScheduler(fw);
    fws.push(fw);
    await fw.scheduler.subscribe({ timeoutMs: 60_000 });
  }

  async function killSome() {
    const live = (await allRows()).filter((r) => !isTerminal(r.state));
    const victim = pick(live);
    if (!victim) return;
    const fw = fws.find((f) => f.frameworkId === victim.frameworkId);
    if (!fw) return;
    killed.add(taskKey(victim.frameworkId, victim.taskId));
    fault('framework-kills-task');
    await fw.scheduler.kill(victim.taskId, victim.agentId).catch(() => {});
  }

  async function failover(fw: Fw) {
    fault('framework-failover');
    const old = fw.scheduler;
    fw.generation++;
    const before = (await rowsOf(fw.frameworkId)).filter((r) => !isTerminal(r.state));
    log(`failover ${fw.frameworkId.slice(-8)} to generation ${fw.generation} (${before.length} live tasks)`);
    await old.close();
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${cluster.prefix}-fw-chaos-${opts.seed}-${fw.index}-g${fw.generation}.fifo`,
        Attributes: { FifoQueue: 'true', VisibilityTimeout: '30' },
      }),
    );
    const gotBefore = new Map<string, number>();
    for (const r of before)
      gotBefore.set(r.taskId, received.get(taskKey(fw.frameworkId, r.taskId))?.length ?? 0);
    const s = newScheduler(fw, QueueUrl);
    fw.scheduler = s;
    const t0 = Date.now();
    await s.subscribe({ timeoutMs: 60_000 }).catch(() => {});
    for (let waited = 0; waited < 30_000; waited += 100) {
      if (
        before.every(
          (r) => (received.get(taskKey(fw.frameworkId, r.taskId))?.length ?? 0) > gotBefore.get(r.taskId)!,
        )
      ) {
        failoverRecoverMs.push(Date.now() - t0);
        return;
      }
      await sleep(100);
    }
    log(`failover ${fw.frameworkId.slice(-8)}: state not complete after 30 s`);
  }

  // ----- registry reads
  const rowsOf = (frameworkId: string) =>
    registry().query<TaskRecord & Item>('tasks', { name: 'frameworkId', value: frameworkId });
  const allRows = async () => (await Promise.all(fws.map((f) => rowsOf(f.frameworkId)))).flat();

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
    const upSlots = slots.filter((s) => s.state === 'up');
    // Keep at least one agent up, or nothing can run.
    const spare = upSlots.length > 1 ? pick(upSlots) : undefined;
    if (r < 0.2 && spare) background.push(partition(spare));
    else if (r < 0.32 && spare) {
      const gone: boolean = !goneUsed && chance(0.5);
      goneUsed ||= gone;
      background.push(crash(spare, gone));
    } else if (r < 0.42 && spare) background.push(restartProcess(spare));
    else if (r < 0.52) background.push(failover(pick(fws)!));
    else if (r < 0.6) restartClients();
    else if (r < 0.68) {
      fault('queues-delayed');
      delayUntil = Date.now() + 2_000;
    } else background.push(killSome());
  }

  // ----- settle
  log('chaos: faults off; settling');
  faultsOn = false;
  launching = false;
  const settleStart = Date.now();
  await Promise.allSettled(background);
  for (const slot of slots) {
    slot.net.heal();
    if (slot.state === 'down') await startAgent(slot);
  }
  const liveAgents = () => slots.map((s) => s.agent!).filter((a) => !!a);
  const quiet = async () => {
    if (liveAgents().some((a) => a.pendingStatusUpdates().length > 0)) return false;
    const rows = await allRows();
    for (const r of rows) {
      const got = received.get(taskKey(r.frameworkId, r.taskId)) ?? [];
      if (got.at(-1)?.state !== r.status.state) return false;
    }
    return rows.every((r) => isTerminal(r.state) || runningOnLiveAgent(r));
  };
  const runningOnLiveAgent = (r: TaskRecord) =>
    liveAgents().some(
      (a) =>
        a.agentId === r.agentId &&
        a.runningTasks().some((t) => t.frameworkId === r.frameworkId && t.taskId === r.taskId),
    );
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
  const invariants = await checkInvariants();
  log('chaos: invariants checked');
  async function checkInvariants() {
    const out: { name: string; ok: boolean; detail: string }[] = [];
    const rows = await allRows();
    const frameworks = new Map(
      (await registry().scan<FrameworkRecord & Item>('frameworks')).map((f) => [f.frameworkId, f]),
    );
    // 1
    out.push({
      name: 'no agent over-committed at any point',
      ok: violations.length === 0,
      detail:
        violations.length === 0 ? `checked after every write to an agent` : violations.slice(0, 5).join('; '),
    });
    // 2
    const twice = [...pids].filter(([, set]) => set.size > 1).map(([k]) => k.replace('\u0000', '/'));
    out.push({
      name: 'no task launched twice',
      ok: twice.length === 0,
      detail: twice.length === 0 ? `${pids.size} tasks started, each once` : twice.slice(0, 5).join(', '),
    });
    // 3
    const stray = rows.filter((r) => !isTerminal(r.state) && !runningOnLiveAgent(r));
    const orphans = liveAgents().flatMap((a) =>
      a.runningTasks().filter((t) => {
        const row = rows.find((r) => r.frameworkId === t.frameworkId && r.taskId === t.taskId);
        return !row || isTerminal(row.state) || row.agentId !== a.agentId;
      }),
    );
    out.push({
      name: 'every task terminal, or running on a live agent',
      ok: stray.length === 0 && orphans.length === 0,
      detail:
        stray.length + orphans.length === 0
          ? `${rows.filter((r) => isTerminal(r.state)).length} terminal, ${rows.filter((r) => !isTerminal(r.state)).length} running`
          : `${stray.map((r) => `${r.taskId} ${r.state} on ${r.agentId.slice(0, 8)}`).join(', ')} ${orphans.map((t) => `orphan ${t.taskId}`).join(', ')}`,
    });
    // 4
    const missing: string[] = [];
    const explained: Record<string, number> = {};
    for (const [uuid, s] of sent) {
      if (receivedUuids.has(uuid)) continue;
      const row = rows.find((r) => r.frameworkId === s.frameworkId && r.taskId === s.taskId);
      const fw = frameworks.get(s.frameworkId);
      const why =
        !fw || fw.status === 'TORN_DOWN'
          ? 'framework removed'
          : row && isTerminal(row.state) && row.status.uuid !== uuid && !row.seenUuids.includes(uuid)
            ? `${s.state.replace('TASK_', '')}${s.reason ? `/${s.reason.replace('REASON_', '')}` : ''} after ${row.state.replace('TASK_', '')}`
            : undefined;
      if (why) explained[why] = (explained[why] ?? 0) + 1;
      else missing.push(`${s.taskId} ${s.state}`);
    }
    out.push({
      name: 'every status update an agent sent reached its framework',
      ok: missing.length === 0,
      detail:
        missing.length === 0
          ? `${sent.size} sent, ${sent.size - Object.values(explained).reduce((a, b) => a + b, 0)} delivered${
              Object.keys(explained).length
                ? `; the rest arrived after their task had ended (acknowledged, not applied, as Mesos): ${Object.entries(
                    explained,
                  )
                    .map(([k, n]) => `${k} ×${n}`)
                    .join(', ')}`
                : ''
            }`
          : `${missing.length} lost: ${missing.slice(0, 5).join(', ')}`,
    });
    // 5
    const pending = liveAgents().flatMap((a) => a.pendingStatusUpdates());
    const unaccounted = [...accepted].filter((k) => {
      const [fwId, taskId] = k.split('\u0000') as [string, string];
      return (
        !rows.some((r) => r.frameworkId === fwId && r.taskId === taskId) &&
        !(received.get(k) ?? []).some((u) => isTerminal(u.state))
      );
    });
    const unkilled = [...killed].filter((k) => {
      const [fwId, taskId] = k.split('\u0000') as [string, string];
      const row = rows.find((r) => r.frameworkId === fwId && r.taskId === taskId);
      return row && !isTerminal(row.state);
    });
    out.push({
      name: 'no acknowledged message lost',
      ok: pending.length === 0 && unaccounted.length === 0 && unkilled.length === 0,
      detail: `${accepted.size} launches sent, each a task or a terminal answer${unaccounted.length ? ` (missing: ${unaccounted.slice(0, 5).join(', ')})` : ''}; ${killed.size} kills, each task ended${unkilled.length ? ` (still running: ${unkilled.length})` : ''}; ${pending.length} updates awaiting acknowledgement`,
    });
    // 6
    const differ = rows.filter(
      (r) => (received.get(taskKey(r.frameworkId, r.taskId)) ?? []).at(-1)?.state !== r.status.state,
    );
    out.push({
      name: "each framework's last word on every task is the registry's",
      ok: differ.length === 0,
      detail:
        differ.length === 0
          ? `${rows.length} tasks agree`
          : differ
              .slice(0, 5)
              .map(
                (r) =>
                  `${r.taskId}: registry ${r.status.state}, framework ${(received.get(taskKey(r.frameworkId, r.taskId)) ?? []).at(-1)?.state}`,
              )
              .join('; '),
    });
    // 7
    const dlq = await deadLetterQueues(sqs, cluster.prefix);
    const letters = dlq.some((q) => q.count > 0) ? await listDeadLetters(sqs, cluster.prefix) : [];
    out.push({
      name: 'dead-letter queues empty (or explained)',
      ok: letters.length === 0,
      detail:
        letters.length === 0
          ? 'all empty'
          : letters
              .slice(0, 3)
              .map((l) => `${l.queue}: ${l.body.slice(0, 120)}`)
              .join('; '),
    });
    out.push({
      name: 'the cluster settled',
      ok: settled,
      detail: `${(settledMs / 1000).toFixed(1)} s after the faults stopped`,
    });
    return out;
  }

  const rows = await allRows();
  const byState: Record<string, number> = {};
  for (const r of rows) byState[r.state] = (byState[r.state] ?? 0) + 1;
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
    tasks: { launched: rows.length, byState },
    faults,
    unreachableMs,
    markedMs,
    failoverRecoverMs,
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
  for (const fw of fws)
    await bounded(`closing framework ${fw.index}`, fw.scheduler.close({ teardown: true }));
  for (const slot of slots)
    await bounded(
      `stopping agent ${slot.agent?.agentId}`,
      slot.agent?.stop({ killTasks: true }) ?? Promise.resolve(),
    );
  for (const slot of slots) slot.agent?.killAllNow();
  await bounded('stopping the control plane', controlPlane.stop());
  clients.destroy();
  sqs.destroy();
  for (const slot of slots) slot.net.close();
  await Promise.all(workDirs.map((d) => rm(d, { recursive: true, force: true })));
  return report;
}

function makeClients(cluster: ClusterConfig) {
  const dynamo = createDynamoClient(cluster.aws);
  const sqs = createSqsClient(cluster.aws);
  return {
    store: new DynamoStore(dynamo, cluster.tables) as Store,
    bus: new SqsBus(sdkSqs(sqs)) as Bus,
    destroy: () => {
      dynamo.destroy();
      sqs.destroy();
    },
  };
}

/** An SQS client an agent can be cut off with (a network partition). */
function partitionable(aws: ClusterConfig['aws'], blockDeletes: boolean) {
  const inner = createSqsHttpClient(aws);
  let cut = false;
  const client: SqsApi = {
    async call(op, input, opts) {
      if (cut && (blockDeletes || op !== 'DeleteMessageBatch'))
        throw Object.assign(new Error('network partition (injected)'), { name: 'NetworkingError' });
      return inner.call(op, input, opts);
    },
  };
  return {
    client,
    close: () => inner.close(),
    cut: () => {
      cut = true;
    },
    heal: () => {
      cut = false;
    },
  };
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
