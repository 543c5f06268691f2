/**
 * An in-memory transport for the SDK's unit tests: records what is sent, delivers scripted
 * events in order (one batch per poll, as SQS does), and lets a test play the control plane.
 */
import type { OutboundMessage } from '../../lib/ports/bus.ts';
import type { SchedulerCall, SchedulerEvent } from '../../lib/protocol/scheduler.ts';
import type { InboundMessage, SchedulerTransport } from '../../lib/sdk/types.ts';

export interface SentMessage {
  readonly queueUrl: string;
  readonly message: OutboundMessage;
  readonly call: SchedulerCall;
}

export const CALLS_URL = 'https://sqs.fake/000000000000/meso-scheduler-calls.fifo';

export class FakeTransport implements SchedulerTransport {
  readonly sent: SentMessage[] = [];
  readonly created: { name: string; attributes: Record<string, string> }[] = [];
  readonly deletedQueues: string[] = [];
  /** Message ids the SDK deleted (or left, when `onBatch` returned them). */
  readonly consumed: string[] = [];
  /** Sends to fail (thrown before anything is recorded). */
  failSends = 0;
  failedSendAttempts: OutboundMessage[][] = [];
  /** Plays the control plane: called for each call sent. */
  onCall?: (call: SchedulerCall, message: OutboundMessage) => void;
  /** Everything that happened, in order, for ordering assertions. */
  readonly log: string[] = [];

  private inbox: InboundMessage[] = [];
  private wake?: () => void;
  private nextId = 1;
  private busy = false;
  private idleWaiters: (() => void)[] = [];

  calls(): SchedulerCall[] {
    return this.sent.map((s) => s.call);
  }

  callsOf<T extends SchedulerCall['type']>(type: T): Extract<SchedulerCall, { type: T }>[] {
    return this.calls().filter((c): c is Extract<SchedulerCall, { type: T }> => c.type === type);
  }

  /**
   * The acknowledgements sent, in order, whether one per ACKNOWLEDGE or several (`acks`).
   */
  acknowledged(): { agentId: string; taskId: string; uuid: string }[] {
    return this.callsOf('ACKNOWLEDGE').flatMap(
      (c) =>
        c.acks ??
        (c.agentId && c.taskId && c.uuid ? [{ agentId: c.agentId, taskId: c.taskId, uuid: c.uuid }] : []),
    );
  }

  /** Queues an event (or a raw body) for the framework; returns its message id. */
  deliver(event: SchedulerEvent | string, messageId = `m-${this.nextId++}`): string {
    this.inbox.push({ messageId, body: typeof event === 'string' ? event : JSON.stringify(event) });
    this.wake?.();
    return messageId;
  }

  /** Resolves when every queued event has been handled. */
  async drained(): Promise<void> {
    for (;;) {
      if (this.inbox.length === 0 && !this.busy) {
        // Let follow-up sends (acks) scheduled in the same turn finish.
        await new Promise((r) => setImmediate(r));
        if (this.inbox.length === 0 && !this.busy) return;
      }
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  }

  async send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void> {
    if (this.failSends > 0) {
      this.failSends -= 1;
      this.failedSendAttempts.push([...messages]);
      throw new Error('fake send failure');
    }
    for (const message of messages) {
      const call = JSON.parse(message.body) as SchedulerCall;
      this.sent.push({ queueUrl, message, call });
      this.log.push(`send ${call.type}`);
    }
    for (const message of messages) this.onCall?.(JSON.parse(message.body) as SchedulerCall, message);
  }

  async poll(
    _queueUrl: string,
    onBatch: (messages: InboundMessage[]) => Promise<readonly string[]>,
    opts: { signal: AbortSignal; waitSeconds: number; onError: (e: unknown) => void },
  ): Promise<void> {
    const onAbort = () => this.wake?.();
    opts.signal.addEventListener('abort', onAbort);
    try {
      while (!opts.signal.aborted) {
        if (this.inbox.length === 0) {
          this.notifyIdle();
          await new Promise<void>((r) => {
            this.wake = r;
          });
          this.wake = undefined;
          continue;
        }
        const batch = this.inbox.splice(0, 10);
        this.busy = true;
        try {
          const failed = new Set(await onBatch(batch));
          for (const m of batch) {
            if (failed.has(m.messageId)) this.inbox.push(m);
            else this.consumed.push(m.messageId);
          }
        } finally {
          this.busy = false;
        }
      }
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      this.log.push('poll stopped');
      this.notifyIdle();
    }
  }

  async createQueue(name: string, attributes: Record<string, string>): Promise<string> {
    this.created.push({ name, attributes });
    this.log.push(`create ${name}`);
    return `https://sqs.fake/000000000000/${name}`;
  }

  async deleteQueue(queueUrl: string): Promise<void> {
    this.deletedQueues.push(queueUrl);
    this.log.push('delete queue');
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

export function subscribed(frameworkId: string): SchedulerEvent {
  return { v: 1, type: 'SUBSCRIBED', frameworkId, heartbeatIntervalSeconds: 15 };
}
