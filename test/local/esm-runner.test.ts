/**
 * The local event-source mapping against the real SQS emulator: Lambda's batch, partial-failure,
 * FIFO and dead-letter semantics. Every test waits on events the handler signals, never on time;
 * failed messages are retried at once (`retryDelaySeconds: 0`) to keep the tests fast.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../lib/definition/tables-queues.ts';
import {
  type EventSource,
  type EventSourceOptions,
  InvalidBatchResponseError,
  startEventSource,
} from '../../lib/local/esm-runner.ts';
import { createTestCluster, type TestCluster } from '../setup/cluster.ts';
import {
  Condition,
  createQueue,
  type Deferred,
  deferred,
  messagesOn,
  receiveOne,
  send,
  type TestQueue,
} from './helpers.ts';

let cluster: TestCluster;
let sqs: SQSClient;
const running: EventSource[] = [];

beforeAll(async () => {
  cluster = await createTestCluster();
  sqs = cluster.sqs;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});
afterAll(() => cluster?.destroy());

type Handler = EventSourceOptions['handler'];

function run(queue: TestQueue, handler: Handler, opts: Partial<EventSourceOptions> = {}): EventSource {
  const source = startEventSource({
    client: sqs,
    queueUrl: queue.url,
    fifo: queue.fifo,
    batchSize: 10,
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    retryDelaySeconds: 0,
    waitTimeSeconds: 2,
    onError: () => {},
    handler,
    ...opts,
  });
  running.push(source);
  return source;
}

const fail = (...records: SQSRecord[]): SQSBatchResponse => ({
  batchItemFailures: records.map((r) => ({ itemIdentifier: r.messageId })),
});

describe('local event-source mapping', () => {
  it('delivers a Lambda SQSEvent and deletes what succeeded', async () => {
    const queue = await createQueue(sqs, cluster.config.prefix, { fifo: false });
    await send(sqs, queue, ['a', 'b', 'c'], undefined, { kind: { DataType: 'String', StringValue: 'test' } });
    const seen: SQSRecord[] = [];
    const contexts: Context[] = [];
    const all = new Condition();
    const source = run(queue, async (event, context) => {
      seen.push(...event.Records);
      contexts.push(context);
      all.check();
    });
    await all.until(() => seen.length >= 3);
    await source.idle();

    expect(seen.map((r) => r.body).sort()).toEqual(['a', 'b', 'c']);
    for (const r of seen) {
      expect(r.eventSource).toBe('aws:sqs');
      expect(r.eventSourceARN).toBe(queue.arn);
      expect(r.awsRegion).toBe(cluster.config.aws.region);
      expect(r.messageId).toMatch(/\S/);
      expect(r.receiptHandle).toMatch(/\S/);
      expect(r.attributes.ApproximateReceiveCount).toBe('1');
      expect(r.attributes.SenderId).toMatch(/\S/);
      expect(Number(r.attributes.SentTimestamp)).toBeGreaterThan(0);
      expect(r.messageAttributes.kind).toMatchObject({ stringValue: 'test', dataType: 'String' });
    }
    const remaining = contexts[0]!.getRemainingTimeInMillis();
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(30_000);
    expect(contexts[0]!.awsRequestId).toMatch(/\S/);
    expect(await messagesOn(sqs, queue.url)).toBe(0);
  });

  it('redelivers the messages reported in batchItemFailures, and only those', async () => {
    const queue = await createQueue(sqs, cluster.config.prefix, { fifo: false });
    await send(sqs, queue, ['m1', 'm2', 'm3', 'm4']);
    const attempts = new Map<string, number>();
    const succeeded = new Set<string>();
    const done = new Condition();
    const source = run(queue, async (event) => {
      const failed: SQSRecord[] = [];
      for (const r of event.Records) {
        const n = (attempts.get(r.body) ?? 0) + 1;
        attempts.set(r.body, n);
        if ((r.body === 'm2' || r.body === 'm4') && n === 1) failed.push(r);
        else succeeded.add(r.body);
      }
      done.check();
      return fail(...failed);
    });
    await done.until(() => succeeded.size === 4);
    await source.idle();
    expect(attempts.get('m2')).toBe(2);
    expect(attempts.get('m4')).toBe(2);
    expect(await messagesOn(sqs, queue.url)).toBe(0);
  });

  it.each([
    ['a thrown error', () => Promise.reject(new Error('boom')), Error],
    [
      'a response naming a message not in the batch',
      async () => ({ batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] }),
      InvalidBatchResponseError,
    ],
  ] as const)('%s fails the whole batch', async (_, firstResponse, errorClass) => {
    const queue = await createQueue(sqs, cluster.config.prefix, { fifo: false });
    await send(sqs, queue, ['x', 'y', 'z']);
    const errors: unknown[] = [];
    let first: string[] | undefined;
    const delivered = new Map<string, number>();
    const succeeded = new Set<string>();
    const done = new Condition();
    const source = run(
      queue,
      async (event) => {
        const bodies = event.Records.map((r) => r.body);
        for (const b of bodies) delivered.set(b, (delivered.get(b) ?? 0) + 1);
        if (!first) {
          first = bodies;
          return firstResponse();
        }
        for (const b of bodies) succeeded.add(b);
        done.check();
        return undefined;
      },
      { onError: (e) => errors.push(e) },
    );
    await done.until(() => succeeded.size === 3);
    await source.idle();
    expect(first!.length).toBeGreaterThan(0);
    for (const b of first!) expect(delivered.get(b)).toBe(2);
    expect(errors[0]).toBeInstanceOf(errorClass);
    expect(await messagesOn(sqs, queue.url)).toBe(0);
  });

  it('FIFO: a later message of a group is not processed before a failed one succeeds', async () => {
    const queue = await createQueue(sqs, cluster.config.prefix, { fifo: true });
    await send(sqs, queue, ['a1', 'a2', 'a3'], 'A');
    await send(sqs, queue, ['b1', 'b2'], 'B');
    const log = new Map<string, string[]>(); // group → processed bodies, with failures marked
    const finished = new Condition();
    let failedOnce = false;
    const source = run(queue, async (event) => {
      // A FIFO-aware handler: after a failure in a group it skips the group's later records
      // without reporting them — the runner must not delete those.
      const stopped = new Set<string>();
      const failed: SQSRecord[] = [];
      for (const r of event.Records) {
        const g = r.attributes.MessageGroupId!;
        if (stopped.has(g)) continue;
        const entries = log.get(g) ?? [];
        log.set(g, entries);
        if (r.body === 'a1' && !failedOnce) {
          failedOnce = true;
          entries.push('a1:failed');
          stopped.add(g);
          failed.push(r);
          continue;
        }
        entries.push(r.body);
      }
      finished.check();
      return fail(...failed);
    });
    await finished.until(() => (log.get('A')?.length ?? 0) >= 4 && (log.get('B')?.length ?? 0) >= 2);
    await source.idle();
    expect(log.get('A')).toEqual(['a1:failed', 'a1', 'a2', 'a3']);
    expect(log.get('B')).toEqual(['b1', 'b2']);
    expect(await messagesOn(sqs, queue.url)).toBe(0);
  });

  it('FIFO: two groups run concurrently, one group never has two batches in flight', async () => {
    const queue = await createQueue(sqs, cluster.config.prefix, { fifo: true });
    const inFlight = new Map<string, number>(); // group → batches in flight
    const overlaps: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const entered = new Map<string, Deferred>();
    const release = deferred();
    const processed = new Set<string>();
    const progress = new Condition();
    for (const b of ['a1', 'a2', 'b1']) entered.set(b, deferred());
    const source = run(
      queue,
      async (event: SQSEvent) => {
        const groups = [...new Set(event.Records.map((r) => r.attributes.MessageGroupId!))];
        for (const g of groups) {
          if ((inFlight.get(g) ?? 0) > 0) overlaps.push(g);
          inFlight.set(g, (inFlight.get(g) ?? 0) + 1);
        }
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        try {
          for (const r of event.Records) entered.get(r.body)?.resolve();
          // a1 holds its batch (and so group A) until the test releases it.
          if (event.Records.some((r) => r.body === 'a1')) await release.promise;
          for (const r of event.Records) processed.add(r.body);
          progress.check();
        } finally {
          concurrent--;
          for (const g of groups) inFlight.set(g, inFlight.get(g)! - 1);
        }
      },
      { concurrency: 2 },
    );
    try {
      await send(sqs, queue, ['a1'], 'A');
      await entered.get('a1')!.promise;
      // While a1 is held: group B goes through on the other poller, a2 must wait for a1.
      await send(sqs, queue, ['a2'], 'A');
      await send(sqs, queue, ['b1'], 'B');
      await entered.get('b1')!.promise;
      await progress.until(() => processed.has('b1'));
      expect(processed.has('a2')).toBe(false);
      expect(maxConcurrent).toBe(2);
    } finally {
      release.resolve();
    }
    await progress.until(() => processed.has('a1') && processed.has('a2'));
    await source.idle();
    expect(overlaps).toEqual([]);
    expect(await messagesOn(sqs, queue.url)).toBe(0);
  });

  it.each([
    ['the queue’s RedrivePolicy', true],
    ['the runner itself (no RedrivePolicy)', false],
  ] as const)(
    'a message that keeps failing ends in the DLQ after maxReceiveCount, via %s',
    async (_, redrive) => {
      const maxReceiveCount = 3;
      const queue = await createQueue(sqs, cluster.config.prefix, { fifo: true, maxReceiveCount, redrive });
      const deliveries: string[] = [];
      const source = run(
        queue,
        async (event) => {
          for (const r of event.Records) deliveries.push(r.attributes.ApproximateReceiveCount);
          throw new Error('always fails');
        },
        { maxReceiveCount, dlqUrl: queue.dlqUrl },
      );
      await send(sqs, queue, ['poison'], 'P');
      const dead = await receiveOne(sqs, queue.dlqUrl);
      await source.idle();
      expect(dead.Body).toBe('poison');
      expect(dead.Attributes?.MessageGroupId).toBe('P');
      expect(deliveries).toEqual(['1', '2', '3']);
      expect(await messagesOn(sqs, queue.url)).toBe(0);
    },
  );

  it('the provisioned queues redrive too (timers: standard queue, its definition’s maxReceiveCount)', async () => {
    const def = QUEUES.timers;
    let deliveries = 0;
    const source = run(
      { url: cluster.config.queues.timers, fifo: def.fifo, arn: '', dlqUrl: cluster.dlqs.timers },
      async () => {
        deliveries++;
        throw new Error('always fails');
      },
      { maxReceiveCount: def.maxReceiveCount, visibilityTimeoutSeconds: def.visibilityTimeoutSeconds },
    );
    await send(sqs, { url: cluster.config.queues.timers, fifo: false }, ['timer']);
    const dead = await receiveOne(sqs, cluster.dlqs.timers);
    await source.idle();
    expect(dead.Body).toBe('timer');
    expect(deliveries).toBe(def.maxReceiveCount);
  });

  it('stop() waits for the batch in flight to settle, then stops polling', async () => {
    const queue = await createQueue(sqs, cluster.config.prefix, { fifo: false });
    const entered = deferred();
    const release = deferred();
    let calls = 0;
    const source = run(queue, async () => {
      calls++;
      entered.resolve();
      await release.promise;
    });
    let stopping: Promise<void> | undefined;
    try {
      await send(sqs, queue, ['held']);
      await entered.promise;
      let stopped = false;
      stopping = source.stop().then(() => {
        stopped = true;
      });
      await Promise.resolve();
      expect(stopped).toBe(false);
    } finally {
      release.resolve();
    }
    await stopping;
    expect(await messagesOn(sqs, queue.url)).toBe(0);
    expect(calls).toBe(1);
  });
});
