/**
 * How the SDK puts calls on the `scheduler-calls` FIFO queue: each call gets its FIFO group and
 * a deduplication id, and a failed send is retried with the same ids, so SQS drops a copy that
 * did arrive the first time.
 */
import { randomUUID } from 'node:crypto';
import { acknowledgeGroup, acknowledgementsGroup } from '../protocol/groups.ts';
import type { SchedulerCall } from '../protocol/scheduler.ts';
import { SEND_ATTEMPTS, SEND_RETRY_BASE_MS } from './constants.ts';
import type { SchedulerTransport } from './types.ts';

/** A call ready to be sent; a re-send of the same call keeps its deduplication id. */
export interface OutgoingCall {
  readonly body: string;
  readonly groupId: string;
  readonly dedupId: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class CallSender {
  constructor(
    private readonly transport: SchedulerTransport,
    private readonly callsQueueUrl: string,
    private readonly frameworkId: string,
  ) {}

  /** A call to send, with a fresh deduplication id. */
  outgoing(call: SchedulerCall): OutgoingCall {
    return { body: JSON.stringify(call), groupId: callGroup(this.frameworkId, call), dedupId: randomUUID() };
  }

  /** Sends calls in one batch; a failed send is retried with the same deduplication ids. */
  async send(calls: readonly OutgoingCall[]): Promise<void> {
    let delay = SEND_RETRY_BASE_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transport.send(this.callsQueueUrl, calls);
        return;
      } catch (e) {
        if (attempt >= SEND_ATTEMPTS) throw e;
        await sleep(delay);
        delay *= 2;
      }
    }
  }
}

/**
 * The FIFO group of a call. Calls that change the framework's state share its id as group, so
 * Meso sees them in the order they were sent; an ACKNOWLEDGE changes nothing in Meso (it is
 * forwarded to the agent) and is ordered only with its own task, so it goes in a per-task group
 * and acknowledgements for many tasks are handled in parallel (the framework's own group when
 * that per-task group would pass SQS's length limit: lib/protocol/groups.ts); one carrying several
 * acknowledgements goes in `<frameworkId>:ack`.
 */
export function callGroup(frameworkId: string, call: SchedulerCall): string {
  if (call.type !== 'ACKNOWLEDGE') return frameworkId;
  return call.taskId ? acknowledgeGroup(frameworkId, call.taskId) : acknowledgementsGroup(frameworkId);
}
