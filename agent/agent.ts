/**
 * The Meso agent: registers a node with the control plane over SQS, heartbeats, and runs the
 * tasks it is told to run as real processes, reporting their states until acknowledged.
 *
 * An Agent is two parts and the status updates between them:
 * - its session with the control plane (session.ts): the command queue, REGISTER until
 *   REGISTERED, heartbeats, every call it sends;
 * - its task table (task-table.ts): LAUNCH, KILL, RECONCILE, the tasks' runs, health checks,
 *   checkpoints and their recovery after a restart;
 * - the status update manager (status-updates.ts) takes what the table reports, checkpoints it
 *   through the table and sends it through the session until ACKNOWLEDGE arrives; it holds
 *   everything until the session is registered.
 * This file wires them, and owns what is the node's: its id, resources, isolation, work
 * directory and its garbage collection.
 */
import { EventEmitter } from 'node:events';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SqsApi } from '../lib/adapters/sqs-api.ts';
import type { Resources } from '../lib/core/resources.ts';
import type { Clock, Ids } from '../lib/ports/clock.ts';
import { type AgentCommandOf, commandAcknowledgements } from '../lib/protocol/agent.ts';
import type { TaskStatus } from '../lib/protocol/common.ts';
import { agentQueueName, loadOrCreateAgentId } from './agent-id.ts';
import { listRuns } from './checkpoint.ts';
import type { AgentEvents } from './events.ts';
import type { Isolator, TaskRun } from './executor.ts';
import { Fetcher } from './fetcher.ts';
import { collectSandboxes } from './gc.ts';
import { detectIsolation, Isolation, type IsolationOptions } from './isolation/index.ts';
import { errorMessage, type Log, stderrLog } from './log.ts';
import { newestSandbox, outputFile, readChunk } from './logs.ts';
import { agentResources } from './resources.ts';
import { ControlPlaneSession, DEFAULT_HEARTBEAT_INTERVAL_MS, type TaskCommand } from './session.ts';
import { realTimers, StatusUpdateManager, type Timers } from './status-updates.ts';
import { type RunningTask, TaskTable } from './task-table.ts';

export { agentQueueName, loadOrCreateAgentId } from './agent-id.ts';
export type { AgentEvents } from './events.ts';
export {
  COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS,
  COMMAND_RECEIVE_VISIBILITY_SECONDS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_REGISTER_RETRY_INTERVAL_MS,
} from './session.ts';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** In production the lean client (`lib/adapters/sqs-http.ts`); any `SqsApi` will do. */
  readonly sqs: SqsApi;
  /** The control plane's `agent-calls` FIFO queue. */
  readonly agentCallsQueueUrl: string;
  /** The cluster's resource-name prefix; the agent's queue is `<prefix>-agent-<agentId>.fifo`. */
  readonly prefix: string;
  /** Holds `agent-id` and `sandboxes/`. Created if missing. */
  readonly workDir: string;
  /**
   * What the agent offers: exact Resources, or a `--resources` spec (`cpus:2;mem:1024`) applied
   * over the detected ones. Default: detected (cpus, memory and work-directory disk minus a
   * reserve, ports 31000-32000).
   */
  readonly resources?: Resources | string;
  /** Default: none. */
  readonly attributes?: Readonly<Record<string, string>>;
  /**
   * Tags the agent's command queue is created with. A fleet instance tags it with its own ARN
   * (`INSTANCE_QUEUE_TAG`), the only queues its role lets it use. Default: none.
   */
  readonly queueTags?: Readonly<Record<string, string>>;
  /** Default: os.hostname(). */
  readonly hostname?: string;
  /** Upper bound on the heartbeat interval; REGISTERED's interval is used when shorter. Default: REGISTERED's (15 s if it names none). */
  readonly heartbeatIntervalMs?: number;
  /** REGISTER is resent this often until REGISTERED arrives. Default 5000. */
  readonly registerRetryIntervalMs?: number;
  /** First status update resend. Default 10 000 (Mesos). */
  readonly statusRetryIntervalMs?: number;
  /** Status update resends back off up to this. Default 600 000 (Mesos). */
  readonly statusMaxRetryIntervalMs?: number;
  /**
   * A newer state waiting behind an unacknowledged update is sent to the registry on its own
   * (LATEST_STATE) after this long. Default 1000.
   */
  readonly latestStateDelayMs?: number;
  /** Long-poll wait of each receive on the command queue, 0–20. Default 20. */
  readonly pollWaitSeconds?: number;
  /** SIGTERM→SIGKILL grace for tasks that name none. Default 3000 (Mesos). */
  readonly killGracePeriodMs?: number;
  /** Default: stderr, info and above. */
  readonly log?: Log;
  readonly clock?: Clock;
  /** Status update uuids. */
  readonly ids?: Ids;
  /** Register, heartbeat and status-retry timers. */
  readonly timers?: Timers;
  /** Extra isolators, after the isolation's own. */
  readonly isolators?: readonly Isolator[];
  /**
   * How tasks are isolated: an Isolation, or options to detect one at start (see
   * `detectIsolation`: cgroups v2/v1 else process-tree, PID namespace, task user, containers).
   * Default: `Isolation.none()` — no limits, no namespace, the agent's own user — for the
   * in-process harness and tests; `meso-agent run` detects.
   */
  readonly isolation?: Isolation | IsolationOptions;
  /** Fetches tasks' URIs. Default: a Fetcher caching in `<workDir>/cache`. */
  readonly fetcher?: Fetcher;
  /** How often running tasks are checked against their limits (and recovered ones for their end), ms. Default 1000. */
  readonly monitorIntervalMs?: number;
  /** Sandbox garbage collection (gc.ts). Defaults: one week, disk headroom 0.1, every hour. */
  readonly gc?: { readonly maxAgeMs?: number; readonly diskHeadroom?: number; readonly intervalMs?: number };
  readonly agentVersion?: string;
  /** Called after each status update send attempt was handed to SQS (attempt 0 = first send). */
  readonly onStatusSent?: (status: TaskStatus, attempt: number) => void;
}

