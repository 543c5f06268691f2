/**
 * Lambda wiring of a built-in framework (lib/frameworks/host/built-in.ts): its handlers over
 * injected dependencies — its event queue (FIFO) feeds `events`, a scheduled rule (a timer
 * locally) calls `tick` — its dependencies from the environment the CDK stack sets, and the one
 * function entry that takes both its queue's batches and its scheduled tick (one function, so
 * every call it sends comes from one sender: Meso binds a framework id to its sender).
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import { ENV } from '../definition/env.ts';
import { type BuiltInFramework, builtInEnv } from '../frameworks/host/built-in.ts';
import type { FrameworkDeps, MetaStore } from '../frameworks/host/framework.ts';
import { systemClock } from '../ports/clock.ts';
import { loggerPort, required } from './from-env.ts';
import { inOrderBatch } from './in-order.ts';
import type { SqsHandler } from './lambda.ts';

export interface BuiltInHandlers {
  readonly events: SqsHandler;
  readonly tick: () => Promise<void>;
}

/**
 * Records are handled one at a time, in order (the framework's state is read and written per
 * message); the first failure fails it and every later record, so their order survives the retry.
 */
export function builtInHandlers<S extends MetaStore>(
  fw: BuiltInFramework<S>,
  deps: () => FrameworkDeps<S>,
): BuiltInHandlers {
  return { events: inOrderBatch(fw.name, deps, fw.handle), tick: () => fw.tick(deps()) };
}

export function builtInDepsFromEnv<S extends MetaStore>(
  fw: BuiltInFramework<S>,
  env: NodeJS.ProcessEnv = process.env,
): FrameworkDeps<S> {
  const names = builtInEnv(fw.name);
  return {
    store: fw.openStore(createDynamoClient(), required(env, names.table)),
    bus: new SqsBus(sdkSqs(createSqsClient())),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    log: loggerPort(new Logger({ serviceName: fw.frameworkId })),
    config: {
      frameworkId: fw.frameworkId,
      name: fw.frameworkId,
      schedulerCallsQueueUrl: required(env, ENV.queues('schedulerCalls')),
      queueUrl: required(env, names.queueUrl),
    },
  };
}

/** The function's handler: a batch of its queue, or (any other event) its scheduled tick. */
export function builtInLambda<S extends MetaStore>(
  fw: BuiltInFramework<S>,
): (event: SQSEvent | { source?: string }, context: Context) => Promise<SQSBatchResponse | undefined> {
  let cached: FrameworkDeps<S> | undefined;
  const handlers = builtInHandlers(fw, () => {
    cached ??= builtInDepsFromEnv(fw);
    return cached;
  });
  return async (event, context) => {
    if ('Records' in event && Array.isArray(event.Records)) return handlers.events(event, context);
    await handlers.tick();
    return undefined;
  };
}
