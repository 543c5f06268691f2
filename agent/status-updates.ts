/**
 * The status update manager: at-least-once delivery of task status updates, as Mesos's agent does.
 *
 * Every update gets a uuid and is kept until an ACKNOWLEDGE carrying that uuid arrives. Updates
 * form one FIFO stream per task (framework id + task id) and only a stream's head is in flight:
 * a task's next update is sent once the previous one has been acknowledged, so the control plane
 * and the framework see each task's states in order. Every send also carries the task's latest
 * state (the newest update queued for it, Mesos's `latest_state`), and when a task's state changes
 * while an earlier update waits for its acknowledgement, the latest state goes to the registry on
 * its own (`sendLatest`, never forwarded to the framework) if that update is still unacknowledged
 * `latestDelayMs` later: operators and the allocator see a task end without waiting for a slow
 * framework, and a framework that acknowledges promptly costs no extra message. An unacknowledged head is resent after
 * `retryIntervalMs`, then after twice that, and so on up to `maxRetryIntervalMs` (Mesos: 10 s
 * doubling to 10 min). Clock, ids and timers are injected; nothing here sleeps.
 *
 * What a task wrote is not trusted to be sendable: every text an update carries (its message, the
 * output tails) is made safe for SQS first (sendableText). Should a send still be refused for
 * what the update holds (isUnsendable: SQS's InvalidMessageContents, too long, or the agent's own
 * schema check), the update is resent once without its texts, and if even that is refused it is
 * dropped and reported (onDropped): an update is never retried forever for what it contains.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, Ids } from '../lib/ports/clock.ts';
import { systemClock } from '../lib/ports/clock.ts';
import type { TaskStatus } from '../lib/protocol/common.ts';

export const DEFAULT_STATUS_RETRY_INTERVAL_MS = 10_000;
export const DEFAULT_STATUS_MAX_RETRY_INTERVAL_MS = 10 * 60_000;
/** How long a newer state waits behind an unacknowledged update before it is sent on its own. */
export const DEFAULT_LATEST_STATE_DELAY_MS = 1_000;

/** setTimeout/clearTimeout, injectable so tests drive time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers, unref'd: a pending retry alone does not keep the process alive. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const uuidIds: Ids = { next: () => randomUUID() };

/**
 * What SQS refuses in a message (its XML character set): C0 controls but tab, newline and
 * carriage return; U+FFFE and U+FFFF; unpaired surrogates (what a cut through a character or
 * invalid UTF-8 may leave).
 */
const UNSENDABLE = new RegExp(
  [
    '[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]',
    '[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])',
    '(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]',
  ].join('|'),
  'g',
);

/** `text` with every character SQS would refuse replaced by U+FFFD. */
export function sendableText(text: string): string {
  return text.replace(UNSENDABLE, '\uFFFD');
}

/** A status whose texts are all sendable. */
export function sendableStatus<T extends Partial<Pick<TaskStatus, 'message' | 'stdoutTail' | 'stderrTail'>>>(
  status: T,
): T {
  const out = { ...status };
  if (out.message !== undefined) out.message = sendableText(out.message);
  if (out.stdoutTail !== undefined) out.stdoutTail = sendableText(out.stdoutTail);
  if (out.stderrTail !== undefined) out.stderrTail = sendableText(out.stderrTail);
  return out;
}

/** A status without the texts a task wrote (message, output tails). */
function withoutTexts(status: TaskStatus): TaskStatus {
  const { stdoutTail: _o, stderrTail: _e, message: _m, ...rest } = status;
  return rest;
}

/** A send refused for what the message holds: sending it again as it is cannot succeed. */
export function isUnsendableError(e: unknown): boolean {
  const err = e as { name?: unknown; message?: unknown; code?: unknown } | undefined;
  const text = `${String(err?.name ?? '')} ${String(err?.code ?? '')} ${String(err?.message ?? e)}`;
  return /InvalidMessageContents|MessageTooLong|BatchRequestTooLong|InvalidParameterValue|refusing to send an invalid/.test(
    text,
  );
}

