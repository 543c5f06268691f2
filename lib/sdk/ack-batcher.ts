/**
 * Acknowledgements gathered into few ACKNOWLEDGE calls. Each call costs a send, and in Meso a
 * receive, a delete and a forward to the agent; one ACKNOWLEDGE can carry up to
 * LIMITS.acknowledgements of them (`acks`), and Meso forwards those to each agent as one message.
 * What is ready within a short window (ACKNOWLEDGE_WINDOW_MS) goes together; one acknowledgement
 * alone goes in the single form, in its task's group, as before.
 */
import { LIMITS } from '../protocol/limits.ts';
import type { AckEntry, CallOf, SchedulerCall } from '../protocol/scheduler.ts';
import type { CallSender } from './call-sender.ts';

interface Pending {
  readonly ack: AckEntry;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class AckBatcher {
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly sender: CallSender,
    private readonly frameworkId: string,
    /** 0: nothing waits; every `add` is sent by the next `flush()`. */
    private readonly windowMs: number,
  ) {}

  /**
   * Queues acknowledgements; the promise settles when the call carrying them was sent (or its
   * send failed). With a window, they leave when it closes or the bound is reached.
   */
  add(acks: readonly CallOf<'ACKNOWLEDGE'>[]): Promise<void> {
    const done = Promise.all(
      acks.flatMap((call) =>
        call.agentId !== undefined && call.taskId !== undefined && call.uuid !== undefined
          ? [
              new Promise<void>((resolve, reject) =>
                this.#pending.push({
                  ack: { agentId: call.agentId!, taskId: call.taskId!, uuid: call.uuid! },
                  resolve,
                  reject,
                }),
              ),
            ]
          : (call.acks ?? []).map(
              (ack) => new Promise<void>((resolve, reject) => this.#pending.push({ ack, resolve, reject })),
            ),
      ),
    ).then(() => undefined);
    if (this.#pending.length >= LIMITS.acknowledgements) void this.flush();
    else if (this.windowMs > 0 && this.#timer === undefined && this.#pending.length > 0) {
      this.#timer = setTimeout(() => void this.flush(), this.windowMs);
    }
    return done;
  }

  /** No window: the caller sends with `flush()` when its batch is complete. */
  get immediate(): boolean {
    return this.windowMs === 0;
  }

  /** Sends everything queued now, in as few calls as the bound allows. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const taken = this.#pending;
    this.#pending = [];
    if (taken.length === 0) return Promise.resolve();
    const chunks: Pending[][] = [];
    for (let i = 0; i < taken.length; i += LIMITS.acknowledgements) {
      chunks.push(taken.slice(i, i + LIMITS.acknowledgements));
    }
    const outgoing = chunks.map((chunk) => this.sender.outgoing(this.#call(chunk.map((p) => p.ack))));
    const sent = this.sender.send(outgoing).then(
      () => {
        for (const p of taken) p.resolve();
      },
      (e: unknown) => {
        for (const p of taken) p.reject(e);
      },
    );
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
    return sent;
  }

  /** Sends what is queued and waits for every send under way. */
  async drain(): Promise<void> {
    await this.flush();
    await Promise.all([...this.#inFlight]);
  }

  #call(acks: readonly AckEntry[]): SchedulerCall {
    const [only] = acks;
    if (acks.length === 1 && only)
      return { v: 1, type: 'ACKNOWLEDGE', frameworkId: this.frameworkId, ...only };
    return { v: 1, type: 'ACKNOWLEDGE', frameworkId: this.frameworkId, acks: [...acks] };
  }
}
