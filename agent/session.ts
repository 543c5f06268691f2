/**
 * The agent's session with the control plane: its command queue, REGISTER until REGISTERED,
 * heartbeats, and every call it sends.
 *
 * Queues: the agent sends REGISTER, HEARTBEAT and STATUS_UPDATE to the `agent-calls` FIFO queue
 * (MessageGroupId = its agent id, so the registry sees its calls in order) and receives REGISTERED,
 * LAUNCH, KILL, ACKNOWLEDGE and ERROR on its own FIFO queue `<prefix>-agent-<agentId>.fifo`,
 * which it creates itself (CreateQueue is idempotent) and names in REGISTER.
 *
 * The session handles REGISTERED, REREGISTER and ERROR itself and hands the commands about tasks
 * (LAUNCH, KILL, ACKNOWLEDGE, RECONCILE) to its owner.
 *
 * - The heartbeat interval is the one REGISTERED names; `heartbeatIntervalMs`, when given, can
 *   only shorten it (a longer one would get the agent marked unreachable).
 * - Status update FIFO deduplication ids are the update's uuid on the first send and
 *   `<uuid>-<attempt>` on resends, so a resend gets through inside SQS's 5-minute dedup window.
 * - Calls ready together go in one SendMessageBatch, each with its own group and deduplication
 *   id; handled commands are deleted in batches while the poll goes on (`sqs-batcher.ts`).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { pollQueue, type ReceivedMessage, type SqsApi } from '../lib/adapters/sqs-api.ts';
import { DeleteBatcher, SendBatcher } from '../lib/adapters/sqs-batcher.ts';
import { type Resources, toWire } from '../lib/core/resources.ts';
import {
  type AgentCall,
  type AgentCallOf,
  AgentCallSchema,
  type AgentCommand,
  type AgentCommandOf,
  AgentCommandSchema,
  type LatestStatus,
} from '../lib/protocol/agent.ts';
import type { TaskStatus } from '../lib/protocol/common.ts';
import { statusUpdateGroup } from '../lib/protocol/groups.ts';
import { parseMessage } from '../lib/protocol/parse.ts';
import type { AgentEmitter } from './events.ts';
import { errorMessage, type Log } from './log.ts';
import type { Timers } from './status-updates.ts';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
export const DEFAULT_REGISTER_RETRY_INTERVAL_MS = 5_000;
/**
 * The agent's command queue's visibility timeout, for receivers that name none (the agent's own
 * receives name {@link COMMAND_RECEIVE_VISIBILITY_SECONDS}).
 */
export const COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS = 30;
/**
 * How long a command the agent received stays hidden (set on each ReceiveMessage, so it holds for
 * queues an older agent created too). Commands are handled synchronously and deleted in the same
 * breath (a DeleteBatcher's batch: at once, or right after the delete in flight), so this only has
 * to outlast two DeleteMessageBatch calls; a delete slower than that gets the
 * command delivered again, which the agent tolerates (SQS delivers at least once: a duplicate
 * LAUNCH, KILL, ACKNOWLEDGE, RECONCILE or REGISTERED changes nothing). What it bounds is the cost
 * of a crash: a long poll left open by a killed agent process is still handed the next command —
 * the REGISTERED its successor waits for — and that command, with the rest of its FIFO group,
 * stays hidden this long, not the queue's 30 s.
 */
export const COMMAND_RECEIVE_VISIBILITY_SECONDS = 3;

const COMMAND_TYPES = [
  'REGISTERED',
  'LAUNCH',
  'KILL',
  'ACKNOWLEDGE',
  'ERROR',
  'REREGISTER',
  'RECONCILE',
  'READ_LOGS',
] as const satisfies readonly AgentCommand['type'][];

/** The commands about tasks, which the session hands to its owner. */
export type TaskCommand = AgentCommandOf<'LAUNCH' | 'KILL' | 'ACKNOWLEDGE' | 'RECONCILE' | 'READ_LOGS'>;

/** What a REGISTER says about the node, asked for at each attempt. */
export interface Registration {
  readonly resources: Resources;
  readonly attributes: Readonly<Record<string, string>>;
  readonly tasks: AgentCallOf<'REGISTER'>['tasks'];
}

