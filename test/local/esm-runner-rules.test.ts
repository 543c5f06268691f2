/**
 * The runner's rules on batches the emulator cannot produce: fauxqs hands out at most one message
 * per FIFO group per receive and never redelivers a group that is in flight, while SQS does both
 * (batches of one group; a redelivery when a slow handler outlives the visibility timeout). A
 * scripted client plays SQS here; the SQS-level behaviour is tested against the emulator in
 * esm-runner.test.ts.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import {
  blockGroupsAfterFailure,
  type EventSource,
  type EventSourceOptions,
  failedIds,
  InvalidBatchResponseError,
  startEventSource,
} from '../../lib/local/esm-runner.ts';
import { Condition, deferred } from './helpers.ts';

const QUEUE = 'http://sqs.us-east-1.localhost:1/123456789012/fake.fifo';
const DLQ = 'http://sqs.us-east-1.localhost:1/123456789012/fake-dlq.fifo';

function msg(id: string, group: string, receiveCount = 1): Message {
  return {
    MessageId: id,
    ReceiptHandle: `rh-${id}-${receiveCount}`,
    Body: id,
    MD5OfBody: 'md5',
    Attributes: {
      MessageGroupId: group,
      ApproximateReceiveCount: String(receiveCount),
      SenderId: 'AIDAOTHERSENDER',
      SentTimestamp: '1700000000000',
    },
  };
}

/** Plays SQS: each receive returns the next scripted batch, or waits (long poll) until one is given. */
class ScriptedSqs {
  readonly calls: { command: string; input: Record<string, unknown> }[] = [];
  readonly changed = new Condition();
  private readonly batches: Message[][] = [];
  private waiters: (() => void)[] = [];
  readonly config = { region: async () => 'us-east-1' };

  deliver(...messages: Message[]): void {
    this.batches.push(messages);
    this.waiters.shift()?.();
  }

  inputs(command: string): Record<string, unknown>[] {
    return this.calls.filter((c) => c.command === command).map((c) => c.input);
  }

  async send(command: unknown, opts?: { abortSignal?: AbortSignal }): Promise<unknown> {
    const name = (command as object).constructor.name;
    const input = (command as { input: Record<string, unknown> }).input;
    if (command instanceof ReceiveMessageCommand) {
      for (;;) {
        const next = this.batches.shift();
        if (next) return { Messages: next };
        await new Promise<void>((resolve, reject) => {
          const signal = opts?.abortSignal;
          if (signal?.aborted) return reject(new Error('aborted'));
          this.waiters.push(resolve);
          signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        });
      }
    }
    this.calls.push({ command: name, input });
    this.changed.check();
    if (command instanceof GetQueueAttributesCommand) {
      return { Attributes: { QueueArn: 'arn:aws:sqs:us-east-1:123456789012:fake.fifo' } };
    }
    if (
      command instanceof DeleteMessageBatchCommand ||
      command instanceof ChangeMessageVisibilityBatchCommand ||
      command instanceof SendMessageBatchCommand
    ) {
      return { Successful: [], Failed: [] };
    }
    throw new Error(`unexpected command ${name}`);
  }
}

