/**
 * Sends of one handler invocation travel together: a registry batch of ten STATUS_UPDATEs from
 * one agent makes ten UPDATEs for one framework queue and ten ACKNOWLEDGEs for one agent queue —
 * two SendMessageBatch calls instead of twenty — and its nudges to the allocator make one.
 *
 * What keeps the guarantees:
 * - Everything goes out before the batch's records are reported done (`finish`, called by the
 *   Lambda glue); if a send fails, every record of the batch is reported failed and redelivered,
 *   and the handlers, which re-derive their messages (with the same deduplication ids) from the
 *   state they find, send them again. This is the rule that already held for a send that failed
 *   mid-handler.
 * - Order: messages leave in the order they were sent. A direct `send` (the outbox, which deletes
 *   its item only once the message is out) first sends what is held; flushes never overlap.
 * - What must happen after a message is really out — the re-read of a task row that catches an
 *   update overtaken by a newer one (lib/control/order.ts) — waits for the flush (`afterFlush`).
 */
import { type Bus, type OutboundMessage, QueueGoneError } from '../ports/bus.ts';

export class BatchingBus implements Bus {
  private held: { queueUrl: string; messages: readonly OutboundMessage[] }[] = [];
  private readonly once = new Set<string>();
  private after: (() => Promise<void>)[] = [];
  private flushing: Promise<void> = Promise.resolve();

  /** `gone`: told about messages dropped because their queue no longer exists. */
  constructor(
    readonly base: Bus,
    private readonly gone: (queueUrl: string, count: number) => void,
  ) {}

  /** Sends at once, after whatever is held. */
  async send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void> {
    await this.flush();
    await this.base.send(queueUrl, messages);
  }

  /** Holds messages until the invocation's end; with `onceKey`, only the first of its kind. */
  defer(queueUrl: string, messages: readonly OutboundMessage[], onceKey?: string): void {
    if (messages.length === 0) return;
    if (onceKey !== undefined) {
      if (this.once.has(onceKey)) return;
      this.once.add(onceKey);
    }
    this.held.push({ queueUrl, messages });
  }

  /** Runs `fn` once everything held so far has been sent. */
  afterFlush(fn: () => Promise<void>): void {
    this.after.push(fn);
  }

  /** Sends what is held, one batch call per queue (and per ten messages). */
  flush(): Promise<void> {
    const held = this.held;
    this.held = [];
    this.once.clear();
    const next = this.flushing.then(() => this.sendHeld(held));
    this.flushing = next.catch(() => {});
    return next;
  }

  /**
   * Sends everything held and runs what waited for it, until nothing is left. The waiting work
   * runs even when a send failed (some messages may have got out): it only re-reads and sends
   * what is current, and a redelivered record may not do it again. The first failure is thrown.
   */
  async finish(): Promise<void> {
    let failure: unknown;
    const attempt = async (f: () => Promise<void>) => {
      try {
        await f();
      } catch (e) {
        failure ??= e;
      }
    };
    await attempt(() => this.flush());
    while (this.after.length > 0) {
      const fns = this.after;
      this.after = [];
      for (const fn of fns) await attempt(fn);
      await attempt(() => this.flush());
    }
    if (failure !== undefined) throw failure;
  }

  private async sendHeld(held: readonly { queueUrl: string; messages: readonly OutboundMessage[] }[]) {
    const byQueue = new Map<string, OutboundMessage[]>();
    for (const h of held) {
      const list = byQueue.get(h.queueUrl);
      if (list) list.push(...h.messages);
      else byQueue.set(h.queueUrl, [...h.messages]);
    }
    await Promise.all(
      [...byQueue].map(async ([queueUrl, messages]) => {
        try {
          // Ten at a time, in order: a FIFO group's messages may span several batch calls.
          for (let i = 0; i < messages.length; i += 10) {
            await this.base.send(queueUrl, messages.slice(i, i + 10));
          }
        } catch (e) {
          if (!(e instanceof QueueGoneError)) throw e;
          this.gone(queueUrl, messages.length);
        }
      }),
    );
  }
}

export const isBatching = (bus: Bus): bus is BatchingBus => bus instanceof BatchingBus;
