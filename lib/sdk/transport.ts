/**
 * The SQS transport of the framework SDK: sends through `SqsBus` (batched, FIFO group and
 * deduplication ids), receives with `pollQueue`, and creates / deletes the framework's queue.
 */
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  QueueNameExists,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { pollQueue, type SqsApi, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import type { OutboundMessage } from '../ports/bus.ts';
import type { InboundMessage, SchedulerTransport } from './types.ts';

export class SqsTransport implements SchedulerTransport {
  private readonly api: SqsApi;
  private readonly bus: SqsBus;

  constructor(private readonly sqs: SQSClient) {
    this.api = sdkSqs(sqs);
    this.bus = new SqsBus(this.api);
  }

  send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void> {
    return this.bus.send(queueUrl, messages);
  }

  poll(
    queueUrl: string,
    onBatch: (messages: InboundMessage[]) => Promise<readonly string[]>,
    opts: {
      signal: AbortSignal;
      waitSeconds: number;
      visibilityTimeout?: number;
      onError: (e: unknown) => void;
    },
  ): Promise<void> {
    return pollQueue(this.api, queueUrl, onBatch, opts);
  }

  async createQueue(name: string, attributes: Record<string, string>): Promise<string> {
    try {
      const res = await this.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      if (!res.QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
      return res.QueueUrl;
    } catch (e) {
      // The queue exists with other attributes (made by hand, or by an older SDK): use it.
      if (!(e instanceof QueueNameExists)) throw e;
      const res = await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      if (!res.QueueUrl) throw new Error(`GetQueueUrl ${name} returned no URL`);
      return res.QueueUrl;
    }
  }

  async deleteQueue(queueUrl: string): Promise<void> {
    try {
      await this.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    } catch (e) {
      if (!(e instanceof QueueDoesNotExist)) throw e;
    }
  }
}
