/**
 * The allocation interval (Mesos `--allocation_interval`, default 1 s): every nudge within an
 * interval is served by one cycle per shard, so a framework that declines without a filter
 * (`refuseSeconds: 0`) is offered its leftovers again at most once per interval, instead of
 * every few milliseconds, each time holding them as an outstanding offer that counts in its
 * role's share.
 *
 * How, in the allocator's handler (one batch at a time per shard: each shard is one FIFO message
 * group):
 * - a batch whose nudges were all sent before the last completed cycle of the shard began reading
 *   its records is already served by that cycle: it is dropped, no cycle runs;
 * - otherwise the cycle waits until an interval has passed since the last one began (at once
 *   after an idle interval, so a freed resource is offered promptly), then runs. Nudges that
 *   arrive meanwhile wait in their FIFO group and are then dropped by the first rule.
 *
 * Only a cycle that completed counts: a cycle that failed is retried with its batch, which is
 * not dropped. The state lives in the handler's instance (a Lambda container): a new instance
 * knows no last cycle and runs at once — one extra cycle, never a missed one. `SentTimestamp` is
 * the queue's clock and `now` the function's; nudges within `skewMs` before a cycle began are
 * not taken as served by it, so clocks that differ by less than that cannot drop a nudge the
 * cycle did not see.
 */
export interface PacerOptions {
  /** Milliseconds between the starts of two cycles of a shard; 0 turns pacing off. */
  readonly intervalMs: number;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Allowed clock difference between the queue and the function (default 100 ms). */
  readonly skewMs?: number;
}

export class AllocationPacer {
  private readonly lastStart = new Map<number, number>();
  private readonly skewMs: number;

  constructor(private readonly opts: PacerOptions) {
    this.skewMs = opts.skewMs ?? 100;
  }

  /**
   * Whether a shard's batch needs a cycle (`newestSentAt`: the latest send time in it; `force`:
   * run even if served, e.g. a redelivered batch). When it does, waits out the interval and
   * returns the cycle's start time, to pass to {@link completed} once it succeeded.
   */
  async admit(shard: number, newestSentAt: number, force = false): Promise<number | undefined> {
    let last = this.lastStart.get(shard);
    // A last start ahead of the clock (the clock went back) says nothing about what was served:
    // forgotten, or every nudge until the clock caught up would be taken as served already.
    if (last !== undefined && this.opts.now() < last) {
      this.lastStart.delete(shard);
      last = undefined;
    }
    if (last !== undefined && !force && newestSentAt < last - this.skewMs) return undefined;
    if (last !== undefined && this.opts.intervalMs > 0) {
      const wait = last + this.opts.intervalMs - this.opts.now();
      if (wait > 0) await this.opts.sleep(Math.min(wait, this.opts.intervalMs));
    }
    return this.opts.now();
  }

  /** Records a cycle of `shard` that began at `start` and completed. */
  completed(shard: number, start: number): void {
    const last = this.lastStart.get(shard);
    if (last === undefined || start > last) this.lastStart.set(shard, start);
  }
}
