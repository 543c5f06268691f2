/**
 * Creates Meso's tables and queues in an emulator (or LocalStack, or an account) from the one
 * definition in `lib/definition/tables-queues.ts` — the same one the CDK constructs read — so local mode
 * and tests run against exactly what `cdk deploy` creates.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DeleteTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  QueueNameExists,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { AwsConfig } from '../adapters/aws-config.ts';
import { clientOptions } from '../adapters/aws-config.ts';
import { createSqsClient } from '../adapters/sqs.ts';
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
} from '../definition/tables-queues.ts';

export interface ProvisionConfig {
  readonly aws: AwsConfig;
  readonly prefix: string;
}

export interface Provisioned {
  /** Queue URLs by logical name. */
  readonly queues: Record<QueueName, string>;
  /** Physical table names by logical name. */
  readonly tables: Record<TableName, string>;
  /** Dead-letter queue URLs, by the logical name of the queue they serve. */
  readonly dlqs: Record<QueueName, string>;
}

/**
 * How long a dead-letter queue keeps messages. The definition has no field for it; 14 days is
 * SQS's maximum, so an operator has the longest time to look at what failed.
 */
export const DLQ_RETENTION_SECONDS = 14 * 86400;

/**
 * Creates every table and queue (with its dead-letter queue) under `prefix`. Idempotent: what
 * exists already is kept (queues get their attributes set to the definition). Resolves when every
 * table is ACTIVE.
 *
 * @example
 * ```ts
 * const emu = await startEmulators();
 * const aws = { region: emu.region, dynamoEndpoint: emu.dynamoEndpoint, sqsEndpoint: emu.sqsEndpoint };
 * const { queues, tables } = await provision({ aws, prefix: 'meso-dev' });
 * ```
 */
export async function provision(config: ProvisionConfig): Promise<Provisioned> {
  const dynamo = new DynamoDBClient(clientOptions(config.aws, config.aws.dynamoEndpoint));
  const sqs = createSqsClient(config.aws);
  try {
    const [tables, queueResults] = await Promise.all([
      Promise.all(
        (Object.entries(TABLES) as [TableName, TableDef][]).map(
          async ([key, def]) => [key, await ensureTable(dynamo, config.prefix, def)] as const,
        ),
      ),
      Promise.all(
        (Object.entries(QUEUES) as [QueueName, QueueDef][]).map(
          async ([key, def]) => [key, await ensureQueue(sqs, config.prefix, def)] as const,
        ),
      ),
    ]);
    return {
      tables: Object.fromEntries(tables) as Record<TableName, string>,
      queues: Object.fromEntries(queueResults.map(([k, q]) => [k, q.url])) as Record<QueueName, string>,
      dlqs: Object.fromEntries(queueResults.map(([k, q]) => [k, q.dlqUrl])) as Record<QueueName, string>,
    };
  } finally {
    dynamo.destroy();
    sqs.destroy();
  }
}

/**
 * Deletes every table and queue (and dead-letter queue) under `prefix`; what is already gone is
 * fine. For tests and for throwing a local stack away; never pointed at a deployed stack by Meso.
 */
export async function deprovision(config: ProvisionConfig): Promise<void> {
  const dynamo = new DynamoDBClient(clientOptions(config.aws, config.aws.dynamoEndpoint));
  const sqs = createSqsClient(config.aws);
  try {
    await Promise.all([
      ...Object.values(TABLES).map(async (def: TableDef) => {
        try {
          await dynamo.send(new DeleteTableCommand({ TableName: tableName(config.prefix, def) }));
        } catch (e) {
          if (!(e instanceof ResourceNotFoundException || (e as Error).name === 'ResourceNotFoundException'))
            throw e;
        }
      }),
      ...Object.values(QUEUES).flatMap((def: QueueDef) =>
        [queueName(config.prefix, def), dlqName(config.prefix, def)].map(async (name) => {
          try {
            const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
            await sqs.send(new DeleteQueueCommand({ QueueUrl }));
          } catch (e) {
            if (!isQueueMissing(e)) throw e;
          }
        }),
      ),
    ]);
  } finally {
    dynamo.destroy();
    sqs.destroy();
  }
}