export interface SessionOptions {
  readonly sqs: SqsApi;
  readonly agentCallsQueueUrl: string;
  readonly agentId: string;
  readonly agentVersion: string;
  /** Default: os.hostname(). */
  readonly hostname?: string;
  /** Upper bound on the heartbeat interval (see the module comment). */
  readonly heartbeatIntervalMs?: number;
  /** REGISTER is resent this often until REGISTERED arrives. Default 5000. */
  readonly registerRetryIntervalMs?: number;
  /** Long-poll wait of each receive on the command queue, 0–20. Default 20. */
  readonly pollWaitSeconds?: number;
  readonly timers: Timers;
  readonly log: Log;
  readonly events: AgentEmitter;
  readonly registration: () => Registration;
  /** REGISTERED arrived (the first time, or the first time after REREGISTER). */
  readonly onRegistered: () => void;
  /** The registry asked for a new REGISTER: pending updates should go again. */
  readonly onReregister: () => void;
  readonly onTaskCommand: (cmd: TaskCommand) => void;
  /** Called after each status update send attempt was handed to SQS (attempt 0 = first send). */
  readonly onStatusSent?: (status: TaskStatus, attempt: number) => void;
}

export class ControlPlaneSession {
  readonly #opts: SessionOptions;
  readonly #sender: SendBatcher;
  #deleter: DeleteBatcher | undefined;
  readonly #sends = new Set<Promise<unknown>>();
  #queueUrl: string | undefined;
  #abort: AbortController | undefined;
  #polling: Promise<void> | undefined;
  #open = false;
  #registered = false;
  #registerAttempt = 0;
  #registerTimer: unknown;
  #heartbeatTimer: unknown;
  #heartbeatMs = DEFAULT_HEARTBEAT_INTERVAL_MS;

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    this.#sender = new SendBatcher({ sqs: opts.sqs, queueUrl: opts.agentCallsQueueUrl });
  }

  get agentId(): string {
    return this.#opts.agentId;
  }

  /** The agent's own command queue (after openQueue()). */
  get queueUrl(): string {
    if (this.#queueUrl === undefined) throw new Error('the agent has not started');
    return this.#queueUrl;
  }

  get isRegistered(): boolean {
    return this.#registered;
  }

  get heartbeatIntervalMs(): number {
    return this.#heartbeatMs;
  }

  /** Creates the command queue (or finds it). */
  async openQueue(name: string, tags?: Readonly<Record<string, string>>): Promise<string> {
    const { sqs } = this.#opts;
    try {
      const res = await sqs.call('CreateQueue', {
        QueueName: name,
        Attributes: {
          FifoQueue: 'true',
          VisibilityTimeout: String(COMMAND_QUEUE_VISIBILITY_TIMEOUT_SECONDS),
        },
        ...(tags ? { tags: { ...tags } } : {}),
      });
      if (!res.QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
      this.#queueUrl = res.QueueUrl;
    } catch (e) {
      // The queue exists with other attributes (an older agent version made it): use it as it is.
      if ((e as Error).name !== 'QueueNameExists') throw e;
      this.#opts.log('warn', 'command queue exists with other attributes; using it', { name });
      const res = await sqs.call('GetQueueUrl', { QueueName: name });
      if (!res.QueueUrl) throw new Error(`GetQueueUrl ${name} returned no URL`);
      this.#queueUrl = res.QueueUrl;
    }
    return this.#queueUrl;
  }

  /** Starts polling the command queue. Nothing is registered yet: see register(). */
  listen(): void {
    const o = this.#opts;
    this.#open = true;
    this.#abort = new AbortController();
    const deleter = new DeleteBatcher({
      sqs: o.sqs,
      queueUrl: this.queueUrl,
      onError: (e) => o.log('warn', 'deleting handled commands failed', { error: errorMessage(e) }),
    });
    this.#deleter = deleter;
    this.#polling = pollQueue(o.sqs, this.queueUrl, (batch) => this.#onBatch(batch), {
      signal: this.#abort.signal,
      waitSeconds: o.pollWaitSeconds ?? 20,
      visibilityTimeout: COMMAND_RECEIVE_VISIBILITY_SECONDS,
      onError: (e) => o.log('warn', 'receive from command queue failed', { error: errorMessage(e) }),
      deleteLater: (handles) => deleter.delete(handles),
    }).catch((e: unknown) => o.log('error', 'command queue polling ended', { error: errorMessage(e) }));
  }

  /** Stops polling, registering and heartbeats; sends already begun go on (see drain()). */
  close(): void {
    this.#open = false;
    this.#abort?.abort();
    this.#clearTimer('register');
    this.#clearTimer('heartbeat');
  }

  /** Waits for the sends begun and the last receive. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#sends]);
    await this.#polling;
    await this.#deleter?.drain();
    await this.#sender.drain();
  }

  // ---- registration and heartbeats ----

  /** Sends REGISTER, and again every retry interval until REGISTERED arrives. */
  register(): void {
    if (this.#registered || !this.#open) return;
    const attempt = this.#registerAttempt++;
    const node = this.#opts.registration();
    const call: AgentCall = {
      v: 1,
      type: 'REGISTER',
      agentId: this.agentId,
      hostname: this.#opts.hostname ?? os.hostname(),
      resources: toWire(node.resources),
      attributes: { ...node.attributes },
      queueUrl: this.queueUrl,
      agentVersion: this.#opts.agentVersion,
      tasks: node.tasks,
    };
    this.#track(
      this.#sendCall(call, randomUUID()).then(
        () => {
          if (attempt === 0) this.#opts.log('info', 'REGISTER sent', { resources: call.resources });
          this.#opts.events.emit('registerSent', attempt);
        },
        (e: unknown) =>
          this.#opts.log('warn', 'REGISTER send failed; will retry', { error: errorMessage(e) }),
      ),
    );
    this.#registerTimer = this.#opts.timers.setTimeout(() => {
      this.#registerTimer = undefined;
      this.register();
    }, this.#opts.registerRetryIntervalMs ?? DEFAULT_REGISTER_RETRY_INTERVAL_MS);
  }

  #onRegistered(cmd: AgentCommandOf<'REGISTERED'>): void {
    const log = this.#opts.log;
    if (cmd.agentId !== this.agentId) {
      log('warn', 'ignoring REGISTERED for another agent', { agentId: cmd.agentId });
      return;
    }
    const asked =
      cmd.heartbeatIntervalSeconds > 0 ? cmd.heartbeatIntervalSeconds * 1000 : DEFAULT_HEARTBEAT_INTERVAL_MS;
    const mine = this.#opts.heartbeatIntervalMs;
    const interval = mine !== undefined && mine > 0 ? Math.min(mine, asked) : asked;
    if (mine !== undefined && mine > asked) {
      log('warn', 'heartbeat interval shortened to what the control plane asks', {
        requestedMs: mine,
        usedMs: asked,
      });
    }
    const changed = interval !== this.#heartbeatMs;
    this.#heartbeatMs = interval;
    if (!this.#registered) {
      this.#registered = true;
      this.#clearTimer('register');
      this.#opts.onRegistered();
      log('info', 'registered', { agentId: this.agentId, heartbeatIntervalMs: interval });
      this.#scheduleHeartbeat();
      this.#opts.events.emit('registered', interval);
    } else if (changed) {
      this.#clearTimer('heartbeat');
      this.#scheduleHeartbeat();
    }
  }

  /** The registry marked this agent unreachable: register again (with its tasks) and resend pending updates. */
  #reregister(cmd: AgentCommandOf<'REREGISTER'>): void {
    if (cmd.agentId !== this.agentId || !this.#open) return;
    this.#opts.log('warn', 'asked to register again', { reason: cmd.reason });
    this.#registered = false;
    this.#clearTimer('register');
    this.#clearTimer('heartbeat');
    this.register();
    this.#opts.onReregister();
  }

  #scheduleHeartbeat(): void {
    if (!this.#open) return;
    this.#heartbeatTimer = this.#opts.timers.setTimeout(() => {
      this.#heartbeatTimer = undefined;
      if (!this.#open) return;
      this.#track(
        this.#sendCall({ v: 1, type: 'HEARTBEAT', agentId: this.agentId }, randomUUID()).then(
          () => this.#opts.events.emit('heartbeatSent'),
          (e: unknown) => this.#opts.log('warn', 'HEARTBEAT send failed', { error: errorMessage(e) }),
        ),
      );
      this.#scheduleHeartbeat();
    }, this.#heartbeatMs);
  }

  #clearTimer(which: 'register' | 'heartbeat'): void {
    const t = which === 'register' ? this.#registerTimer : this.#heartbeatTimer;
    if (t !== undefined) this.#opts.timers.clearTimeout(t);
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
    // Calls ready together travel in one SendMessageBatch, each with its own group and
    // deduplication id (see SendBatcher).
    await this.#sender.send({
      body: JSON.stringify(checked.data),
      // A task's updates stay in order in their own group (the registry applies them per task);
      // REGISTER and HEARTBEAT keep the agent's group.
      groupId:
        checked.data.type === 'STATUS_UPDATE'
          ? statusUpdateGroup(this.agentId, checked.data.status.taskId)
          : checked.data.type === 'LATEST_STATE'
            ? statusUpdateGroup(this.agentId, checked.data.taskId)
            : this.agentId,
      dedupId,
    });
  }

  /** Sends a chunk of a task's output, answering READ_LOGS (in the agent's own group). */
  async sendLogs(call: Omit<AgentCallOf<'LOGS'>, 'v' | 'type' | 'agentId'>): Promise<void> {
    await this.#sendCall({ v: 1, type: 'LOGS', agentId: this.agentId, ...call }, randomUUID());
  }

  /**
   * Sends one status update (the status update manager's `send`) with the task's latest state:
   * `latest` when a newer update of the task is queued, else the update's own state.
   */
  async sendStatus(status: TaskStatus, attempt: number, latest?: TaskStatus): Promise<void> {
    const uuid = status.uuid ?? randomUUID();
    const sending = this.#sendCall(
      {
        v: 1,
        type: 'STATUS_UPDATE',
        agentId: this.agentId,
        status,
        latest: latest
          ? latestOf(latest)
          : { state: status.state, source: status.source, timestamp: status.timestamp },
      },
      attempt === 0 ? uuid : `${uuid}-${attempt}`,
    );
    this.#track(sending.catch(() => {}));
    await sending;
    this.#opts.log(
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
    this.#opts.events.emit('statusSent', status, attempt);
  }

  /**
   * Sends a task's latest state on its own (the status update manager's `sendLatest`): the
   * registry records it, the framework hears nothing until the update itself comes.
   */
  async sendLatestState(latest: TaskStatus): Promise<void> {
    const sending = this.#sendCall(
      {
        v: 1,
        type: 'LATEST_STATE',
        agentId: this.agentId,
        frameworkId: latest.frameworkId,
        taskId: latest.taskId,
        latest: latestOf(latest),
      },
      `latest.${latest.uuid ?? randomUUID()}`,
    );
    this.#track(sending.catch(() => {}));
    await sending;
    this.#opts.log('debug', 'latest state sent', { taskId: latest.taskId, state: latest.state });
  }

  #track(p: Promise<unknown>): void {
    this.#sends.add(p);
    void p.finally(() => this.#sends.delete(p));
  }

  // ---- commands ----

  async #onBatch(batch: ReceivedMessage[]): Promise<readonly string[]> {
    const log = this.#opts.log;
    for (const m of batch) {
      const parsed = parseMessage(AgentCommandSchema, m.body, COMMAND_TYPES);
      if (!parsed.ok) {
        log('warn', 'malformed command deleted', {
          code: parsed.code,
          error: parsed.error,
          messageId: m.messageId,
          body: m.body.slice(0, 256),
        });
        this.#opts.events.emit('rejected', parsed.error, m.body);
        continue;
      }
      const cmd = parsed.message as AgentCommand;
      try {
        this.#opts.events.emit('command', cmd);
        this.#handle(cmd);
      } catch (e) {
        // Never retried: handling is local and deterministic, so a redelivery would fail again.
        log('error', `handling ${cmd.type} failed; command deleted`, { error: errorMessage(e) });
      }
    }
    return [];
  }

  #handle(cmd: AgentCommand): void {
    switch (cmd.type) {
      case 'REGISTERED':
        this.#onRegistered(cmd);
        return;
      case 'REREGISTER':
        this.#reregister(cmd);
        return;
      case 'ERROR':
        this.#opts.log('warn', 'control plane reported an error', { code: cmd.code, message: cmd.message });
        if (cmd.code === 'AGENT_GONE') {
          // Marked gone by the registry: it will never take this id again; stop asking.
          this.#opts.log(
            'error',
            'this agent id was marked gone; not registering again (use a new work directory)',
          );
          this.#clearTimer('register');
          this.#clearTimer('heartbeat');
        }
        return;
      default:
        this.#opts.onTaskCommand(cmd);
    }
  }
}

/** What a LATEST_STATE or a STATUS_UPDATE's `latest` carries of a queued update. */
function latestOf(s: TaskStatus): LatestStatus {
  return {
    state: s.state,
    source: s.source,
    timestamp: s.timestamp,
    ...(s.reason !== undefined ? { reason: s.reason } : {}),
    ...(s.message !== undefined ? { message: s.message } : {}),
    ...(s.healthy !== undefined ? { healthy: s.healthy } : {}),
    ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
    ...(s.stdoutTail !== undefined ? { stdoutTail: s.stdoutTail } : {}),
    ...(s.stderrTail !== undefined ? { stderrTail: s.stderrTail } : {}),
  };
}
