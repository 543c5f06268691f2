/**
 * The chaos run's actors: agents (real processes, each behind a network that can be cut) and
 * frameworks (the SDK), what each of them does to the cluster, and what they saw
 * ({@link Observations}, the invariants' input).
 *
 * - agents are cut off (a partition, then healed), crash with their tasks (the node dies) and
 *   restart, restart as a process (their tasks keep running), or are marked gone by an operator;
 * - frameworks launch what fits their offers, kill tasks, and fail over to a new process with a
 *   new queue.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { Agent } from '../../agent/agent.ts';
import { silentLog } from '../../agent/log.ts';
import type { ClusterConfig } from '../../lib/config/cluster.ts';
import type { AgentRecord, TaskRecord } from '../../lib/core/model.ts';
import { isTerminal } from '../../lib/core/task-state.ts';
import type { Item, Store } from '../../lib/ports/store.ts';
import type { Offer, TaskStatus } from '../../lib/protocol/index.ts';
import { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { type Observed, taskKey } from '../../lib/testing/invariants.ts';
import { sleep } from '../common.ts';
import { type Faults, type Net, partitionable } from './faults.ts';

/** What the agents and frameworks saw, and how long recoveries took. */
export class Observations implements Observed {
  readonly pids = new Map<string, Set<number>>();
  readonly sent = new Map<string, TaskStatus>();
  readonly received = new Map<string, TaskStatus[]>();
  readonly receivedUuids = new Set<string>();
  readonly receivedAt = new WeakMap<TaskStatus, number>();
  readonly accepted = new Set<string>();
  readonly killed = new Set<string>();
  /** Injected agent deaths (partition or crash) → a framework told TASK_UNREACHABLE/TASK_LOST. */
  readonly unreachableMs: number[] = [];
  /** Injected agent deaths → the registry marked it UNREACHABLE. */
  readonly markedMs: number[] = [];
  /** A framework's new process subscribes → it has a status for every task it had. */
  readonly failoverRecoverMs: number[] = [];

  taskStarted(frameworkId: string, taskId: string, pid: number): void {
    const k = taskKey(frameworkId, taskId);
    const set = this.pids.get(k) ?? new Set<number>();
    set.add(pid);
    this.pids.set(k, set);
  }

  updateReceived(u: TaskStatus): void {
    const k = taskKey(u.frameworkId, u.taskId);
    this.received.set(k, [...(this.received.get(k) ?? []), u]);
    this.receivedAt.set(u, Date.now());
    if (u.uuid) this.receivedUuids.add(u.uuid);
  }

  receivedCount(frameworkId: string, taskId: string): number {
    return this.received.get(taskKey(frameworkId, taskId))?.length ?? 0;
  }
}

/** What the actors share: the cluster, the dice, the registry (read without faults) and the log. */
export interface Stage {
  readonly cluster: ClusterConfig;
  readonly seed: number;
  readonly faults: Faults;
  readonly seen: Observations;
  readonly registry: Store;
  /** Every task row of the run's frameworks. */
  readonly allRows: () => Promise<(TaskRecord & Item)[]>;
  readonly newWorkDir: () => Promise<string>;
  readonly log: (line: string) => void;
}

// ---- agents ----

const AGENT_RESOURCES = 'cpus:2;mem:1024;disk:1024;ports:[31000-31100]';

export interface AgentSlot {
  readonly index: number;
  workDir: string;
  readonly net: Net;
  agent?: Agent;
  state: 'up' | 'partitioned' | 'down' | 'restarting';
}

export class Agents {
  readonly slots: AgentSlot[] = [];
  readonly #stage: Stage;
  readonly #partitionBlocksDeletes: boolean;
  /** The operator's mark-gone call (not through the faulty path). */
  readonly #markGone: (agentId: string) => Promise<void>;

  constructor(stage: Stage, partitionBlocksDeletes: boolean, markGone: (agentId: string) => Promise<void>) {
    this.#stage = stage;
    this.#partitionBlocksDeletes = partitionBlocksDeletes;
    this.#markGone = markGone;
  }

