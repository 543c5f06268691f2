/**
 * The CLI's connection to a built-in framework (lib/frameworks/host/built-in.ts) of the
 * configured cluster: its table, through the framework's own store, and its event queue, for the
 * notice that something changed (the framework does the rest).
 */
import { randomUUID } from 'node:crypto';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient } from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import { tableName } from '../definition/tables-queues.ts';
import type { BuiltInFramework } from '../frameworks/host/built-in.ts';
import type { MetaStore } from '../frameworks/host/framework.ts';

export interface FrameworkConnection<S> {
  readonly store: S;
  /** Tells the framework that what it runs changed (an app, a job). */
  notify(id: string): Promise<void>;
  close(): void;
}

export function openBuiltIn<S extends MetaStore>(
  fw: BuiltInFramework<S>,
  config: ClusterConfig,
): FrameworkConnection<S> {
  const dynamo = createDynamoClient(config.aws);
  const sqs = createSqsClient(config.aws);
  let queueUrl: Promise<string> | undefined;
  return {
    store: fw.openStore(dynamo, tableName(config.prefix, fw.table)),
    async notify(id) {
      queueUrl ??= sqs
        .send(new GetQueueUrlCommand({ QueueName: fw.queueName(config.prefix) }))
        .then((r) => r.QueueUrl ?? '');
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: await queueUrl,
          MessageBody: fw.changedMessage(id),
          MessageGroupId: 'cli',
          MessageDeduplicationId: randomUUID(),
        }),
      );
    },
    close() {
      dynamo.destroy();
      sqs.destroy();
    },
  };
}
