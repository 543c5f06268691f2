/**
 * Scheduler calls as the built-in frameworks send them: each checked against the protocol, in
 * the framework's FIFO group (acknowledgements in one per task, as the SDK does), with
 * deduplication ids derived from what caused them, so a redelivered message re-sends the same
 * ids and SQS drops the copies.
 */
import type { Bus, OutboundMessage } from '../ports/bus.ts';
import { PROTOCOL_VERSION } from '../protocol/common.ts';
import { type SchedulerCall, type SchedulerCallInput, SchedulerCallSchema } from '../protocol/scheduler.ts';

/** A call without its protocol version (distributed over the union). */
export type CallInput = SchedulerCallInput extends infer C
  ? C extends unknown
    ? Omit<C, 'v'>
    : never
  : never;

/** Builds, checks and queues calls; `flush` sends them in order. */
export class Calls {
  private readonly out: OutboundMessage[] = [];
  private n = 0;
  constructor(
    private readonly bus: Bus,
    private readonly schedulerCallsQueueUrl: string,
    private readonly frameworkId: string,
    /** Deduplication ids derive from it. */
    private readonly cause: string,
  ) {}

  add(call: CallInput): void {
    const parsed = SchedulerCallSchema.parse({ v: PROTOCOL_VERSION, ...call }) as SchedulerCall;
    const group =
      parsed.type === 'ACKNOWLEDGE' ? `${this.frameworkId}:ack:${parsed.taskId}` : this.frameworkId;
    this.out.push({ body: JSON.stringify(parsed), groupId: group, dedupId: `${this.cause}:${this.n++}` });
  }

  async flush(): Promise<void> {
    if (this.out.length === 0) return;
    await this.bus.send(this.schedulerCallsQueueUrl, this.out.splice(0));
  }
}
