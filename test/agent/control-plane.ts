/**
 * The control plane's side of the agent protocol, played by a test over the real SQS emulator:
 * a receiver that long-polls `agent-calls`, deletes what it receives and keeps every call (with
 * its FIFO group and deduplication ids) for the test to take in arrival order, and a sender of
 * commands (or any body) to an agent's own FIFO queue.
 */
import { randomUUID } from 'node:crypto';
import {
  GetQueueAttributesCommand,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { deleteMessages, type ReceivedMessage, sdkSqs, toReceived } from '../../lib/adapters/sqs.ts';
import { agentGroup } from '../../lib/control/emit.ts';
import type { AgentCall, AgentCallOf, AgentCommand } from '../../lib/protocol/agent.ts';

/** A message the agent sent to `agent-calls`, as received from the emulator. */
export interface CallMessage extends ReceivedMessage {
  readonly dedupId?: string;
  /** The parsed body; undefined if it was not JSON. */
  readonly call?: AgentCall;
}

export interface TakenCall<T extends AgentCall['type']> {
  readonly body: AgentCallOf<T>;
  readonly message: CallMessage;
}

/** How long `take` waits before failing with a description of what it waited for. */
const TAKE_TIMEOUT_MS = 20_000;

export class TestControlPlane {
  /** Every message received from `agent-calls`, in arrival order. */
  readonly history: CallMessage[] = [];
  readonly #taken = new Set<CallMessage>();
  readonly #waiters = new Set<() => void>();
  #stopping = false;
  readonly #loop: Promise<void>;
  #error: unknown;

  constructor(
    readonly sqs: SQSClient,
    readonly callsUrl: string,
  ) {
    this.#loop = this.#poll();
  }

  async #poll(): Promise<void> {
    while (!this.#stopping) {
      try {
        const res = await this.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.callsUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: [
              'SenderId',
              'ApproximateReceiveCount',
              'MessageGroupId',
              'MessageDeduplicationId',
              'SentTimestamp',
            ],
          }),
        );
        const messages = res.Messages ?? [];
        if (messages.length === 0) continue;
        for (const m of messages) {
          let call: AgentCall | undefined;
          try {
            const parsed: unknown = JSON.parse(m.Body ?? '');
            call = typeof parsed === 'object' && parsed !== null ? (parsed as AgentCall) : undefined;
          } catch {
            call = undefined;
          }
          this.history.push({ ...toReceived(m), dedupId: m.Attributes?.MessageDeduplicationId, call });
        }
        this.#wake();
        await deleteMessages(
          sdkSqs(this.sqs),
          this.callsUrl,
          messages.map((m) => m.ReceiptHandle ?? ''),
        );
      } catch (e) {
        this.#error = e;
        this.#wake();
        return;
      }
    }
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Every call agent `agentId` was received sending, in order. */
  callsFrom(agentId: string): CallMessage[] {
    return this.history.filter((m) => m.call?.agentId === agentId);
  }

  /**
   * The first call of `type` from `agentId` matching `match` that no earlier `take` returned,
   * received already or awaited. Calls in one FIFO group arrive in the order they were sent.
   */
  take<T extends AgentCall['type']>(
    agentId: string,
    type: T,
    match: (c: AgentCallOf<T>) => boolean = () => true,
  ): Promise<TakenCall<T>> {
    const find = (): TakenCall<T> | undefined => {
      for (const m of this.history) {
        if (this.#taken.has(m) || m.call?.agentId !== agentId || m.call.type !== type) continue;
        const body = m.call as AgentCallOf<T>;
        if (!match(body)) continue;
        this.#taken.add(m);
        return { body, message: m };
      }
      return undefined;
    };
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.#error !== undefined) {
          done();
          reject(new Error(`receiving from agent-calls failed: ${String(this.#error)}`));
          return;
        }
        const found = find();
        if (!found) return;
        done();
        resolve(found);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no ${type} from agent ${agentId} matching ${match.toString()} within ${TAKE_TIMEOUT_MS} ms`,
          ),
        );
      }, TAKE_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Sends a command to an agent's queue in the group the control plane would use. */
  async command(queueUrl: string, command: AgentCommand): Promise<void> {
    await this.sendRaw(queueUrl, JSON.stringify(command), agentGroup(command));
  }

  /** Sends any body to a FIFO queue, with a fresh deduplication id. */
  async sendRaw(queueUrl: string, body: string, groupId = 'control'): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        MessageGroupId: groupId,
        MessageDeduplicationId: randomUUID(),
      }),
    );
  }

  async queueAttributes(queueUrl: string, names: QueueAttributeName[]): Promise<Record<string, string>> {
    const res = await this.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: names }),
    );
    return res.Attributes ?? {};
  }

  /**
   * Stops receiving once the current long poll (≤ 1 s) ends. Not aborted: the emulator would
   * still hand the next message to the abandoned poll, and an in-flight message blocks its
   * whole FIFO group until its visibility timeout.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
  }
}
