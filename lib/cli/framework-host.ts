/**
 * What the commands of each built-in framework (`meso app`, `meso job`) share: the connection to
 * the framework (lib/frameworks/host/built-in.ts) of the configured cluster — its table, through
 * the framework's own store, and its event queue, for the notice that something changed (the
 * framework does the rest) — how a command runs over it, and the options both take.
 */
import { randomUUID } from 'node:crypto';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient } from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import { tableName } from '../definition/tables-queues.ts';
import type { BuiltInFramework } from '../frameworks/host/built-in.ts';
import type { MetaStore } from '../frameworks/host/framework.ts';
import { type CliIo, UsageError, withConnection } from './io.ts';

export interface FrameworkConnection<S> {
  readonly store: S;
  /** Tells the framework that what it runs changed (an app, a job). */
  notify(id: string): Promise<void>;
  close(): void;
}

export interface FrameworkCliDeps<S> {
  io: CliIo;
  open: () => FrameworkConnection<S>;
  now?: () => number;
}

/**
 * Runs a command's action over a fresh connection (closed after), on the injected clock; the
 * errors `isUsage` accepts are the user's (exit 2 with the message), any other is Meso's.
 */
export function frameworkCommand<S>(
  deps: () => FrameworkCliDeps<S>,
  done: (code: number) => void,
  isUsage: (e: unknown) => e is Error,
) {
  return (action: (c: FrameworkConnection<S>, d: FrameworkCliDeps<S>, now: number) => Promise<number>) =>
    async (): Promise<void> => {
      const d = deps();
      done(await withConnection(d.io, d.open, (c) => action(c, d, (d.now ?? Date.now)()), isUsage));
    };
}

/** A whole-number option (`--instances 3`), or undefined when not given. */
export function wholeNumber(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${what} expects a whole number, got "${v}"`);
  return Number(v);
}

/** `-e NAME=value` options as an environment. */
export function envOptions(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--env expects NAME=value, got "${pair}"`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
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
