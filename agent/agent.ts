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
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { pollQueue, type ReceivedMessage, SqsBus } from '../lib/adapters/sqs.ts';
import { type Resources, toWire } from '../lib/core/resources.ts';
import type { Clock, Ids } from '../lib/ports/clock.ts';
import {
  type AgentCall,
  AgentCallSchema,
  type AgentCommand,
  type AgentCommandOf,
  AgentCommandSchema,
} from '../lib/protocol/agent.ts';
import type { TaskStatus } from '../lib/protocol/common.ts';
import { parseMessage } from '../lib/protocol/parse.ts';
import { DEFAULT_KILL_GRACE_PERIOD_MS, type Isolator, TaskRun, type TaskTermination } from './executor.ts';
import { errorMessage, type Log, stderrLog } from './log.ts';
import { agentResources } from './resources.ts';
import { realTimers, type StatusUpdateInput, StatusUpdateManager, type Timers } from './status-updates.ts';

export const AGENT_VERSION = '0.1.0';
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
export const DEFAULT_REGISTER_RETRY_INTERVAL_MS = 5_000;
/** The agent's command queue's visibility timeout: commands are handled in well under this. */
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
] as const satisfies readonly AgentCommand['type'][];

export interface AgentOptions {
  readonly sqs: SQSClient;
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
  readonly isolators?: readonly Isolator[];
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
}

interface TaskEntry {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly run: TaskRun;
  terminal: boolean;
}

const taskKey = (frameworkId: string, taskId: string): string => `${frameworkId}\u0000${taskId}`;

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
 * const agent = new Agent({ sqs: createSqsClient(), agentCallsQueueUrl, prefix: 'meso', workDir: '/var/lib/meso' });
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
    this.#queueUrl = await this.#createQueue(agentQueueName(o.prefix, agentId));
    this.#updates = new StatusUpdateManager({
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
    });
    this.#abort = new AbortController();
    this.#polling = pollQueue(o.sqs, this.#queueUrl, (batch) => this.#onBatch(batch), {
      signal: this.#abort.signal,
      waitSeconds: o.pollWaitSeconds ?? 20,
      onError: (e) => this.#log('warn', 'receive from command queue failed', { error: errorMessage(e) }),
    }).catch((e: unknown) => this.#log('error', 'command queue polling ended', { error: errorMessage(e) }));
    this.#state = 'running';
    this.#log('info', 'agent started', { agentId, queueUrl: this.#queueUrl, workDir: o.workDir });
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
    if (opts.killTasks) {
      const live = [...this.#tasks.values()].filter((t) => !t.terminal);
      for (const t of live) t.run.kill(opts.gracePeriodMs);
      await Promise.all(live.map((t) => t.run.terminated));
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
      attributes: { ...this.#opts.attributes },
      queueUrl: this.queueUrl,
      agentVersion: this.#opts.agentVersion ?? AGENT_VERSION,
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
        groupId: checked.data.type === 'STATUS_UPDATE' ? `${this.agentId}:${checked.data.status.taskId}` : this.agentId,
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
        return;
    }
  }

  #launch(cmd: AgentCommandOf<'LAUNCH'>): void {
    const { frameworkId, task } = cmd;
    const key = taskKey(frameworkId, task.taskId);
    const base = { frameworkId, taskId: task.taskId } as const;
    if (this.#tasks.has(key)) {
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
    const run = new TaskRun({
      workDir: this.#opts.workDir,
      agentId: this.agentId,
      frameworkId,
      task,
      defaultKillGracePeriodMs: this.#opts.killGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS,
      isolators: this.#opts.isolators,
      onStarted: (pid) => {
        this.#log('info', 'task started', { ...base, pid, sandbox: run.sandbox });
        this.#update({ ...base, state: 'TASK_STARTING', message: `pid ${pid}`, source: 'SOURCE_EXECUTOR' });
        this.#update({ ...base, state: 'TASK_RUNNING', message: `pid ${pid}`, source: 'SOURCE_EXECUTOR' });
        this.emit('taskStarted', frameworkId, task.taskId, pid);
      },
      onTerminated: (t) => this.#terminated(key, t),
    });
    this.#tasks.set(key, { frameworkId, taskId: task.taskId, run, terminal: false });
    this.#log('info', 'launching task', { ...base, sandbox: run.sandbox });
  }

  #terminated(key: string, t: TaskTermination): void {
    const entry = this.#tasks.get(key);
    if (!entry) return;
    entry.terminal = true;
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
      source: t.reason === 'REASON_CONTAINER_LAUNCH_FAILED' ? 'SOURCE_AGENT' : 'SOURCE_EXECUTOR',
      ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
      stdoutTail: t.stdoutTail,
      stderrTail: t.stderrTail,
    });
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
    this.#killedUnknown.add(key);
    if (this.#killedUnknown.size > KILLED_UNKNOWN_KEPT) {
      const oldest = this.#killedUnknown.values().next().value;
      if (oldest !== undefined) this.#killedUnknown.delete(oldest);
    }
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

  // ---- the command queue ----

  async #createQueue(name: string): Promise<string> {
    const { sqs } = this.#opts;
    try {
      const res = await sqs.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: {
            FifoQueue: 'true',
            VisibilityTimeout: String(COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS),
          },
        }),
      );
      if (!res.QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
      return res.QueueUrl;
    } catch (e) {
      // The queue exists with other attributes (an older agent version made it): use it as it is.
      if ((e as Error).name !== 'QueueNameExists') throw e;
      this.#log('warn', 'command queue exists with other attributes; using it', { name });
      const res = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      if (!res.QueueUrl) throw new Error(`GetQueueUrl ${name} returned no URL`);
      return res.QueueUrl;
    }
  }
}
