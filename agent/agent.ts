/**
 * The Meso agent: registers a node with the control plane over SQS, heartbeats, and runs the
 * tasks it is told to run as real processes, reporting their states until acknowledged.
 *
 * Queues: the agent sends REGISTER, HEARTBEAT and STATUS_UPDATE to the `agent-calls` FIFO queue
 * (MessageGroupId = its agent id, so the registry sees its calls in order) and receives REGISTERED,
 * LAUNCH, KILL, ACKNOWLEDGE and ERROR on its own FIFO queue `<prefix>-agent-<agentId>.fifo`,
 * which it creates itself (CreateQueue is idempotent) and names in REGISTER.
 *
 * Mesos-like choices, where the protocol leaves room:
 * - A duplicate LAUNCH (same framework and task id as a task this agent has run or is running)
 *   is ignored: SQS delivers at least once.
 * - A KILL for a task the agent has never seen is answered with TASK_DROPPED
 *   (REASON_TASK_UNKNOWN, "unknown task") — what a Mesos agent reports for a partition-aware
 *   framework when no executor holds the task — and the id is remembered, so a LAUNCH for it
 *   that arrives later (the LAUNCH and the KILL can come from different senders) is not run; that
 *   LAUNCH is answered with TASK_DROPPED again (REASON_TASK_KILLED_DURING_LAUNCH), the same
 *   terminal state, so any order of arrival leaves the control plane with one answer.
 * - A KILL for a task that has already ended is ignored: its terminal update is on its way.
 * - No TASK_KILLING is sent (frameworks would have to declare the TASK_KILLING_STATE capability).
 * - The heartbeat interval is the one REGISTERED names; `heartbeatIntervalMs`, when given, can
 *   only shorten it (a longer one would get the agent marked unreachable).
 * - Status update FIFO deduplication ids are the update's uuid on the first send and
 *   `<uuid>-<attempt>` on resends, so a resend gets through inside SQS's 5-minute dedup window.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { pollQueue, type ReceivedMessage, type SqsApi, SqsBus } from '../lib/adapters/sqs-api.ts';
import { type Resources, toWire } from '../lib/core/resources.ts';
import { isTerminal } from '../lib/core/task-state.ts';
import type { Clock, Ids } from '../lib/ports/clock.ts';
import {
  type AgentCall,
  AgentCallSchema,
  type AgentCommand,
  type AgentCommandOf,
  AgentCommandSchema,
} from '../lib/protocol/agent.ts';
import type { TaskInfo, TaskReason, TaskStatus } from '../lib/protocol/common.ts';
import { parseMessage } from '../lib/protocol/parse.ts';
import { listRuns, type RunFiles } from './checkpoint.ts';
import {
  buildSpawnSpec,
  DEFAULT_KILL_GRACE_PERIOD_MS,
  type IsolationContext,
  type Isolator,
  type RunTaskOptions,
  TaskRun,
  type TaskTermination,
} from './executor.ts';
import { Fetcher } from './fetcher.ts';
import { collectSandboxes } from './gc.ts';
import { HealthChecker } from './health.ts';
import { detectIsolation, Isolation, type IsolationOptions } from './isolation/index.ts';
import { errorMessage, type Log, stderrLog } from './log.ts';
import { agentResources } from './resources.ts';
import { realTimers, type StatusUpdateInput, StatusUpdateManager, type Timers } from './status-updates.ts';

export const AGENT_VERSION = '0.1.0';
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
export const DEFAULT_REGISTER_RETRY_INTERVAL_MS = 5_000;
/**
 * The agent's command queue's visibility timeout: commands are handled (and deleted) in
 * milliseconds. It also bounds how long a command a crashed agent had received but not deleted
 * stays invisible — holding back the rest of its task's FIFO group from the restarted agent.
 */
export const COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS = 30;
/** How many ended tasks the agent remembers (to ignore duplicate LAUNCHes). */
const COMPLETED_TASKS_KEPT = 1000;
/** How many KILLs for unknown tasks the agent remembers (to refuse their late LAUNCHes). */
const KILLED_UNKNOWN_KEPT = 10_000;

const COMMAND_TYPES = [
  'REGISTERED',
  'LAUNCH',
  'KILL',
  'ACKNOWLEDGE',
  'ERROR',
  'REREGISTER',
  'RECONCILE',
] as const satisfies readonly AgentCommand['type'][];

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

