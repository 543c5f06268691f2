/**
 * The agent's lean SQS client against the SQS emulator, next to the AWS SDK's client: the same
 * calls give the same results, and the service's errors keep their names.
 */
import { DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqsClient, sdkSqs } from '../../lib/adapters/sqs.ts';
import { deleteMessages, receive, SqsBus } from '../../lib/adapters/sqs-api.ts';
import { createSqsHttpClient, type SqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import { QueueGoneError } from '../../lib/ports/bus.ts';
import { testAwsConfig, uniquePrefix } from '../setup/cluster.ts';

const aws = testAwsConfig();
const sdk = createSqsClient(aws);
let lean: SqsHttpClient;
const prefix = uniquePrefix();
const urls: string[] = [];

beforeAll(() => {
  lean = createSqsHttpClient(aws);
});

afterAll(async () => {
  for (const QueueUrl of urls) await sdk.send(new DeleteQueueCommand({ QueueUrl })).catch(() => {});
  lean.close();
  sdk.destroy();
});

describe('SqsHttpClient on the emulator', () => {
  it('creates a FIFO queue, sends, receives with the attributes Meso reads, and deletes', async () => {
    const name = `${prefix}-agent-lean.fifo`;
    const created = await lean.call('CreateQueue', {
      QueueName: name,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: '30' },
    });
    expect(created.QueueUrl).toMatch(/-agent-lean\.fifo$/);
    const url = created.QueueUrl!;
    urls.push(url);
    expect((await lean.call('GetQueueUrl', { QueueName: name })).QueueUrl).toBe(url);

    await new SqsBus(lean).send(url, [
      { body: '{"n":1}', groupId: 'g' },
      { body: '{"n":2}', groupId: 'g', dedupId: 'two' },
    ]);
    const got: Awaited<ReturnType<typeof receive>> = [];
    for (let i = 0; i < 10 && got.length < 2; i++) {
      const batch = await receive(lean, url, { waitSeconds: 1 });
      got.push(...batch);
      await deleteMessages(
        lean,
        url,
        batch.map((m) => m.receiptHandle),
      );
    }
    expect(got.map((m) => m.body)).toEqual(['{"n":1}', '{"n":2}']);
    expect(got[0]).toMatchObject({ groupId: 'g', receiveCount: 1 });
    expect(got[0]!.senderId).not.toBe('unknown');
    expect(got[0]!.sentAt).toBeGreaterThan(0);
    // Gone: the SDK's client sees an empty queue too.
    expect(await receive(sdkSqs(sdk), url, { waitSeconds: 0, visibilityTimeout: 0 })).toEqual([]);
  });

  it('keeps the service’s error names: QueueNameExists, QueueDoesNotExist', async () => {
    const name = `${prefix}-agent-attrs.fifo`;
    const { QueueUrl } = await lean.call('CreateQueue', {
      QueueName: name,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: '30' },
    });
    urls.push(QueueUrl!);
    const clash = await lean
      .call('CreateQueue', { QueueName: name, Attributes: { FifoQueue: 'true', VisibilityTimeout: '10' } })
      .catch((e: Error) => e);
    expect((clash as Error).name).toBe('QueueNameExists');

    const missing = `${QueueUrl!.slice(0, QueueUrl!.lastIndexOf('/'))}/${prefix}-fw-nobody.fifo`;
    await expect(new SqsBus(lean).send(missing, [{ body: '{}', groupId: 'g' }])).rejects.toBeInstanceOf(
      QueueGoneError,
    );
  });
});
