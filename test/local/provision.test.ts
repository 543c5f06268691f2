import { DescribeTableCommand, DynamoDBClient, type KeySchemaElement } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptions } from '../../lib/adapters/aws-config.ts';
import {
  dlqName,
  QUEUES,
  type QueueDef,
  type QueueName,
  queueName,
  TABLES,
  type TableDef,
  type TableName,
  tableName,
} from '../../lib/definition/tables-queues.ts';
import { DLQ_RETENTION_SECONDS, provision } from '../../lib/local/provision.ts';
import { createTestCluster, type TestCluster } from '../setup/cluster.ts';
import { queueArn } from './helpers.ts';

let cluster: TestCluster;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  cluster = await createTestCluster();
  dynamo = new DynamoDBClient(clientOptions(cluster.config.aws, cluster.config.aws.dynamoEndpoint));
});
afterAll(async () => {
  dynamo?.destroy();
  await cluster?.destroy();
});

const tables = Object.entries(TABLES) as [TableName, TableDef][];
const queues = Object.entries(QUEUES) as [QueueName, QueueDef][];

describe('provision', () => {
  it.each(tables)('creates table %s as defined', async (key, def) => {
    expect(cluster.config.tables[key]).toBe(tableName(cluster.config.prefix, def));
    const { Table: t } = await dynamo.send(
      new DescribeTableCommand({ TableName: cluster.config.tables[key] }),
    );
    expect(t?.TableStatus).toBe('ACTIVE');
    expect(t?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    const keys = (schema: KeySchemaElement[] | undefined) =>
      Object.fromEntries((schema ?? []).map((k) => [k.KeyType, k.AttributeName]));
    expect(keys(t?.KeySchema)).toEqual({
      HASH: def.partitionKey,
      ...(def.sortKey ? { RANGE: def.sortKey } : {}),
    });
    // Keys are strings, but an index's keys are numbers where the definition says so.
    const numeric = new Set(
      (def.indexes ?? []).flatMap((ix) =>
        'numericKeys' in ix && ix.numericKeys ? [ix.partitionKey, ix.sortKey ?? ''] : [],
      ),
    );
    for (const a of t?.AttributeDefinitions ?? [])
      expect(a.AttributeType).toBe(numeric.has(a.AttributeName ?? '') ? 'N' : 'S');
    const indexes = (t?.GlobalSecondaryIndexes ?? []).map((ix) => ({
      name: ix.IndexName,
      keys: keys(ix.KeySchema),
      projection: ix.Projection?.ProjectionType,
      include: ix.Projection?.NonKeyAttributes,
    }));
    expect(indexes).toEqual(
      (def.indexes ?? []).map((ix) => ({
        name: ix.name,
        keys: { HASH: ix.partitionKey, ...(ix.sortKey ? { RANGE: ix.sortKey } : {}) },
        projection: 'include' in ix ? 'INCLUDE' : 'ALL',
        include: 'include' in ix && ix.include ? [...ix.include] : undefined,
      })),
    );
  });

  it.each(queues)('creates queue %s and its dead-letter queue as defined', async (key, def) => {
    const { sqs } = cluster;
    const { prefix } = cluster.config;
    const url = cluster.config.queues[key];
    const dlqUrl = cluster.dlqs[key];
    expect(url.endsWith(`/${queueName(prefix, def)}`)).toBe(true);
    expect(dlqUrl.endsWith(`/${dlqName(prefix, def)}`)).toBe(true);

    const { Attributes: a = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }),
    );
    expect(a.FifoQueue === 'true').toBe(def.fifo);
    expect(Number(a.VisibilityTimeout)).toBe(def.visibilityTimeoutSeconds);
    expect(Number(a.MessageRetentionPeriod)).toBe(def.retentionSeconds);
    const redrive = JSON.parse(a.RedrivePolicy ?? '{}');
    expect(redrive.deadLetterTargetArn).toBe(await queueArn(sqs, dlqUrl));
    expect(Number(redrive.maxReceiveCount)).toBe(def.maxReceiveCount);

    const { Attributes: d = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['All'] }),
    );
    expect(d.FifoQueue === 'true').toBe(def.fifo);
    expect(Number(d.MessageRetentionPeriod)).toBe(DLQ_RETENTION_SECONDS);
    expect(d.RedrivePolicy).toBeUndefined();
  });

  it('is idempotent: provisioning again returns the same names and URLs', async () => {
    const again = await provision({ aws: cluster.config.aws, prefix: cluster.config.prefix });
    expect(again.tables).toEqual(cluster.config.tables);
    expect(again.queues).toEqual(cluster.config.queues);
    expect(again.dlqs).toEqual(cluster.dlqs);
  });

  it('the emulator honours RedrivePolicy: a message moves to the DLQ after maxReceiveCount receives', async () => {
    const { sqs } = cluster;
    const def = QUEUES.schedulerCalls;
    const url = cluster.config.queues.schedulerCalls;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'poison',
        MessageGroupId: 'g',
        MessageDeduplicationId: 'p',
      }),
    );
    const counts: number[] = [];
    for (;;) {
      const res = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const m = res.Messages?.[0];
      if (!m) break;
      counts.push(Number(m.Attributes?.ApproximateReceiveCount));
      expect(counts.length).toBeLessThanOrEqual(def.maxReceiveCount);
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    }
    expect(counts).toEqual(Array.from({ length: def.maxReceiveCount }, (_, i) => i + 1));
    const dead = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: cluster.dlqs.schedulerCalls,
        WaitTimeSeconds: 2,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    expect(dead.Messages?.map((m) => [m.Body, m.Attributes?.MessageGroupId])).toEqual([['poison', 'g']]);
  });
});
