/**
 * Scheduler calls as the built-in frameworks send them: each checked against the protocol, in
 * the framework's FIFO group (acknowledgements in one per task, as the SDK does), with
 * deduplication ids derived from what caused them and from the call itself, so a redelivered
 * message that decides the same re-sends the same ids and SQS drops the copies — while one that
 * decides differently (the state changed in between) has its new calls sent, not dropped as
 * copies of the calls the first delivery made at the same positions.
 */
import { createHash } from 'node:crypto';
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
    const body = JSON.stringify(parsed);
    const digest = createHash('sha256').update(body).digest('hex').slice(0, 16);
    this.out.push({ body, groupId: group, dedupId: `${this.cause}:${this.n++}:${digest}` });
  }

  async flush(): Promise<void> {
    if (this.out.length === 0) return;
    await this.bus.send(this.schedulerCallsQueueUrl, this.out.splice(0));
  }
}