const running: EventSource[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

function run(
  sqs: ScriptedSqs,
  handler: EventSourceOptions['handler'],
  opts: Partial<EventSourceOptions> = {},
) {
  const source = startEventSource({
    client: sqs as unknown as SQSClient,
    queueUrl: QUEUE,
    fifo: true,
    batchSize: 10,
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    retryDelaySeconds: 0,
    onError: () => {},
    handler,
    ...opts,
  });
  running.push(source);
  return source;
}

const handles = (inputs: Record<string, unknown>[]) =>
  inputs.flatMap((i) => (i.Entries as { ReceiptHandle: string }[]).map((e) => e.ReceiptHandle));

describe('runner rules', () => {
  it('FIFO: a failure keeps that message and the rest of its group; other groups are deleted', async () => {
    const sqs = new ScriptedSqs();
    const source = run(sqs, async (event) => ({
      batchItemFailures: event.Records.filter((r) => r.body === 'a2').map((r) => ({
        itemIdentifier: r.messageId,
      })),
    }));
    sqs.deliver(msg('a1', 'A'), msg('a2', 'A'), msg('b1', 'B'), msg('a3', 'A'), msg('b2', 'B'));
    await sqs.changed.until(() => sqs.inputs('ChangeMessageVisibilityBatchCommand').length > 0);
    await source.idle();
    expect(handles(sqs.inputs('DeleteMessageBatchCommand')).sort()).toEqual([
      'rh-a1-1',
      'rh-b1-1',
      'rh-b2-1',
    ]);
    // Later messages first, so an emulator that re-queues at the group's head keeps the order.
    const retried = sqs.inputs('ChangeMessageVisibilityBatchCommand')[0]!.Entries as {
      ReceiptHandle: string;
      VisibilityTimeout: number;
    }[];
    expect(retried.map((e) => [e.ReceiptHandle, e.VisibilityTimeout])).toEqual([
      ['rh-a3-1', 0],
      ['rh-a2-1', 0],
    ]);
  });

  it('without retryDelaySeconds, failed messages are left to their visibility timeout (as Lambda does)', async () => {
    const sqs = new ScriptedSqs();
    const source = run(
      sqs,
      async (event) => ({ batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] }),
      { retryDelaySeconds: undefined, fifo: false },
    );
    sqs.deliver(msg('x', 'X'), msg('y', 'Y'));
    await sqs.changed.until(() => sqs.inputs('DeleteMessageBatchCommand').length > 0);
    await source.idle();
    expect(handles(sqs.inputs('DeleteMessageBatchCommand'))).toEqual(['rh-y-1']);
    expect(sqs.inputs('ChangeMessageVisibilityBatchCommand')).toEqual([]);
  });

  it('FIFO: a redelivered group waits for its batch in flight; other groups do not', async () => {
    const sqs = new ScriptedSqs();
    const log: string[] = [];
    const inFlight = new Set<string>();
    const overlaps: string[] = [];
    const release = deferred();
    const enteredA = deferred();
    const enteredB = deferred();
    const finished = new Condition();
    const source = run(
      sqs,
      async (event: SQSEvent) => {
        const groups = event.Records.map((r) => r.attributes.MessageGroupId!);
        for (const g of groups) {
          if (inFlight.has(g)) overlaps.push(g);
          inFlight.add(g);
        }
        log.push(event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`).join(','));
        finished.check();
        try {
          if (groups.includes('A') && log.length === 1) {
            enteredA.resolve();
            await release.promise;
          }
          if (groups.includes('B')) enteredB.resolve();
        } finally {
          for (const g of groups) inFlight.delete(g);
        }
      },
      { concurrency: 2 },
    );
    try {
      sqs.deliver(msg('a1', 'A'));
      await enteredA.promise;
      // The visibility of a1 ran out under the slow handler: SQS hands it out again, with b1.
      sqs.deliver(msg('a1', 'A', 2), msg('b1', 'B'));
      await enteredB.promise;
      expect(log).toEqual(['a1#1', 'b1#1']);
    } finally {
      release.resolve();
    }
    await finished.until(() => log.length === 3);
    await source.idle();
    expect(log).toEqual(['a1#1', 'b1#1', 'a1#2']);
    expect(overlaps).toEqual([]);
  });

  it('moves a message received more than maxReceiveCount times to the DLQ itself', async () => {
    const sqs = new ScriptedSqs();
    let calls = 0;
    const source = run(
      sqs,
      async () => {
        calls++;
      },
      { dlqUrl: DLQ, maxReceiveCount: 5 },
    );
    sqs.deliver(msg('p', 'P', 6));
    await sqs.changed.until(() => sqs.inputs('DeleteMessageBatchCommand').length > 0);
    await source.idle();
    expect(calls).toBe(0);
    const sent = sqs.inputs('SendMessageBatchCommand')[0]!;
    expect(sent.QueueUrl).toBe(DLQ);
    expect(sent.Entries).toEqual([
      { Id: '0', MessageBody: 'p', MessageGroupId: 'P', MessageDeduplicationId: 'p' },
    ]);
    expect(handles(sqs.inputs('DeleteMessageBatchCommand'))).toEqual(['rh-p-6']);
  });

  it('hands records the sender id SQS reported', async () => {
    const sqs = new ScriptedSqs();
    const got = deferred<SQSEvent>();
    run(sqs, async (event) => got.resolve(event));
    sqs.deliver(msg('s', 'S'));
    const event = await got.promise;
    expect(event.Records[0]).toMatchObject({
      messageId: 's',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:fake.fifo',
      awsRegion: 'us-east-1',
      attributes: { SenderId: 'AIDAOTHERSENDER', MessageGroupId: 'S', ApproximateReceiveCount: '1' },
    });
  });
});

describe('reading a handler response as Lambda does', () => {
  const batch = [msg('1', 'A'), msg('2', 'A'), msg('3', 'B'), msg('4', 'A')];

  it.each([undefined, null, {}, { batchItemFailures: [] }, { batchItemFailures: null }])(
    '%j is a complete success',
    (response) => {
      expect(failedIds(response, batch)).toEqual(new Set());
    },
  );

  it.each([
    { batchItemFailures: [{ itemIdentifier: '' }] },
    { batchItemFailures: [{ itemIdentifier: null }] },
    { batchItemFailures: [{ id: '1' }] },
    { batchItemFailures: [{ itemIdentifier: 'nope' }] },
    { batchItemFailures: 'oops' },
  ])('%j fails the whole batch', (response) => {
    expect(() => failedIds(response, batch)).toThrow(InvalidBatchResponseError);
  });

  it('FIFO: from the first failure of a group on, the group stops', () => {
    expect([...blockGroupsAfterFailure(batch, new Set(['2']))].sort()).toEqual(['2', '4']);
    expect([...blockGroupsAfterFailure(batch, new Set(['3']))]).toEqual(['3']);
  });
});