/** An update as the agent creates it; the manager stamps `uuid` and (unless given) `timestamp`. */
export type StatusUpdateInput = Omit<TaskStatus, 'uuid' | 'timestamp'> & { timestamp?: number };

export interface StatusUpdateManagerOptions {
  /**
   * Sends one update. `attempt` is 0 for the first send and counts resends, so a FIFO
   * deduplication id can be `uuid` on the first send and `uuid-attempt` afterwards.
   * A rejection is reported to `onError`; the update is retried on the same schedule.
   */
  readonly send: (status: TaskStatus, attempt: number, latest?: TaskStatus) => Promise<void>;
  /**
   * Tells the registry a task's latest state (its newest update queued) while an earlier update of
   * the task still waits for its acknowledgement `latestDelayMs` after the newer one was queued.
   * Best effort: a failure is reported to `onError`; the next send of the head carries it anyway.
   */
  readonly sendLatest?: (latest: TaskStatus) => Promise<void>;
  /** Default 1000. */
  readonly latestDelayMs?: number;
  /** Default: random uuids. */
  readonly ids?: Ids;
  /** Stamps `timestamp`. Default: the system clock. */
  readonly clock?: Clock;
  /** Default: realTimers. */
  readonly timers?: Timers;
  /** First resend after this long. Default 10 000 (Mesos). */
  readonly retryIntervalMs?: number;
  /** Resend intervals double up to this. Default 600 000 (Mesos). */
  readonly maxRetryIntervalMs?: number;
  readonly onError?: (error: unknown, status: TaskStatus) => void;
  /** Whether a send failed for what the update holds. Default isUnsendableError. */
  readonly isUnsendable?: (error: unknown) => boolean;
  /** An update that could not be sent even without its texts was given up. */
  readonly onDropped?: (status: TaskStatus, error: unknown) => void;
  /**
   * Start held: updates are queued but nothing is sent until resume() (the agent holds its
   * updates until the control plane has answered its REGISTER). Default false.
   */
  readonly paused?: boolean;
  /** A task's queue of unacknowledged updates changed (for the agent's checkpoint). */
  readonly onChange?: (frameworkId: string, taskId: string, pending: readonly TaskStatus[]) => void;
}

interface Pending {
  status: TaskStatus;
  /** Resent without its texts after a send was refused for them. */
  stripped?: boolean;
  /** Sends so far minus one: 0 while the first send is the latest. */
  attempt: number;
  timer?: unknown;
}

const streamKey = (frameworkId: string, taskId: string): string => `${frameworkId}\u0000${taskId}`;

/**
 * @example
 * const updates = new StatusUpdateManager({ send: (s, attempt) => sendToAgentCalls(s, attempt) });
 * updates.update({ taskId, frameworkId, agentId, state: 'TASK_RUNNING', source: 'SOURCE_EXECUTOR' });
 * // ...later, on ACKNOWLEDGE { frameworkId, taskId, uuid }:
 * updates.acknowledge(frameworkId, taskId, uuid);
 */
export class StatusUpdateManager {
  readonly #opts: StatusUpdateManagerOptions;
  readonly #ids: Ids;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #streams = new Map<string, Pending[]>();
  /** Per task: the pending `sendLatest` timer, and the uuid of the newest update the registry was sent. */
  readonly #latest = new Map<string, { timer?: unknown; sent?: string }>();
  #stopped = false;
  #paused: boolean;

