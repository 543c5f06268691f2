/**
 * Sends and deletes that pay for one SQS request per ten messages instead of one each, without
 * waiting when there is nothing to wait for. SQS bills FIFO queues per request, and a
 * SendMessageBatch or DeleteMessageBatch of up to 10 entries is one request.
 *
 * `SendBatcher` takes one message at a time (`send`, which settles when SQS has taken or refused
 * that message). Messages ready in the same turn of the event loop go together; while a batch is
 * in flight, what arrives meanwhile waits for it and goes as the next batch (a full batch of 10
 * goes at once). So an idle sender sends at once and a busy one coalesces.
 *
 * Order and deduplication are those of separate sends: each entry keeps its own MessageGroupId
 * and deduplication id, a batch holds at most one message of each group, and a group's next
 * message waits until its previous one was taken. If that one was refused (a failed entry, or
 * the whole call failed), the group's messages queued behind it are refused too rather than sent
 * ahead of it: the sender resends in order, as after any failed send. A batch refused as a whole
 * for its content or size is split, each entry resent alone, so the refusal lands on the entry
 * that earned it.
 *
 * `DeleteBatcher` does the same for deletes of messages already handled: the first goes at once,
 * the ones handled while it is in flight go together after it.
 */
import { type OutboundMessage, QueueGoneError } from '../ports/bus.ts';
import { type SqsApi, type SqsBatchError, sendEntry } from './sqs-api.ts';

/** SQS's limits on one batch: 10 entries, 256 KiB of message bodies in all. */
export const MAX_BATCH_ENTRIES = 10;
export const MAX_BATCH_BYTES = 256 * 1024;

/** A message SQS refused, named by SQS's error code (`InvalidMessageContents`, …). */
export class SqsEntryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly senderFault?: boolean,
  ) {
    super(message);
    this.name = code;
  }
}

/** A message not sent because an earlier message of its group was refused. */
export class GroupBlockedError extends Error {
  override name = 'GroupBlocked';
}

/** setTimeout/clearTimeout, injectable so tests drive time. */
export interface BatcherTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: BatcherTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * The calls a batcher has in flight, and how many of them still hold back the next partial
 * batch: a call holds until it ends or until it has been in flight `stallMs` (a stalled
 * connection must not hold up what follows).
 */
class InFlight {
  readonly calls = new Set<Promise<void>>();
  /** Calls in flight that have not stalled. */
  holding = 0;

  constructor(
    private readonly timers: BatcherTimers,
    private readonly stallMs: number,
  ) {}

  /**
   * Runs `call` (told whether it still holds), counted in `holding` until it ends or stalls;
   * `onStall` runs if it stalls, `onEnd` when it has ended.
   */
  run(call: (holds: () => boolean) => Promise<void>, onStall: () => void, onEnd: () => void): void {
    this.holding++;
    let holds = true;
    const release = () => {
      if (!holds) return;
      holds = false;
      this.holding--;
    };
    const stall = this.timers.setTimeout(() => {
      release();
      onStall();
    }, this.stallMs);
    const running = call(() => holds).finally(() => {
      this.timers.clearTimeout(stall);
      release();
      this.calls.delete(running);
      onEnd();
    });
    this.calls.add(running);
  }
}

export interface SendBatcherOptions {
  readonly sqs: SqsApi;
  readonly queueUrl: string;
  /** Entries per batch, 1–10. Default 10. */
  readonly maxEntries?: number;
  /** Bytes of message bodies per batch. Default 256 KiB. */
  readonly maxBytes?: number;
  /**
   * A batch in flight longer than this no longer holds back the next partial batch, nor the
   * next message of its groups (a stalled connection must not hold up heartbeats; what it
   * carries may then land after what follows it, as two sends in flight at once may). Default
   * 1000.
   */
  readonly stallMs?: number;
  /** At most this many batches in flight that have not stalled (see `stallMs`). Default 8. */
  readonly maxInFlight?: number;
  /** Default: real timers, unref'd. */
  readonly timers?: BatcherTimers;
  /** Called when a batch is taken (default: setImmediate): what is ready by then goes along. */
  readonly defer?: (fn: () => void) => void;
}