  async add(): Promise<void> {
    const slot: AgentSlot = {
      index: this.slots.length,
      workDir: await this.#stage.newWorkDir(),
      net: partitionable(this.#stage.cluster.aws, this.#partitionBlocksDeletes),
      state: 'down',
    };
    this.slots.push(slot);
    await this.start(slot);
  }

  /** The agents whose process runs. */
  live(): Agent[] {
    return this.slots.map((s) => s.agent!).filter((a) => !!a);
  }

  /** An agent that is up, unless it is the last one (or nothing could run). */
  spare(): AgentSlot | undefined {
    const up = this.slots.filter((s) => s.state === 'up');
    if (up.length <= 1) return undefined;
    return up[Math.floor(this.#stage.faults.random() * up.length)];
  }

  async start(slot: AgentSlot): Promise<void> {
    const { cluster, seen } = this.#stage;
    const agent = new Agent({
      sqs: slot.net.client,
      agentCallsQueueUrl: cluster.queues.agentCalls,
      prefix: cluster.prefix,
      workDir: slot.workDir,
      resources: AGENT_RESOURCES,
      heartbeatIntervalMs: 1000,
      registerRetryIntervalMs: 1000,
      statusRetryIntervalMs: 2000,
      statusMaxRetryIntervalMs: 8000,
      pollWaitSeconds: 1,
      killGracePeriodMs: 300,
      log: silentLog,
    });
    agent.on('taskStarted', (fw, taskId, pid) => seen.taskStarted(fw, taskId, pid));
    agent.on('statusSent', (s) => {
      if (s.uuid) seen.sent.set(s.uuid, s);
    });
    const registered = new Promise<void>((r) => agent.once('registered', () => r()));
    await agent.start();
    slot.agent = agent;
    await Promise.race([registered, sleep(60_000)]);
    slot.state = 'up';
  }

  /** Cuts the agent's network for 7–11 s, then heals it. */
  async partition(slot: AgentSlot): Promise<void> {
    if (slot.state !== 'up' || !slot.agent) return;
    const { faults, log } = this.#stage;
    faults.count('agent-partition');
    slot.state = 'partitioned';
    const at = Date.now();
    slot.net.cut();
    this.#watchDeath(slot.agent.agentId, at);
    const ms = 7_000 + faults.random() * 4_000;
    log(`partition ${slot.agent.agentId.slice(0, 8)} for ${(ms / 1000).toFixed(1)} s`);
    await sleep(ms);
    slot.net.heal();
    slot.state = 'up';
  }

  /** The node dies with its tasks; 7–10 s later it comes back (as a new agent, if marked gone meanwhile). */
  async crash(slot: AgentSlot, thenGone: boolean): Promise<void> {
    if (slot.state !== 'up' || !slot.agent) return;
    const { faults, log } = this.#stage;
    faults.count('agent-crash');
    slot.state = 'down';
    const agent = slot.agent;
    const at = Date.now();
    log(`crash ${agent.agentId.slice(0, 8)}${thenGone ? ' (then marked gone)' : ''}`);
    agent.killAllNow();
    await agent.stop();
    this.#watchDeath(agent.agentId, at);
    await sleep(7_000 + faults.random() * 3_000);
    if (thenGone) {
      faults.count('operator-marks-gone');
      await this.#markGone(agent.agentId);
      slot.workDir = await this.#stage.newWorkDir(); // the node comes back as a new agent
    }
    slot.state = 'restarting';
    await this.start(slot);
  }

  /** The agent's process restarts; its tasks keep running and the new process takes them over. */
  async restartProcess(slot: AgentSlot): Promise<void> {
    if (slot.state !== 'up' || !slot.agent) return;
    this.#stage.faults.count('agent-process-restart');
    slot.state = 'restarting';
    const old = slot.agent;
    const running = old.runningTasks();
    this.#stage.log(`restart ${old.agentId.slice(0, 8)} (${running.length} tasks keep running)`);
    await old.stop();
    await sleep(2_000); // its last long poll must end (an abandoned receive can hide a message)
    await this.start(slot);
    // What the new process did not take over (no checkpoint recovery) is an orphan: its
    // processes are killed, as a Mesos agent without recovery leaves nothing running.
    const adopted = new Set(slot.agent!.runningTasks().map((t) => taskKey(t.frameworkId, t.taskId)));
    for (const t of running)
      if (!adopted.has(taskKey(t.frameworkId, t.taskId))) old.task(t.frameworkId, t.taskId)?.killNow();
  }

  /** Watches an injected death: when the registry marks the agent, when a framework is told. */
  #watchDeath(agentId: string, at: number): void {
    const { registry, seen, allRows } = this.#stage;
    void (async () => {
      const tasks = (await allRows()).filter((r) => r.agentId === agentId && !isTerminal(r.state));
      for (let waited = 0; waited < 60_000; waited += 100) {
        const a = await registry.get<AgentRecord & Item>('agents', { agentId });
        if (a && a.status !== 'ACTIVE' && typeof a.unreachableAt === 'number') {
          seen.markedMs.push(a.unreachableAt - at);
          break;
        }
        if (a?.status === 'ACTIVE' && a.lastSeenAt > at + 2_000) return; // it came back first
        await sleep(100);
      }
      if (tasks.length === 0) return;
      for (let waited = 0; waited < 60_000; waited += 100) {
        const told = tasks
          .flatMap((t) => seen.received.get(taskKey(t.frameworkId, t.taskId)) ?? [])
          .find(
            (u) =>
              (u.state === 'TASK_UNREACHABLE' || u.state === 'TASK_LOST') &&
              u.reason === 'REASON_AGENT_REMOVED' &&
              u.timestamp >= at,
          );
        if (told) {
          seen.unreachableMs.push((seen.receivedAt.get(told) ?? Date.now()) - at);
          return;
        }
        await sleep(100);
      }
    })();
  }

  async stopAll(bounded: (what: string, p: Promise<unknown>) => Promise<void>): Promise<void> {
    for (const slot of this.slots)
      await bounded(
        `stopping agent ${slot.agent?.agentId}`,
        slot.agent?.stop({ killTasks: true }) ?? Promise.resolve(),
      );
    for (const slot of this.slots) slot.agent?.killAllNow();
  }
}

// ---- frameworks ----

export interface Framework {
  readonly index: number;
  readonly frameworkId: string;
  readonly partitionAware: boolean;
  scheduler: MesoScheduler;
  generation: number;
  readonly seenOffers: Set<string>;
}

export class Frameworks {
  readonly list: Framework[] = [];
  /** Whether they still launch (until the fault phase ends). */
  launching = true;
  launched = 0;
  #nextTask = 0;
  readonly #stage: Stage;
  readonly #sqs: SQSClient;
  readonly #maxTasks: number;

  constructor(stage: Stage, sqs: SQSClient, maxTasks: number) {
    this.#stage = stage;
    this.#sqs = sqs;
    this.#maxTasks = maxTasks;
  }

  async add(): Promise<void> {
    const { seed, faults } = this.#stage;
    const i = this.list.length;
    const fw = {
      index: i,
      frameworkId: `chaos-${seed}-${i}-${Math.floor(faults.random() * 1e9).toString(36)}`,
      partitionAware: i % 2 === 0,
      generation: 0,
      seenOffers: new Set<string>(),
    } as Framework;
    fw.scheduler = this.#newScheduler(fw);
    this.list.push(fw);
    await fw.scheduler.subscribe({ timeoutMs: 60_000 });
  }

  pick(): Framework {
    return this.list[Math.floor(this.#stage.faults.random() * this.list.length)]!;
  }

  rowsOf(frameworkId: string): Promise<(TaskRecord & Item)[]> {
    return this.#stage.registry.query<TaskRecord & Item>('tasks', {
      name: 'frameworkId',
      value: frameworkId,
    });
  }

  #newScheduler(fw: Framework, queueUrl?: string): MesoScheduler {
    const { cluster, seen } = this.#stage;
    const s = new MesoScheduler({
      sqs: this.#sqs,
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
    s.on('update', (u) => seen.updateReceived(u));
    s.on('offers', async (offers) => {
      if (fw.scheduler !== s) return;
      for (const offer of offers) await this.#useOffer(fw, s, offer);
    });
    return s;
  }

  /** Launches up to 3 random tasks that fit the offer (while launching), else declines it. */
  async #useOffer(fw: Framework, s: MesoScheduler, offer: Offer): Promise<void> {
    const { random } = this.#stage.faults;
    if (fw.seenOffers.has(offer.offerId)) return;
    fw.seenOffers.add(offer.offerId);
    let cpus = offer.resources.cpus ?? 0;
    let mem = offer.resources.mem ?? 0;
    const tasks = [];
    while (this.launching && this.launched < this.#maxTasks && tasks.length < 3) {
      const c = Math.round((0.1 + random() * 0.3) * 1000) / 1000;
      const m = Math.round(16 + random() * 48);
      if (c > cpus || m > mem) break;
      cpus -= c;
      mem -= m;
      const taskId = `t${this.#nextTask++}`;
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
      this.launched++;
    }
    try {
      if (tasks.length === 0) await s.decline([offer.offerId], this.launching ? 1 : 30);
      else {
        await s.accept([offer.offerId], tasks, { refuseSeconds: 0 });
        for (const t of tasks) this.#stage.seen.accepted.add(taskKey(fw.frameworkId, t.taskId));
      }
    } catch {
      // The call may not have been sent: the final reconciliation settles it.
    }
  }

  /** A framework kills one of the live tasks, chosen at random. */
  async killSome(): Promise<void> {
    const { faults, seen, allRows } = this.#stage;
    const live = (await allRows()).filter((r) => !isTerminal(r.state));
    const victim = live.length ? live[Math.floor(faults.random() * live.length)] : undefined;
    if (!victim) return;
    const fw = this.list.find((f) => f.frameworkId === victim.frameworkId);
    if (!fw) return;
    seen.killed.add(taskKey(victim.frameworkId, victim.taskId));
    faults.count('framework-kills-task');
    await fw.scheduler.kill(victim.taskId, victim.agentId).catch(() => {});
  }

  /** The framework's process is replaced by a new one (on the same queue), which must learn every task's state. */
  async failover(fw: Framework): Promise<void> {
    const { faults, seen, log } = this.#stage;
    faults.count('framework-failover');
    const old = fw.scheduler;
    fw.generation++;
    const before = (await this.rowsOf(fw.frameworkId)).filter((r) => !isTerminal(r.state));
    log(`failover ${fw.frameworkId.slice(-8)} to generation ${fw.generation} (${before.length} live tasks)`);
    await old.close();
    const gotBefore = new Map<string, number>();
    for (const r of before) gotBefore.set(r.taskId, seen.receivedCount(fw.frameworkId, r.taskId));
    // The new process reads the same queue: the only one the framework's id may name.
    const s = this.#newScheduler(fw);
    fw.scheduler = s;
    const t0 = Date.now();
    await s.subscribe({ timeoutMs: 60_000 }).catch(() => {});
    for (let waited = 0; waited < 30_000; waited += 100) {
      if (before.every((r) => seen.receivedCount(fw.frameworkId, r.taskId) > gotBefore.get(r.taskId)!)) {
        seen.failoverRecoverMs.push(Date.now() - t0);
        return;
      }
      await sleep(100);
    }
    log(`failover ${fw.frameworkId.slice(-8)}: state not complete after 30 s`);
  }

  async closeAll(bounded: (what: string, p: Promise<unknown>) => Promise<void>): Promise<void> {
    for (const fw of this.list)
      await bounded(`closing framework ${fw.index}`, fw.scheduler.close({ teardown: true }));
  }
}