  constructor(opts: StatusUpdateManagerOptions) {
    this.#opts = opts;
    this.#ids = opts.ids ?? uuidIds;
    this.#clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? realTimers;
    this.#retryMs = opts.retryIntervalMs ?? DEFAULT_STATUS_RETRY_INTERVAL_MS;
    this.#maxRetryMs = Math.max(
      this.#retryMs,
      opts.maxRetryIntervalMs ?? DEFAULT_STATUS_MAX_RETRY_INTERVAL_MS,
    );
    this.#paused = opts.paused ?? false;
  }

  get isPaused(): boolean {
    return this.#paused;
  }

  /** Starts sending (after `paused`): every stream's head goes out now. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const key of this.#streams.keys()) this.#sendHead(key);
  }

  /**
   * Puts back updates checkpointed before an agent restart, stamped as they were (same uuids, so
   * acknowledgements of earlier sends still match), ahead of any newer update of their task.
   */
  restore(statuses: readonly TaskStatus[]): void {
    for (const status of statuses) {
      if (!status.uuid) continue;
      const key = streamKey(status.frameworkId, status.taskId);
      let stream = this.#streams.get(key);
      if (!stream) {
        stream = [];
        this.#streams.set(key, stream);
      }
      if (stream.some((p) => p.status.uuid === status.uuid)) continue;
      // A resend: `attempt` 1 gives it a deduplication id the first send did not use.
      stream.push({ status: sendableStatus(status), attempt: 1 });
      if (stream.length === 1) this.#sendHead(key);
    }
  }

  /** Queues an update on its task's stream (sending it now if the stream was idle); returns it stamped. */
  update(input: StatusUpdateInput): TaskStatus {
    const status: TaskStatus = {
      ...sendableStatus(input),
      uuid: this.#ids.next(),
      timestamp: input.timestamp ?? this.#clock.now(),
    };
    const key = streamKey(status.frameworkId, status.taskId);
    let stream = this.#streams.get(key);
    if (!stream) {
      stream = [];
      this.#streams.set(key, stream);
    }
    stream.push({ status, attempt: 0 });
    this.#changed(stream, status.frameworkId, status.taskId);
    if (stream.length === 1) this.#sendHead(key);
    else this.#scheduleLatest(key);
    return status;
  }

  /**
   * Handles an ACKNOWLEDGE. Only the head of the task's stream can be acknowledged; an ack for
   * an unknown uuid (a duplicate, or one for an update not yet sent) is ignored and returns false.
   */
  acknowledge(frameworkId: string, taskId: string, uuid: string): boolean {
    const key = streamKey(frameworkId, taskId);
    const stream = this.#streams.get(key);
    const head = stream?.[0];
    if (!stream || !head || head.status.uuid !== uuid) return false;
    if (head.timer !== undefined) this.#timers.clearTimeout(head.timer);
    stream.shift();
    this.#changed(stream, frameworkId, taskId);
    if (stream.length === 0) this.#forget(key);
    else this.#sendHead(key);
    return true;
  }

  /** Every update not yet acknowledged, heads first within each task. */
  pending(): TaskStatus[] {
    return [...this.#streams.values()].flatMap((s) => s.map((p) => p.status));
  }

  /** The updates currently in flight (one per task with pending updates). */
  inFlight(): TaskStatus[] {
    return [...this.#streams.values()].flatMap((s) => (s[0] ? [s[0].status] : []));
  }

  /** Resends every in-flight update now (e.g. after re-registering), keeping their backoff. */
  retryNow(): void {
    for (const [key, stream] of this.#streams) {
      const head = stream[0];
      if (!head) continue;
      if (head.timer !== undefined) this.#timers.clearTimeout(head.timer);
      head.attempt++;
      this.#sendHead(key);
    }
  }

  /** Cancels all retries; updates stay queued but nothing more is sent. */
  stop(): void {
    this.#stopped = true;
    for (const stream of this.#streams.values()) {
      const head = stream[0];
      if (head?.timer !== undefined) this.#timers.clearTimeout(head.timer);
      if (head) head.timer = undefined;
    }
    for (const latest of this.#latest.values()) {
      if (latest.timer !== undefined) this.#timers.clearTimeout(latest.timer);
      latest.timer = undefined;
    }
  }

  /** The delay before resend number `attempt + 1`. */
  retryDelayMs(attempt: number): number {
    return Math.min(this.#maxRetryMs, this.#retryMs * 2 ** Math.min(attempt, 40));
  }

  #changed(stream: readonly Pending[], frameworkId: string, taskId: string): void {
    if (!this.#opts.onChange) return;
    try {
      this.#opts.onChange(
        frameworkId,
        taskId,
        stream.map((p) => p.status),
      );
    } catch {
      // A failed checkpoint write must not stop delivery.
    }
  }

  #forget(key: string): void {
    this.#streams.delete(key);
    const latest = this.#latest.get(key);
    if (latest?.timer !== undefined) this.#timers.clearTimeout(latest.timer);
    this.#latest.delete(key);
  }

  /**
   * A newer update waits behind the head: unless the head is acknowledged (and the next send
   * carries the latest state) within `latestDelayMs`, the latest state goes to the registry alone.
   */
  #scheduleLatest(key: string): void {
    if (!this.#opts.sendLatest) return;
    let latest = this.#latest.get(key);
    if (!latest) {
      latest = {};
      this.#latest.set(key, latest);
    }
    if (latest.timer !== undefined) return;
    const entry = latest;
    entry.timer = this.#timers.setTimeout(() => {
      entry.timer = undefined;
      const stream = this.#streams.get(key);
      const tail = stream?.at(-1);
      if (this.#stopped || this.#paused || !stream || stream.length < 2 || !tail) return;
      if (entry.sent === tail.status.uuid) return;
      entry.sent = tail.status.uuid;
      const status = stream[0]!.stripped ? withoutTexts(tail.status) : tail.status;
      let sending: Promise<void>;
      try {
        sending = this.#opts.sendLatest!(status);
      } catch (e) {
        sending = Promise.reject(e);
      }
      sending.catch((e: unknown) => this.#opts.onError?.(e, status));
    }, this.#opts.latestDelayMs ?? DEFAULT_LATEST_STATE_DELAY_MS);
  }

  #sendHead(key: string): void {
    if (this.#stopped || this.#paused) return;
    const stream = this.#streams.get(key);
    const head = stream?.[0];
    if (!stream || !head) return;
    const { status, attempt } = head;
    // The newest update queued is the task's latest state (without its texts if the head's were refused).
    const tail = stream.at(-1)!;
    const latest = tail === head ? undefined : head.stripped ? withoutTexts(tail.status) : tail.status;
    const known = this.#latest.get(key);
    if (known) known.sent = tail.status.uuid;
    head.timer = this.#timers.setTimeout(() => {
      head.timer = undefined;
      if (this.#stopped || this.#streams.get(key)?.[0] !== head) return;
      head.attempt++;
      this.#sendHead(key);
    }, this.retryDelayMs(attempt));
    let sending: Promise<void>;
    try {
      sending = this.#opts.send(status, attempt, latest);
    } catch (e) {
      sending = Promise.reject(e);
    }
    sending.catch((e: unknown) => {
      this.#opts.onError?.(e, status);
      if (this.#streams.get(key)?.[0] !== head || !(this.#opts.isUnsendable ?? isUnsendableError)(e)) return;
      this.#unsendable(key, head, e);
    });
  }

  /** The head was refused for what it holds: once more without its texts, then give it up. */
  #unsendable(key: string, head: Pending, e: unknown): void {
    if (head.timer !== undefined) this.#timers.clearTimeout(head.timer);
    head.timer = undefined;
    const { status } = head;
    if (!head.stripped) {
      const rest = withoutTexts(status);
      const why = sendableText(String((e as Error)?.message ?? e)).slice(0, 300);
      head.status = { ...rest, message: `this update's message and output could not be sent (${why})` };
      head.stripped = true;
      head.attempt++;
      const stream = this.#streams.get(key)!;
      this.#changed(stream, status.frameworkId, status.taskId);
      this.#sendHead(key);
      return;
    }
    const stream = this.#streams.get(key)!;
    stream.shift();
    this.#changed(stream, status.frameworkId, status.taskId);
    if (stream.length === 0) this.#forget(key);
    try {
      this.#opts.onDropped?.(status, e);
    } catch {
      // A throwing callback must not stop delivery of the others.
    }
    if (stream.length > 0) this.#sendHead(key);
  }
}