/** Events an Agent emits (for tests, metrics and the CLI). */
export interface AgentEvents {
  /** REGISTERED arrived the first time; the heartbeat interval now in use. */
  registered: [heartbeatIntervalMs: number];
  /** A REGISTER was sent (attempt 0 = first). */
  registerSent: [attempt: number];
  heartbeatSent: [];
  /** A valid command arrived (before it is handled). */
  command: [command: AgentCommand];
  /** A malformed command was logged and deleted. */
  rejected: [error: string, body: string];
  statusSent: [status: TaskStatus, attempt: number];
  taskStarted: [frameworkId: string, taskId: string, pid: number];
  taskTerminated: [frameworkId: string, taskId: string, termination: TaskTermination];
  /** A task's health changed (health checks). */
  taskHealth: [frameworkId: string, taskId: string, healthy: boolean];
  /** Checkpointed tasks were picked up at start (before REGISTER). */
  recovered: [running: number, ended: number];
}

interface TaskEntry {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly run: TaskRun;
  terminal: boolean;
  health?: HealthChecker;
}

const taskKey = (frameworkId: string, taskId: string): string => `${frameworkId}\u0000${taskId}`;

/** Terminal reasons that come from the agent (the containerizer), not from the task's executor. */
const AGENT_REASONS: ReadonlySet<TaskReason> = new Set<TaskReason>([
  'REASON_CONTAINER_LAUNCH_FAILED',
  'REASON_CONTAINER_LIMITATION_MEMORY',
  'REASON_FETCHER_FAILED',
  'REASON_AGENT_RESTARTED',
]);