interface Queued {
  readonly message: OutboundMessage;
  readonly group: string;
  readonly bytes: number;
  /** Must go in a batch of its own (its batch was refused as a whole for its content). */
  solo?: boolean;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** Whole-call errors that may be one entry's fault: the batch is split to find out. */
const CONTENT_ERROR =
  /BatchRequestTooLong|MessageTooLong|InvalidMessageContents|InvalidParameterValue|BatchEntryIdsNotDistinct/;
const queueGone = (e: unknown): boolean =>
  /NonExistentQueue|QueueDoesNotExist/.test(`${(e as Error)?.name} ${(e as Error)?.message}`);

export class SendBatcher {
  readonly #opts: SendBatcherOptions;
  readonly #fifo: boolean;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #defer: (fn: () => void) => void;
  #queue: Queued[] = [];
  /** Groups with a message in flight. */
  readonly #busy = new Set<string>();
  readonly #inFlight: InFlight;
  #scheduled = false;

  constructor(opts: SendBatcherOptions) {
    this.#opts = opts;
    this.#fifo = opts.queueUrl.endsWith('.fifo');
    this.#maxEntries = Math.min(MAX_BATCH_ENTRIES, Math.max(1, opts.maxEntries ?? MAX_BATCH_ENTRIES));
    this.#maxBytes = opts.maxBytes ?? MAX_BATCH_BYTES;
    this.#inFlight = new InFlight(opts.timers ?? realTimers, opts.stallMs ?? 1000);
    this.#defer = opts.defer ?? ((fn) => setImmediate(fn));
  }

  /** Messages waiting to be sent (not those in flight). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Sends one message; settles when SQS has taken it (or refused it, or an earlier one of its group). */
  send(message: OutboundMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({
        message,
        group: message.groupId ?? '',
        bytes: Buffer.byteLength(message.body, 'utf8'),
        resolve,
        reject,
      });
      this.#schedule();
    });
  }

  /** Waits until everything queued so far has been sent or refused. */
  async drain(): Promise<void> {
    const { calls } = this.#inFlight;
    while (this.#queue.length > 0 || calls.size > 0) {
      if (calls.size === 0) {
        this.#flush();
        // Nothing could start (it cannot happen with nothing in flight): never spin.
        if (calls.size === 0) return;
      }
      await Promise.allSettled([...calls]);
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#defer(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** Starts every batch the rules allow now. */
  #flush(): void {
    for (;;) {
      if (this.#inFlight.holding >= (this.#opts.maxInFlight ?? 8)) return;
      const batch = this.#take();
      if (!batch) return;
      this.#start(batch);
    }
  }

  /**
   * The next batch to send, taken out of the queue: in queue order, one message per group not
   * in flight, within the entry and byte limits. A partial batch waits while another is in flight.
   */
  #take(): Queued[] | undefined {
    const picked: Queued[] = [];
    const groups = new Set<string>();
    let bytes = 0;
    let full = false;
    for (const q of this.#queue) {
      if (this.#busy.has(q.group) || groups.has(q.group)) {
        // A group's later message never goes ahead of, or along with, an earlier one.
        groups.add(q.group);
        continue;
      }
      groups.add(q.group);
      if (q.solo || (picked.length > 0 && bytes + q.bytes > this.#maxBytes)) {
        if (picked.length === 0) {
          picked.push(q);
        }
        full = true;
        break;
      }
      picked.push(q);
      bytes += q.bytes;
      if (picked.length >= this.#maxEntries || bytes >= this.#maxBytes) {
        full = true;
        break;
      }
    }
    if (picked.length === 0) return undefined;
    if (!full && this.#inFlight.holding > 0) return undefined;
    const taken = new Set(picked);
    this.#queue = this.#queue.filter((q) => !taken.has(q));
    return picked;
  }

  #start(batch: Queued[]): void {
    for (const q of batch) this.#busy.add(q.group);
    this.#inFlight.run(
      (holds) => this.#sendBatch(batch, holds),
      () => {
        // Its groups are free for their next message now (#sendBatch frees them only if it held them).
        for (const q of batch) this.#busy.delete(q.group);
        this.#flush();
      },
      () => this.#flush(),
    );
  }

  /** Sends `batch`; `holding()` says whether it still holds its groups (it has not stalled). */
  async #sendBatch(batch: Queued[], holding: () => boolean): Promise<void> {
    let failed: Map<number, unknown>;
    try {
      const res = await this.#opts.sqs.call('SendMessageBatch', {
        QueueUrl: this.#opts.queueUrl,
        Entries: batch.map((q, i) => sendEntry(q.message, String(i), this.#fifo)),
      });
      failed = new Map((res.Failed ?? []).map((f) => [Number(f.Id), entryError(f)]));
      const ok = new Set((res.Successful ?? []).map((s) => Number(s.Id)));
      batch.forEach((_, i) => {
        if (!ok.has(i) && !failed.has(i)) failed.set(i, new Error('SQS answered nothing for this message'));
      });
    } catch (e) {
      if (batch.length > 1 && CONTENT_ERROR.test(`${(e as Error)?.name} ${(e as Error)?.message}`)) {
        // One entry may have spoilt the batch: each goes again alone, in its old place.
        for (const q of batch) {
          q.solo = true;
          if (holding()) this.#busy.delete(q.group);
        }
        this.#queue = [...batch, ...this.#queue];
        return;
      }
      const err = queueGone(e) ? new QueueGoneError(`queue ${this.#opts.queueUrl} does not exist`) : e;
      failed = new Map(batch.map((_, i) => [i, err]));
    }
    const held = holding();
    batch.forEach((q, i) => {
      if (held) this.#busy.delete(q.group);
      const err = failed.get(i);
      if (err === undefined) {
        q.resolve();
        return;
      }
      q.reject(err);
      // What waits behind a refused message of its group is refused too: it must not overtake it.
      const behind = this.#queue.filter((w) => w.group === q.group);
      if (behind.length === 0) return;
      this.#queue = this.#queue.filter((w) => w.group !== q.group);
      // Its message does not repeat the refusal's: that one's content was refused, not theirs.
      for (const w of behind) {
        w.reject(
          new GroupBlockedError('not sent: an earlier message of its group was refused', { cause: err }),
        );
      }
    });
  }
}