/** The CreateTable request for a table definition: on-demand, key attributes strings unless an index says numbers. */
export function createTableInput(prefix: string, def: TableDef): CreateTableCommandInput {
  const keyTypes = new Map<string, 'S' | 'N'>([[def.partitionKey, 'S']]);
  if (def.sortKey) keyTypes.set(def.sortKey, 'S');
  for (const ix of def.indexes ?? []) {
    const type = ix.numericKeys ? 'N' : 'S';
    keyTypes.set(ix.partitionKey, type);
    if (ix.sortKey) keyTypes.set(ix.sortKey, type);
  }
  const keySchema = (pk: string, sk?: string) => [
    { AttributeName: pk, KeyType: 'HASH' as const },
    ...(sk ? [{ AttributeName: sk, KeyType: 'RANGE' as const }] : []),
  ];
  return {
    TableName: tableName(prefix, def),
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...keyTypes].map(([name, type]) => ({ AttributeName: name, AttributeType: type })),
    KeySchema: keySchema(def.partitionKey, def.sortKey),
    ...(def.indexes && def.indexes.length > 0
      ? {
          GlobalSecondaryIndexes: def.indexes.map((ix) => ({
            IndexName: ix.name,
            KeySchema: keySchema(ix.partitionKey, ix.sortKey),
            Projection: ix.include
              ? { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: [...ix.include] }
              : { ProjectionType: 'ALL' as const },
          })),
        }
      : {}),
  };
}

/** Attributes of a queue's dead-letter queue. */
export function dlqAttributes(def: QueueDef): Record<string, string> {
  return {
    ...(def.fifo ? { FifoQueue: 'true' } : {}),
    MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS),
  };
}

/** Attributes of a queue, redriving to the dead-letter queue `dlqArn` after `maxReceiveCount`. */
export function queueAttributes(def: QueueDef, dlqArn: string): Record<string, string> {
  return {
    ...(def.fifo ? { FifoQueue: 'true' } : {}),
    VisibilityTimeout: String(def.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(def.retentionSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: def.maxReceiveCount }),
  };
}

async function ensureTable(client: DynamoDBClient, prefix: string, def: TableDef): Promise<string> {
  const input = createTableInput(prefix, def);
  const name = input.TableName!;
  try {
    await client.send(new CreateTableCommand(input));
  } catch (e) {
    // Exists already (or is being created): fine, we wait for ACTIVE below.
    if (!(e instanceof ResourceInUseException || (e as Error).name === 'ResourceInUseException')) throw e;
  }
  await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1, maxDelay: 5 }, { TableName: name });
  if (def.ttlAttribute) {
    try {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true },
        }),
      );
    } catch (e) {
      // "TimeToLive is already enabled" comes back as a ValidationException.
      if (!/already enabled/i.test((e as Error).message)) throw e;
    }
  }
  return name;
}

async function ensureQueue(
  client: SQSClient,
  prefix: string,
  def: QueueDef,
): Promise<{ url: string; dlqUrl: string }> {
  const dlqUrl = await createOrUpdateQueue(client, dlqName(prefix, def), dlqAttributes(def));
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
  );
  const dlqArn = Attributes?.QueueArn;
  if (!dlqArn) throw new Error(`no QueueArn for ${dlqUrl}`);
  const url = await createOrUpdateQueue(client, queueName(prefix, def), queueAttributes(def, dlqArn));
  return { url, dlqUrl };
}

/** CreateQueue; if the queue exists with other attributes, bring them to the definition. */
async function createOrUpdateQueue(
  client: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<string> {
  try {
    const { QueueUrl } = await client.send(
      new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
    );
    if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
    return QueueUrl;
  } catch (e) {
    // Exists with other attributes (SQS and fauxqs both refuse to change them through CreateQueue).
    if (
      !(
        e instanceof QueueNameExists ||
        (e as Error).name === 'QueueNameExists' ||
        (e as Error).name === 'QueueAlreadyExists'
      )
    ) {
      throw e;
    }
  }
  const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name }));
  if (!QueueUrl) throw new Error(`GetQueueUrl ${name} returned no URL`);
  // FifoQueue cannot change after creation (and is implied by the name).
  const { FifoQueue: _fifo, ...settable } = attributes;
  await client.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: settable }));
  return QueueUrl;
}

/** The error names differ between SQS's JSON and query protocols (and emulators). */
function isQueueMissing(e: unknown): boolean {
  const err = e as Error;
  return (
    e instanceof QueueDoesNotExist || /QueueDoesNotExist|NonExistentQueue/.test(`${err.name} ${err.message}`)
  );
}