export interface StopOptions {
  /** Kill running tasks (and wait for them to end) before stopping. Default false. */
  readonly killTasks?: boolean;
  /** Grace period for those kills. Default: each task's own. */
  readonly gracePeriodMs?: number;
}

/** What an Agent has once started. */
interface Started {
  readonly agentId: string;
  readonly resources: Resources;
  readonly isolation: Isolation;
  readonly updates: StatusUpdateManager;
  readonly tasks: TaskTable;
}

/**
 * @example
 * const agent = new Agent({ sqs: createSqsHttpClient(), agentCallsQueueUrl, prefix: 'meso', workDir: '/var/lib/meso' });
 * await agent.start();
 * process.once('SIGTERM', () => void agent.stop({ killTasks: true }));
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly #opts: AgentOptions;
  readonly #log: Log;
  readonly #timers: Timers;
  #agentId: string | undefined;
  #session: ControlPlaneSession | undefined;
  #started: Started | undefined;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopping: Promise<void> | undefined;
  #monitorTimer: NodeJS.Timeout | undefined;
  #gcTimer: NodeJS.Timeout | undefined;

  constructor(opts: AgentOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log ?? stderrLog();
    this.#timers = opts.timers ?? realTimers;
  }

  #get(): Started {
    if (this.#started === undefined) throw new Error('the agent has not started');
    return this.#started;
  }

  /** The agent id (after start()). */
  get agentId(): string {
    if (this.#agentId === undefined) throw new Error('the agent has not started');
    return this.#agentId;
  }

  /** The agent's own command queue (after start()). */
  get queueUrl(): string {
    if (this.#session === undefined) throw new Error('the agent has not started');
    return this.#session.queueUrl;
  }

  /** What the agent offers (after start()). */
  get resources(): Resources {
    return this.#get().resources;
  }

  get isRegistered(): boolean {
    return this.#session?.isRegistered ?? false;
  }

  get heartbeatIntervalMs(): number {
    return this.#session?.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  }

  /** Tasks not yet ended. */
  runningTasks(): RunningTask[] {
    return this.#started?.tasks.running() ?? [];
  }

  /** The run of a task this agent knows (running or recently ended). */
  task(frameworkId: string, taskId: string): TaskRun | undefined {
    return this.#started?.tasks.run(frameworkId, taskId);
  }

  /** How tasks are isolated (after start()). */
  get isolation(): Isolation {
    return this.#get().isolation;
  }

  /** Status updates not yet acknowledged. */
  pendingStatusUpdates(): TaskStatus[] {
    return this.#started?.updates.pending() ?? [];
  }

  /**
   * Loads or creates the agent id, creates the command queue, starts polling it and sends
   * REGISTER (resent until REGISTERED arrives). Resolves once polling has started; the
   * `registered` event says when registration completed. Throws if the queue cannot be created.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start an agent that is ${this.#state}`);
    this.#state = 'starting';
    const o = this.#opts;
    await mkdir(o.workDir, { recursive: true });
    const agentId = await loadOrCreateAgentId(o.workDir);
    this.#agentId = agentId;
    const resources =
      o.resources === undefined || typeof o.resources === 'string'
        ? agentResources(o.workDir, o.resources)
        : o.resources;
    let tasks: TaskTable | undefined;
    const session = new ControlPlaneSession({
      sqs: o.sqs,
      agentCallsQueueUrl: o.agentCallsQueueUrl,
      agentId,
      agentVersion: o.agentVersion ?? AGENT_VERSION,
      ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      ...(o.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: o.heartbeatIntervalMs } : {}),
      ...(o.registerRetryIntervalMs !== undefined
        ? { registerRetryIntervalMs: o.registerRetryIntervalMs }
        : {}),
      ...(o.pollWaitSeconds !== undefined ? { pollWaitSeconds: o.pollWaitSeconds } : {}),
      ...(o.onStatusSent ? { onStatusSent: o.onStatusSent } : {}),
      timers: this.#timers,
      log: this.#log,
      events: this,
      registration: () => ({
        resources,
        // The isolation in force (`meso.isolation`, `meso.containers`), then the operator's.
        attributes: { ...this.#started?.isolation.attributes(), ...o.attributes },
        // What it runs, so the registry can reconcile it when the agent comes back.
        tasks: this.runningTasks().map((t) => ({
          frameworkId: t.frameworkId,
          taskId: t.taskId,
          state: t.pid !== undefined ? ('TASK_RUNNING' as const) : ('TASK_STAGING' as const),
        })),
      }),
      onRegistered: () => this.#started?.updates.resume(),
      onReregister: () => this.#started?.updates.retryNow(),
      onTaskCommand: (cmd) => this.#onTaskCommand(cmd),
    });
    this.#session = session;
    // Isolation probes (unshare, `docker info`) run while the queue is created.
    const [queueUrl, isolation] = await Promise.all([
      session.openQueue(agentQueueName(o.prefix, agentId), o.queueTags),
      o.isolation instanceof Isolation
        ? o.isolation
        : o.isolation === undefined
          ? Isolation.none()
          : detectIsolation(o.isolation),
    ]);
    await this.#letTaskUserIn(isolation);
    const updates = new StatusUpdateManager({
      // Nothing is sent before the control plane has answered REGISTER.
      paused: true,
      onChange: (frameworkId, taskId, pending) => tasks?.checkpointUpdates(frameworkId, taskId, pending),
      send: (status, attempt, latest) => session.sendStatus(status, attempt, latest),
      sendLatest: (latest) => session.sendLatestState(latest),
      ...(o.latestStateDelayMs !== undefined ? { latestDelayMs: o.latestStateDelayMs } : {}),
      ids: o.ids,
      clock: o.clock,
      timers: this.#timers,
      retryIntervalMs: o.statusRetryIntervalMs,
      maxRetryIntervalMs: o.statusMaxRetryIntervalMs,
      onError: (e, s) =>
        this.#log('warn', 'status update send failed; will retry', {
          taskId: s.taskId,
          state: s.state,
          error: errorMessage(e),
        }),
      onDropped: (s, e) =>
        this.#log('error', 'status update given up: refused even without its message and output', {
          taskId: s.taskId,
          state: s.state,
          error: errorMessage(e),
        }),
    });
    tasks = new TaskTable({
      agentId,
      workDir: o.workDir,
      ...(o.killGracePeriodMs !== undefined ? { killGracePeriodMs: o.killGracePeriodMs } : {}),
      isolation,
      ...(o.isolators ? { isolators: o.isolators } : {}),
      fetcher: o.fetcher ?? new Fetcher({ cacheDir: join(o.workDir, 'cache') }),
      updates,
      log: this.#log,
      events: this,
    });
    this.#started = { agentId, resources, isolation, updates, tasks };
    session.listen();
    this.#state = 'running';
    this.#log('info', 'agent started', { agentId, queueUrl, workDir: o.workDir });
    this.#log('info', `isolation: ${isolation.describe()}`, {
      ...(isolation.notes.length > 0 ? { notes: isolation.notes } : {}),
    });
    await tasks.recover();
    const monitorMs = o.monitorIntervalMs ?? 1000;
    this.#monitorTimer = setInterval(() => tasks.monitor(), monitorMs).unref();
    void this.#collectGarbage();
    this.#gcTimer = setInterval(() => void this.#collectGarbage(), o.gc?.intervalMs ?? 3600_000).unref();
    session.register();
  }

  #onTaskCommand(cmd: TaskCommand): void {
    const { tasks, updates } = this.#get();
    switch (cmd.type) {
      case 'LAUNCH':
        tasks.launch(cmd);
        return;
      case 'KILL':
        tasks.kill(cmd);
        return;
      case 'RECONCILE':
        tasks.reconcile(cmd);
        return;
      case 'READ_LOGS':
        void this.#readLogs(cmd);
        return;
      case 'ACKNOWLEDGE':
        // One update's, or several (`acks`): each is matched on its own.
        for (const { taskId, uuid } of commandAcknowledgements(cmd)) {
          if (!updates.acknowledge(cmd.frameworkId, taskId, uuid)) {
            this.#log('debug', 'ignoring ACKNOWLEDGE for no in-flight update', { taskId, uuid });
          }
        }
        return;
    }
  }

  /**
   * READ_LOGS: one chunk of a task's stdout or stderr, sent back as LOGS. Only that task's
   * sandbox, found by its ids (never a path from the command), read as `readChunk` allows.
   */
  async #readLogs(cmd: AgentCommandOf<'READ_LOGS'>): Promise<void> {
    const { tasks } = this.#get();
    const session = this.#session;
    if (!session) return;
    const run = tasks.run(cmd.frameworkId, cmd.taskId);
    const sandbox = run?.sandbox ?? newestSandbox(this.#opts.workDir, cmd.frameworkId, cmd.taskId);
    const ended = !tasks.running().some((t) => t.frameworkId === cmd.frameworkId && t.taskId === cmd.taskId);
    const chunk = sandbox
      ? await readChunk(outputFile(sandbox, cmd.stream), cmd.offset, cmd.maxBytes, cmd.fromEnd)
      : {
          offset: cmd.offset,
          data: Buffer.alloc(0),
          size: 0,
          error: { code: 'NO_SANDBOX', message: `this agent has no sandbox of task ${cmd.taskId}` },
        };
    try {
      await session.sendLogs({
        frameworkId: cmd.frameworkId,
        taskId: cmd.taskId,
        requestId: cmd.requestId,
        requester: cmd.requester,
        stream: cmd.stream,
        offset: chunk.offset,
        data: chunk.data.toString('base64'),
        size: chunk.size,
        ended,
        ...(chunk.error ? { error: chunk.error } : {}),
      });
    } catch (e) {
      this.#log('warn', 'could not send a chunk of task output', {
        taskId: cmd.taskId,
        error: errorMessage(e),
      });
    }
  }

  /**
   * Stops polling, heartbeats, registration and status retries. With `killTasks`, first kills
   * every running task and waits for them to end (their terminal updates are sent once, if their
   * streams are free; without a checkpoint they are not retried after the agent stops).
   * Without it, tasks keep running as orphans of the agent. Safe to call more than once.
   */
  stop(opts: StopOptions = {}): Promise<void> {
    this.#stopping ??= this.#stop(opts);
    return this.#stopping;
  }

  async #stop(opts: StopOptions): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'stopping';
    const started = this.#started;
    this.#session?.close();
    clearInterval(this.#monitorTimer);
    clearInterval(this.#gcTimer);
    started?.tasks.stopHealthChecks();
    if (opts.killTasks) await started?.tasks.killAll(opts.gracePeriodMs);
    started?.updates.stop();
    await this.#session?.drain();
    this.#state = 'stopped';
    if (wasRunning)
      this.#log('info', 'agent stopped', { agentId: this.#agentId, killedTasks: !!opts.killTasks });
  }

  /** SIGKILLs every running task's process group, synchronously (for `process.on('exit')`). */
  killAllNow(): void {
    this.#started?.tasks.killAllNow();
  }

  /**
   * Tasks running as another user reach their sandboxes through the work directory: it needs
   * the search (x) permission for others (not read: they cannot list it).
   */
  async #letTaskUserIn(isolation: Isolation): Promise<void> {
    const user = isolation.user.defaultUser;
    if (!user || user.uid === process.geteuid?.()) return;
    const dir = this.#opts.workDir;
    const mode = (await stat(dir)).mode & 0o7777;
    if ((mode & 0o001) !== 0) return;
    await chmod(dir, mode | 0o001);
    this.#log(
      'info',
      `made ${dir} searchable by others, so tasks running as ${user.name} reach their sandboxes`,
      {
        mode: (mode | 0o001).toString(8),
      },
    );
  }

  async #collectGarbage(): Promise<void> {
    if (this.#state !== 'running' || !this.#started) return;
    try {
      const keep = new Set<string>(this.#started.tasks.liveSandboxes());
      for (const files of listRuns(this.#opts.workDir)) {
        const rec = files.readRun();
        if (rec) keep.add(rec.sandbox);
      }
      const r = await collectSandboxes({
        workDir: this.#opts.workDir,
        keep,
        ...(this.#opts.gc?.maxAgeMs !== undefined ? { maxAgeMs: this.#opts.gc.maxAgeMs } : {}),
        ...(this.#opts.gc?.diskHeadroom !== undefined ? { diskHeadroom: this.#opts.gc.diskHeadroom } : {}),
      });
      if (r.removed.length > 0) {
        this.#log('info', `removed ${r.removed.length} old sandbox(es)`, {
          allowedAgeHours: Math.round(r.allowedAgeMs / 3600_000),
          diskUsage: Math.round(r.diskUsage * 100) / 100,
        });
      }
    } catch (e) {
      this.#log('warn', 'sandbox garbage collection failed', { error: errorMessage(e) });
    }
  }
}
