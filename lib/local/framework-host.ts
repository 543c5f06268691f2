/**
 * A built-in framework (lib/frameworks/host/built-in.ts) in the local stack: its table and event
 * queue created as the CDK stack creates them, its handler behind a local event-source mapping
 * (one batch at a time, as the deployed function's reserved concurrency of 1), and a timer for
 * its tick instead of the scheduled rule. Used by `meso dev` and the end-to-end tests; tests pass
 * a clock to run it on a test clock.
 */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { clientOptions } from '../adapters/aws-config.ts';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import type { Logger } from '../control/deps.ts';
import { type TableDef, tableName } from '../definition/tables-queues.ts';
import type { BuiltInFramework } from '../frameworks/host/built-in.ts';
import type { FrameworkDeps, MetaStore } from '../frameworks/host/framework.ts';
import { builtInHandlers } from '../lambda/framework-host.ts';
import type { SqsHandler } from '../lambda/lambda.ts';
import { type Clock, systemClock } from '../ports/clock.ts';
import { startEventSource } from './esm-runner.ts';
import { createTableInput } from './provision.ts';

/** The event queue's visibility timeout, and the deployed function's timeout. */
export const FRAMEWORK_VISIBILITY_SECONDS = 60;

export interface LocalFrameworkOptions {
  readonly cluster: ClusterConfig;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Tick period (each framework has its default). 0: only the tick at start. */
  readonly tickIntervalMs?: number;
  /** Seconds before a failed message is retried (default: its visibility timeout). */
  readonly retryDelaySeconds?: number;
  /** Wraps the handler, e.g. to deliver batches twice or fail invocations (tests). */
  readonly wrapHandler?: (h: SqsHandler) => SqsHandler;
}

export interface LocalFramework<S extends MetaStore> {
  readonly queueUrl: string;
  readonly table: string;
  readonly deps: FrameworkDeps<S>;
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/** Creates a built-in framework's table and FIFO event queue if missing (idempotent). */
export async function provisionFramework(
  cluster: ClusterConfig,
  def: TableDef,
  name: string,
): Promise<{ table: string; queueUrl: string }> {
  const dynamo = new DynamoDBClient(clientOptions(cluster.aws, cluster.aws.dynamoEndpoint));
  const sqs = createSqsClient(cluster.aws);
  try {
    const input = createTableInput(cluster.prefix, def);
    try {
      await dynamo.send(new CreateTableCommand(input));
    } catch (e) {
      if ((e as Error).name !== 'ResourceInUseException') throw e;
    }
    await waitUntilTableExists(
      { client: dynamo, maxWaitTime: 120, minDelay: 1, maxDelay: 5 },
      { TableName: input.TableName! },
    );
    let queueUrl: string | undefined;
    try {
      queueUrl = (
        await sqs.send(
          new CreateQueueCommand({
            QueueName: name,
            Attributes: {
              FifoQueue: 'true',
              VisibilityTimeout: String(FRAMEWORK_VISIBILITY_SECONDS),
              MessageRetentionPeriod: String(4 * 86400),
            },
          }),
        )
      ).QueueUrl;
    } catch {
      queueUrl = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    }
    if (!queueUrl) throw new Error(`no URL for queue ${name}`);
    return { table: tableName(cluster.prefix, def), queueUrl };
  } finally {
    dynamo.destroy();
    sqs.destroy();
  }
}

export async function startLocalFramework<S extends MetaStore>(
  fw: BuiltInFramework<S>,
  opts: LocalFrameworkOptions & { readonly defaultTickMs: number },
): Promise<LocalFramework<S>> {
  const { cluster } = opts;
  const { table, queueUrl } = await provisionFramework(cluster, fw.table, fw.queueName(cluster.prefix));
  const sqs = createSqsClient(cluster.aws);
  const deps: FrameworkDeps<S> = {
    store: fw.openStore(createDynamoClient(cluster.aws), table),
    bus: new SqsBus(sdkSqs(sqs)),
    clock: opts.clock ?? systemClock,
    ids: { next: () => randomUUID() },
    log: opts.log,
    config: {
      frameworkId: fw.frameworkId,
      name: fw.frameworkId,
      schedulerCallsQueueUrl: cluster.queues.schedulerCalls,
      queueUrl,
    },
  };
  const handlers = builtInHandlers(fw, () => deps);
  const source = startEventSource({
    client: sqs,
    queueUrl,
    fifo: true,
    batchSize: 10,
    visibilityTimeoutSeconds: FRAMEWORK_VISIBILITY_SECONDS,
    maxReceiveCount: 5,
    concurrency: 1,
    handler: opts.wrapHandler ? opts.wrapHandler(handlers.events) : handlers.events,
    functionName: fw.frameworkId,
    ...(opts.retryDelaySeconds !== undefined ? { retryDelaySeconds: opts.retryDelaySeconds } : {}),
    onError: (e) => opts.log.error(`${fw.name} event source failed`, { error: String(e) }),
  });
  // One tick at a time (as the deployed function's reserved concurrency of 1): a slow one on a
  // loaded machine must not overlap the next.
  let running: Promise<void> | undefined;
  const tick = async () => {
    while (running) await running;
    running = handlers.tick().catch((e) => opts.log.error(`${fw.name} tick failed`, { error: String(e) }));
    await running;
    running = undefined;
  };
  await tick();
  const every = opts.tickIntervalMs ?? opts.defaultTickMs;
  const timer = every > 0 ? setInterval(() => void tick(), every) : undefined;
  return {
    queueUrl,
    table,
    deps,
    tick,
    async stop() {
      if (timer) clearInterval(timer);
      await running;
      await source.stop();
      sqs.destroy();
    },
  };
}