/** Agent ids name the agent's queue, so they use only characters SQS queue names allow. */
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Reads `<workDir>/agent-id`, or creates it with a new uuid. */
export async function loadOrCreateAgentId(workDir: string): Promise<string> {
  const file = join(workDir, 'agent-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (!AGENT_ID.test(id)) {
      throw new Error(
        `${file} holds "${id.slice(0, 80)}", not an agent id (letters, digits, - and _; at most 64)`,
      );
    }
    return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(workDir, { recursive: true });
  const id = randomUUID();
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${id}\n`, { mode: 0o644 });
  await rename(tmp, file);
  return id;
}

export function agentQueueName(prefix: string, agentId: string): string {
  const name = `${prefix}-agent-${agentId}.fifo`;
  if (name.length > 80 || !/^[A-Za-z0-9_-]+\.fifo$/.test(name)) {
    throw new Error(
      `agent queue name "${name}" is not a valid SQS FIFO queue name (≤ 80 of A-Z a-z 0-9 - _)`,
    );
  }
  return name;
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
  readonly #bus: SqsBus;
  readonly #tasks = new Map<string, TaskEntry>();
  readonly #completed: string[] = [];
  readonly #killedUnknown = new Set<string>();
  readonly #sends = new Set<Promise<unknown>>();
  #agentId: string | undefined;
  #queueUrl: string | undefined;
  #resources: Resources | undefined;
  #updates: StatusUpdateManager | undefined;
  #abort: AbortController | undefined;
  #polling: Promise<void> | undefined;
  #registered = false;
  #registerAttempt = 0;
  #registerTimer: unknown;
  #heartbeatTimer: unknown;
  #heartbeatMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopping: Promise<void> | undefined;
  #isolation: Isolation | undefined;
  #fetcher: Fetcher | undefined;
  #monitorTimer: NodeJS.Timeout | undefined;
  #gcTimer: NodeJS.Timeout | undefined;
  /** Tasks that ended before a restart and whose terminal update is not yet acknowledged. */
  readonly #endedRuns = new Map<string, RunFiles>();

  constructor(opts: AgentOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log ?? stderrLog();
    this.#timers = opts.timers ?? realTimers;
    this.#bus = new SqsBus(opts.sqs);
  }

  /** The agent id (after start()). */
  get agentId(): string {
    if (this.#agentId === undefined) throw new Error('the agent has not started');
    return this.#agentId;
  }

  /** The agent's own command queue (after start()). */
  get queueUrl(): string {
    if (this.#queueUrl === undefined) throw new Error('the agent has not started');
    return this.#queueUrl;
  }

  /** What the agent offers (after start()). */
  get resources(): Resources {
    if (this.#resources === undefined) throw new Error('the agent has not started');
    return this.#resources;
  }

  get isRegistered(): boolean {
    return this.#registered;
  }

  get heartbeatIntervalMs(): number {
    return this.#heartbeatMs;
  }

  /** Tasks not yet ended. */
  runningTasks(): { frameworkId: string; taskId: string; pid?: number; sandbox: string }[] {
    return [...this.#tasks.values()]
      .filter((t) => !t.terminal)
      .map((t) => ({ frameworkId: t.frameworkId, taskId: t.taskId, pid: t.run.pid, sandbox: t.run.sandbox }));
  }

  /** The run of a task this agent knows (running or recently ended). */
  task(frameworkId: string, taskId: string): TaskRun | undefined {
    return this.#tasks.get(taskKey(frameworkId, taskId))?.run;
  }

  /** How tasks are isolated (after start()). */
  get isolation(): Isolation {
    if (this.#isolation === undefined) throw new Error('the agent has not started');
    return this.#isolation;
  }

  /** Status updates not yet acknowledged. */
  pendingStatusUpdates(): TaskStatus[] {
    return this.#updates?.pending() ?? [];
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
    this.#resources =
      o.resources === undefined || typeof o.resources === 'string'
        ? agentResources(o.workDir, o.resources)
        : o.resources;
    // Isolation probes (unshare, `docker info`) run while the queue is created.
    const [queueUrl, isolation] = await Promise.all([
      this.#createQueue(agentQueueName(o.prefix, agentId)),
      o.isolation instanceof Isolation
        ? o.isolation
        : o.isolation === undefined
          ? Isolation.none()
          : detectIsolation(o.isolation),
    ]);
    this.#queueUrl = queueUrl;
    this.#isolation = isolation;
    await this.#letTaskUserIn(isolation);
    this.#fetcher = o.fetcher ?? new Fetcher({ cacheDir: join(o.workDir, 'cache') });
    this.#updates = new StatusUpdateManager({
      // Nothing is sent before the control plane has answered REGISTER.
      paused: true,
      onChange: (frameworkId, taskId, pending) => this.#checkpointUpdates(frameworkId, taskId, pending),
      send: (status, attempt) => this.#sendStatus(status, attempt),
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
    this.#abort = new AbortController();
    this.#polling = pollQueue(o.sqs, this.#queueUrl, (batch) => this.#onBatch(batch), {
      signal: this.#abort.signal,
      waitSeconds: o.pollWaitSeconds ?? 20,
      onError: (e) => this.#log('warn', 'receive from command queue failed', { error: errorMessage(e) }),
    }).catch((e: unknown) => this.#log('error', 'command queue polling ended', { error: errorMessage(e) }));
    this.#state = 'running';
    this.#log('info', 'agent started', { agentId, queueUrl: this.#queueUrl, workDir: o.workDir });
    this.#log('info', `isolation: ${isolation.describe()}`, {
      ...(isolation.notes.length > 0 ? { notes: isolation.notes } : {}),
    });
    await this.#recover();
    const monitorMs = o.monitorIntervalMs ?? 1000;
    this.#monitorTimer = setInterval(() => this.#monitor(), monitorMs).unref();
    void this.#collectGarbage();
    this.#gcTimer = setInterval(() => void this.#collectGarbage(), o.gc?.intervalMs ?? 3600_000).unref();
    this.#register();
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
    this.#abort?.abort();
    this.#clearTimer('register');
    this.#clearTimer('heartbeat');
    clearInterval(this.#monitorTimer);
    clearInterval(this.#gcTimer);
    for (const t of this.#tasks.values()) t.health?.stop();
    if (opts.killTasks) {
      const live = [...this.#tasks.values()].filter((t) => !t.terminal);
      for (const t of live) t.run.kill(opts.gracePeriodMs);
      // Recovered tasks are not the agent's children: their end is seen by polling.
      const polling = setInterval(() => {
        for (const t of live) void t.run.poll();
      }, 50);
      try {
        await Promise.all(live.map((t) => t.run.terminated));
      } finally {
        clearInterval(polling);
      }
    }
    this.#updates?.stop();
    await Promise.allSettled([...this.#sends]);
    await this.#polling;
    this.#state = 'stopped';
    if (wasRunning)
      this.#log('info', 'agent stopped', { agentId: this.#agentId, killedTasks: !!opts.killTasks });
  }

  /** SIGKILLs every running task's process group, synchronously (for `process.on('exit')`). */
  killAllNow(): void {
    for (const t of this.#tasks.values()) if (!t.terminal) t.run.killNow();
  }

  // ---- registration and heartbeats ----

  #register(): void {
    if (this.#registered || this.#state !== 'running') return;
    const attempt = this.#registerAttempt++;
    const call: AgentCall = {
      v: 1,
      type: 'REGISTER',
      agentId: this.agentId,
      hostname: this.#opts.hostname ?? os.hostname(),
      resources: toWire(this.resources),
      // The isolation in force (`meso.isolation`, `meso.containers`), then the operator's.
      attributes: { ...this.#isolation?.attributes(), ...this.#opts.attributes },
      queueUrl: this.queueUrl,
      agentVersion: this.#opts.agentVersion ?? AGENT_VERSION,
      // What it runs, so the registry can reconcile it when the agent comes back.
      tasks: this.runningTasks().map((t) => ({
        frameworkId: t.frameworkId,
        taskId: t.taskId,
        state: t.pid !== undefined ? ('TASK_RUNNING' as const) : ('TASK_STAGING' as const),
      })),
    };
    this.#track(
      this.#sendCall(call, randomUUID()).then(
        () => {
          if (attempt === 0) this.#log('info', 'REGISTER sent', { resources: call.resources });
          this.emit('registerSent', attempt);
        },
        (e: unknown) => this.#log('warn', 'REGISTER send failed; will retry', { error: errorMessage(e) }),
      ),
    );
    this.#registerTimer = this.#timers.setTimeout(() => {
      this.#registerTimer = undefined;
      this.#register();
    }, this.#opts.registerRetryIntervalMs ?? DEFAULT_REGISTER_RETRY_INTERVAL_MS);
  }

  #onRegistered(cmd: AgentCommandOf<'REGISTERED'>): void {
    if (cmd.agentId !== this.agentId) {
      this.#log('warn', 'ignoring REGISTERED for another agent', { agentId: cmd.agentId });
      return;
    }
    const asked =
      cmd.heartbeatIntervalSeconds > 0 ? cmd.heartbeatIntervalSeconds * 1000 : DEFAULT_HEARTBEAT_INTERVAL_MS;
    const mine = this.#opts.heartbeatIntervalMs;
    const interval = mine !== undefined && mine > 0 ? Math.min(mine, asked) : asked;
    if (mine !== undefined && mine > asked) {
      this.#log('warn', 'heartbeat interval shortened to what the control plane asks', {
        requestedMs: mine,
        usedMs: asked,
      });
    }
    const changed = interval !== this.#heartbeatMs;
    this.#heartbeatMs = interval;
    if (!this.#registered) {
      this.#registered = true;
      this.#clearTimer('register');
      this.#updates?.resume();
      this.#log('info', 'registered', { agentId: this.agentId, heartbeatIntervalMs: interval });
      this.#scheduleHeartbeat();
      this.emit('registered', interval);
    } else if (changed) {
      this.#clearTimer('heartbeat');
      this.#scheduleHeartbeat();
    }
  }

  #scheduleHeartbeat(): void {
    if (this.#state !== 'running') return;
    this.#heartbeatTimer = this.#timers.setTimeout(() => {
      this.#heartbeatTimer = undefined;
      if (this.#state !== 'running') return;
      this.#track(
        this.#sendCall({ v: 1, type: 'HEARTBEAT', agentId: this.agentId }, randomUUID()).then(
          () => this.emit('heartbeatSent'),
          (e: unknown) => this.#log('warn', 'HEARTBEAT send failed', { error: errorMessage(e) }),
        ),
      );
      this.#scheduleHeartbeat();
    }, this.#heartbeatMs);
  }

  #clearTimer(which: 'register' | 'heartbeat'): void {
    const t = which === 'register' ? this.#registerTimer : this.#heartbeatTimer;
    if (t !== undefined) this.#timers.clearTimeout(t);
    if (which === 'register') this.#registerTimer = undefined;
    else this.#heartbeatTimer = undefined;
  }

  // ---- sending ----

  async #sendCall(call: AgentCall, dedupId: string): Promise<void> {
    const checked = AgentCallSchema.safeParse(call);
    if (!checked.success) {
      // A bug in the agent: sending it would only get it rejected by the registry.
      throw new Error(`refusing to send an invalid ${call.type}: ${checked.error.message}`);
    }
    await this.#bus.send(this.#opts.agentCallsQueueUrl, [
      // A task's updates stay in order in their own group (the registry applies them per task);
      // REGISTER and HEARTBEAT keep the agent's group.
      {
        body: JSON.stringify(checked.data),
        groupId:
          checked.data.type === 'STATUS_UPDATE'
            ? `${this.agentId}:${checked.data.status.taskId}`
            : this.agentId,
        dedupId,
      },
    ]);
  }

  async #sendStatus(status: TaskStatus, attempt: number): Promise<void> {
    const uuid = status.uuid ?? randomUUID();
    const sending = this.#sendCall(
      { v: 1, type: 'STATUS_UPDATE', agentId: this.agentId, status },
      attempt === 0 ? uuid : `${uuid}-${attempt}`,
    );
    this.#track(sending.catch(() => {}));
    await sending;
    this.#log(
      attempt === 0 ? 'debug' : 'info',
      attempt === 0 ? 'status update sent' : 'status update resent',
      {
        taskId: status.taskId,
        state: status.state,
        uuid,
        attempt,
      },
    );
    this.#opts.onStatusSent?.(status, attempt);
    this.emit('statusSent', status, attempt);
  }

  #track(p: Promise<unknown>): void {
    this.#sends.add(p);
    void p.finally(() => this.#sends.delete(p));
  }

  #update(input: Omit<StatusUpdateInput, 'agentId'>): void {
    if (!this.#updates) return;
    this.#updates.update({ ...input, agentId: this.agentId });
  }

  // ---- commands ----

  async #onBatch(batch: ReceivedMessage[]): Promise<readonly string[]> {
    for (const m of batch) {
      const parsed = parseMessage(AgentCommandSchema, m.body, COMMAND_TYPES);
      if (!parsed.ok) {
        this.#log('warn', 'malformed command deleted', {
          code: parsed.code,
          error: parsed.error,
          messageId: m.messageId,
          body: m.body.slice(0, 256),
        });
        this.emit('rejected', parsed.error, m.body);
        continue;
      }
      const cmd = parsed.message as AgentCommand;
      try {
        this.emit('command', cmd);
        this.#handle(cmd);
      } catch (e) {
        // Never retried: handling is local and deterministic, so a redelivery would fail again.
        this.#log('error', `handling ${cmd.type} failed; command deleted`, { error: errorMessage(e) });
      }
    }
    return [];
  }

  #handle(cmd: AgentCommand): void {
    switch (cmd.type) {
      case 'REGISTERED':
        this.#onRegistered(cmd);
        return;
      case 'LAUNCH':
        this.#launch(cmd);
        return;
      case 'KILL':
        this.#kill(cmd);
        return;
      case 'ACKNOWLEDGE':
        if (!this.#updates?.acknowledge(cmd.frameworkId, cmd.taskId, cmd.uuid)) {
          this.#log('debug', 'ignoring ACKNOWLEDGE for no in-flight update', {
            taskId: cmd.taskId,
            uuid: cmd.uuid,
          });
        }
        return;
      case 'ERROR':
        this.#log('warn', 'control plane reported an error', { code: cmd.code, message: cmd.message });
        if (cmd.code === 'AGENT_GONE') {
          // Marked gone by the registry: it will never take this id again; stop asking.
          this.#log(
            'error',
            'this agent id was marked gone; not registering again (use a new work directory)',
          );
          this.#clearTimer('register');
          this.#clearTimer('heartbeat');
        }
        return;
      case 'REREGISTER':
        this.#reregister(cmd);
        return;
      case 'RECONCILE':
        this.#reconcile(cmd);
        return;
    }
  }

  /** The registry marked this agent unreachable: register again (with its tasks) and resend pending updates. */
  #reregister(cmd: AgentCommandOf<'REREGISTER'>): void {
    if (cmd.agentId !== this.agentId || this.#state !== 'running') return;
    this.#log('warn', 'asked to register again', { reason: cmd.reason });
    this.#registered = false;
    this.#clearTimer('register');
    this.#clearTimer('heartbeat');
    this.#register();
    this.#updates?.retryNow();
  }

  /**
   * Tasks the registry believes run here but this agent did not list when it registered: each one
   * it does not know gets `ifUnknown` (and a LAUNCH for it that arrives later is refused, as after a
   * KILL of an unknown task). Known tasks need nothing: their updates are on their way.
   */
  #reconcile(cmd: AgentCommandOf<'RECONCILE'>): void {
    // A task with updates still to deliver (one that ended while the agent was down, say) is
    // known: its own updates answer for it.
    const pending = new Set((this.#updates?.pending() ?? []).map((u) => taskKey(u.frameworkId, u.taskId)));
    for (const t of cmd.tasks) {
      const key = taskKey(t.frameworkId, t.taskId);
      if (this.#tasks.has(key) || pending.has(key) || this.#killedUnknown.has(key)) continue;
      this.#refuseUnknown(key);
      this.#log('info', `reconciliation: unknown task, reporting ${t.ifUnknown}`, {
        frameworkId: t.frameworkId,
        taskId: t.taskId,
      });
      this.#update({
        frameworkId: t.frameworkId,
        taskId: t.taskId,
        state: t.ifUnknown,
        reason: 'REASON_RECONCILIATION',
        message: 'unknown to this agent (reconciliation)',
        source: 'SOURCE_AGENT',
      });
    }
  }

  #launch(cmd: AgentCommandOf<'LAUNCH'>): void {
    const { frameworkId, task } = cmd;
    const key = taskKey(frameworkId, task.taskId);
    const base = { frameworkId, taskId: task.taskId } as const;
    if (this.#tasks.has(key) || this.#endedRuns.has(key)) {
      this.#log('info', 'ignoring duplicate LAUNCH', base);
      return;
    }
    if (this.#killedUnknown.has(key)) {
      this.#log('info', 'not launching a task killed before its LAUNCH arrived', base);
      this.#update({
        ...base,
        state: 'TASK_DROPPED',
        reason: 'REASON_TASK_KILLED_DURING_LAUNCH',
        message: 'a KILL for this task arrived before its LAUNCH; it was not run',
        source: 'SOURCE_AGENT',
      });
      return;
    }
    if (task.agentId !== this.agentId) {
      this.#log('warn', 'dropping a task meant for another agent', { ...base, agentId: task.agentId });
      this.#update({
        ...base,
        state: 'TASK_DROPPED',
        reason: 'REASON_TASK_INVALID',
        message: `task is for agent ${task.agentId}, not this agent (${this.agentId})`,
        source: 'SOURCE_AGENT',
      });
      return;
    }
    const uris = task.uris ?? [];
    const run = this.#newRun(frameworkId, task, {
      ...(uris.length > 0 ? { fetch: (ctx) => this.#fetch(ctx) } : {}),
      onStarted: (pid) => {
        this.#log('info', 'task started', { ...base, pid, sandbox: run.sandbox });
        this.#update({ ...base, state: 'TASK_STARTING', message: `pid ${pid}`, source: 'SOURCE_EXECUTOR' });
        this.#update({ ...base, state: 'TASK_RUNNING', message: `pid ${pid}`, source: 'SOURCE_EXECUTOR' });
        this.emit('taskStarted', frameworkId, task.taskId, pid);
        this.#startHealthChecks(key);
      },
    });
    this.#tasks.set(key, { frameworkId, taskId: task.taskId, run, terminal: false });
    this.#log('info', 'launching task', { ...base, sandbox: run.sandbox });
  }

  /** A run of `task` with the agent's work directory, kill grace period and isolators. */
  #newRun(frameworkId: string, task: TaskInfo, extra: Partial<RunTaskOptions>): TaskRun {
    const key = taskKey(frameworkId, task.taskId);
    return new TaskRun({
      workDir: this.#opts.workDir,
      agentId: this.agentId,
      frameworkId,
      task,
      defaultKillGracePeriodMs: this.#opts.killGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS,
      isolators: this.#isolatorsFor(task),
      onTerminated: (t) => this.#terminated(key, t),
      ...extra,
    });
  }

  #isolatorsFor(task: TaskInfo): Isolator[] {
    return [...(this.#isolation?.isolatorsFor(task) ?? []), ...(this.#opts.isolators ?? [])];
  }

  /** As the user the sandbox was given to (the user isolator refused the launch before, if it may not run). */
  async #fetch(ctx: IsolationContext): Promise<void> {
    const user = ctx.state.user as { uid: number; gid: number } | undefined;
    await this.#fetcher?.fetchAll(ctx.task.uris ?? [], ctx.sandbox, user);
  }

  /** Starts the task's health checks, if it has any (its process runs). */
  #startHealthChecks(key: string): void {
    const entry = this.#tasks.get(key);
    const check = entry?.run.task.healthCheck;
    if (!entry || !check || entry.terminal || entry.health) return;
    const { run } = entry;
    const base = { frameworkId: entry.frameworkId, taskId: entry.taskId } as const;
    const user = run.isolationState.user as { uid: number; gid: number } | undefined;
    entry.health = new HealthChecker({
      check,
      startedAt: run.startedAt ?? Date.now(),
      sandbox: run.sandbox,
      env: buildSpawnSpec({
        task: run.task,
        sandbox: run.sandbox,
        agentId: this.agentId,
        frameworkId: entry.frameworkId,
      }).env,
      ...(user ? { user } : {}),
      inTask: (argv) => run.execArgv(argv),
      onChange: (healthy, result) => {
        if (entry.terminal) return;
        this.#log(healthy ? 'info' : 'warn', `task is ${healthy ? 'healthy' : 'unhealthy'}`, {
          ...base,
          check: result.detail,
        });
        this.#update({
          ...base,
          state: 'TASK_RUNNING',
          reason: 'REASON_TASK_HEALTH_CHECK_STATUS_UPDATED',
          healthy,
          message: result.detail,
          source: 'SOURCE_EXECUTOR',
        });
        this.emit('taskHealth', entry.frameworkId, entry.taskId, healthy);
      },
      onUnhealthy: (failures, result) => {
        if (entry.terminal) return;
        this.#log('warn', 'killing an unhealthy task', { ...base, failures, check: result.detail });
        run.kill(undefined, {
          reason: 'REASON_TASK_UNHEALTHY',
          healthy: false,
          message: `failed ${failures} health check${failures === 1 ? '' : 's'} in a row (last: ${result.detail})`,
        });
      },
    });
    entry.health.start();
  }

  /** Writes a task's unacknowledged updates to its run's checkpoint; removes the run once all are acknowledged after its end. */
  #checkpointUpdates(frameworkId: string, taskId: string, pending: readonly TaskStatus[]): void {
    const key = taskKey(frameworkId, taskId);
    const entry = this.#tasks.get(key);
    const files = entry?.run.files ?? this.#endedRuns.get(key);
    if (!files) return;
    if (pending.length === 0 && (!entry || entry.terminal)) {
      files.remove();
      this.#endedRuns.delete(key);
      return;
    }
    files.writeUpdates(pending);
  }

  /**
   * Picks up the runs a previous agent process checkpointed: running ones are watched again
   * (and reported TASK_RUNNING), ones that ended while the agent was down are reported with the
   * exit status their supervisor recorded, and unacknowledged updates are queued again.
   */
  async #recover(): Promise<void> {
    const o = this.#opts;
    const updates = this.#updates!;
    const resumed: TaskEntry[] = [];
    let ended = 0;
    for (const files of listRuns(o.workDir)) {
      const rec = files.readRun();
      if (!rec) {
        this.#log('warn', 'removing an unreadable task checkpoint', { dir: files.dir });
        files.remove();
        continue;
      }
      const key = taskKey(rec.frameworkId, rec.taskId);
      const pending = files.readUpdates();
      const base = { frameworkId: rec.frameworkId, taskId: rec.taskId };
      if (files.isEnded() || pending.some((u) => isTerminal(u.state)) || this.#tasks.has(key)) {
        if (pending.length === 0) {
          files.remove();
          continue;
        }
        this.#endedRuns.set(key, files);
        updates.restore(pending);
        this.#log('info', 'resending updates of a task that ended before the restart', {
          ...base,
          updates: pending.length,
        });
        continue;
      }
      const run = this.#newRun(rec.frameworkId, rec.task, { recover: rec });
      const entry: TaskEntry = { frameworkId: rec.frameworkId, taskId: rec.taskId, run, terminal: false };
      this.#tasks.set(key, entry);
      updates.restore(pending);
      resumed.push(entry);
    }
    // Ends of tasks that exited while the agent was down are found now, before REGISTER.
    await Promise.all(resumed.map((e) => e.run.poll()));
    let running = 0;
    for (const e of resumed) {
      if (e.terminal) {
        ended++;
        continue;
      }
      running++;
      this.#log('info', 'recovered a running task', {
        frameworkId: e.frameworkId,
        taskId: e.taskId,
        pid: e.run.pid,
      });
      this.#update({
        frameworkId: e.frameworkId,
        taskId: e.taskId,
        state: 'TASK_RUNNING',
        message: `recovered after an agent restart (pid ${e.run.pid})`,
        source: 'SOURCE_AGENT',
      });
      this.#startHealthChecks(taskKey(e.frameworkId, e.taskId));
    }
    if (resumed.length > 0 || this.#endedRuns.size > 0) {
      this.#log('info', `recovered ${running} running task(s); ${ended} ended while the agent was down`, {
        pendingUpdates: updates.pending().length,
      });
    }
    this.emit('recovered', running, ended);
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

  /** Each tick: running tasks against their limits, recovered ones for their end. */
  #monitor(): void {
    for (const t of this.#tasks.values()) {
      if (!t.terminal) void t.run.poll();
    }
  }

  async #collectGarbage(): Promise<void> {
    if (this.#state !== 'running') return;
    try {
      const keep = new Set<string>();
      for (const t of this.#tasks.values()) if (!t.terminal) keep.add(t.run.sandbox);
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

  #terminated(key: string, t: TaskTermination): void {
    const entry = this.#tasks.get(key);
    if (!entry) return;
    entry.terminal = true;
    entry.health?.stop();
    const base = { frameworkId: entry.frameworkId, taskId: entry.taskId };
    this.#log(t.state === 'TASK_FINISHED' ? 'info' : 'warn', `task ended: ${t.state}`, {
      ...base,
      message: t.message.split('\n')[0],
    });
    this.#update({
      ...base,
      state: t.state,
      ...(t.reason ? { reason: t.reason } : {}),
      message: t.message,
      source: t.reason !== undefined && AGENT_REASONS.has(t.reason) ? 'SOURCE_AGENT' : 'SOURCE_EXECUTOR',
      ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
      ...(t.healthy !== undefined ? { healthy: t.healthy } : {}),
      stdoutTail: t.stdoutTail,
      stderrTail: t.stderrTail,
    });
    // After the terminal update is checkpointed: a restart now resends it and runs nothing.
    try {
      entry.run.files.writeEnded(Date.now());
    } catch (e) {
      this.#log('warn', 'could not checkpoint the end of a task', { ...base, error: errorMessage(e) });
    }
    this.emit('taskTerminated', entry.frameworkId, entry.taskId, t);
    // Remember a bounded number of ended tasks, so duplicate LAUNCHes stay ignored for a while.
    this.#completed.push(key);
    while (this.#completed.length > COMPLETED_TASKS_KEPT) {
      const old = this.#completed.shift();
      if (old !== undefined) this.#tasks.delete(old);
    }
  }

  #kill(cmd: AgentCommandOf<'KILL'>): void {
    const { frameworkId, taskId } = cmd;
    const key = taskKey(frameworkId, taskId);
    const entry = this.#tasks.get(key);
    const grace = cmd.gracePeriodSeconds !== undefined ? cmd.gracePeriodSeconds * 1000 : undefined;
    if (entry) {
      if (entry.terminal) {
        this.#log('info', 'ignoring KILL for a task that has already ended', { frameworkId, taskId });
        return;
      }
      this.#log('info', 'killing task', {
        frameworkId,
        taskId,
        gracePeriodMs: grace ?? entry.run.defaultGracePeriodMs,
      });
      entry.run.kill(grace);
      return;
    }
    if (this.#killedUnknown.has(key)) return; // A redelivered KILL: already answered.
    this.#refuseUnknown(key);
    this.#log('info', 'KILL for an unknown task: reporting TASK_DROPPED', { frameworkId, taskId });
    this.#update({
      frameworkId,
      taskId,
      state: 'TASK_DROPPED',
      reason: 'REASON_TASK_UNKNOWN',
      message: 'unknown task: this agent has not received its LAUNCH, and will not run it if one arrives',
      source: 'SOURCE_AGENT',
    });
  }

  /** Remembers (a bounded number of) unknown tasks answered for, so a later LAUNCH of one is refused. */
  #refuseUnknown(key: string): void {
    this.#killedUnknown.add(key);
    if (this.#killedUnknown.size > KILLED_UNKNOWN_KEPT) {
      const oldest = this.#killedUnknown.values().next().value;
      if (oldest !== undefined) this.#killedUnknown.delete(oldest);
    }
  }

  // ---- the command queue ----

  async #createQueue(name: string): Promise<string> {
    const { sqs } = this.#opts;
    try {
      const res = await sqs.call('CreateQueue', {
        QueueName: name,
        Attributes: {
          FifoQueue: 'true',
          VisibilityTimeout: String(COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS),
        },
      });
      if (!res.QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
      return res.QueueUrl;
    } catch (e) {
      // The queue exists with other attributes (an older agent version made it): use it as it is.
      if ((e as Error).name !== 'QueueNameExists') throw e;
      this.#log('warn', 'command queue exists with other attributes; using it', { name });
      const res = await sqs.call('GetQueueUrl', { QueueName: name });
      if (!res.QueueUrl) throw new Error(`GetQueueUrl ${name} returned no URL`);
      return res.QueueUrl;
    }
  }
}