function entryError(f: SqsBatchError): SqsEntryError {
  return new SqsEntryError(f.Code, `${f.Code}: ${f.Message ?? 'refused'}`, f.SenderFault);
}

export interface DeleteBatcherOptions {
  readonly sqs: SqsApi;
  readonly queueUrl: string;
  /** A delete in flight longer than this no longer holds back the next. Default 1000. */
  readonly stallMs?: number;
  /** Default: real timers, unref'd. */
  readonly timers?: BatcherTimers;
  /** A delete failed: the message reappears after its visibility timeout. */
  readonly onError?: (error: unknown) => void;
}

/**
 * Deletes handled messages: at once when no delete is in flight, else together after it (full
 * batches of 10 at once). A failed delete is reported, not retried: the message comes back and
 * is handled again, which a receiver of SQS's at-least-once delivery tolerates anyway.
 */
export class DeleteBatcher {
  readonly #opts: DeleteBatcherOptions;
  #queue: string[] = [];
  readonly #inFlight: InFlight;

  constructor(opts: DeleteBatcherOptions) {
    this.#opts = opts;
    this.#inFlight = new InFlight(opts.timers ?? realTimers, opts.stallMs ?? 1000);
  }

  /** Queues the receipt handles of handled messages for deletion. */
  delete(receiptHandles: readonly string[]): void {
    this.#queue.push(...receiptHandles);
    this.#flush();
  }

  /** Waits until every delete queued so far is done. */
  async drain(): Promise<void> {
    const { calls } = this.#inFlight;
    while (this.#queue.length > 0 || calls.size > 0) {
      this.#flush(true);
      await Promise.allSettled([...calls]);
    }
  }

  #flush(force = false): void {
    while (
      this.#queue.length >= MAX_BATCH_ENTRIES ||
      (this.#queue.length > 0 && (force || this.#inFlight.holding === 0))
    ) {
      const batch = this.#queue.slice(0, MAX_BATCH_ENTRIES);
      this.#queue = this.#queue.slice(MAX_BATCH_ENTRIES);
      const flush = () => this.#flush();
      this.#inFlight.run(() => this.#deleteBatch(batch), flush, flush);
    }
  }

  async #deleteBatch(handles: string[]): Promise<void> {
    try {
      const res = await this.#opts.sqs.call('DeleteMessageBatch', {
        QueueUrl: this.#opts.queueUrl,
        Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })),
      });
      if (res.Failed && res.Failed.length > 0) {
        const f = res.Failed[0]!;
        this.#opts.onError?.(
          new SqsEntryError(f.Code, `${res.Failed.length} delete(s) failed: ${f.Code} ${f.Message ?? ''}`),
        );
      }
    } catch (e) {
      this.#opts.onError?.(e);
    }
  }
}
