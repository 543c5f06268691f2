/**
 * The services framework's handlers, built over injected dependencies: the framework's event
 * queue (FIFO) feeds `events`, a scheduled rule (a timer locally) calls `tick`. In Lambda the
 * dependencies come from the environment (`servicesDepsFromEnv`); `meso dev` builds its own.
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import { ENV } from '../definition/env.ts';
import {
  handleServicesMessage,
  SERVICES_FRAMEWORK_ID,
  type ServicesDeps,
  servicesTick,
} from '../frameworks/services/framework.ts';
import { DynamoServicesStore } from '../frameworks/services/store.ts';
import { systemClock } from '../ports/clock.ts';
import { loggerPort, required } from './from-env.ts';
import { inOrderBatch } from './in-order.ts';
import type { SqsHandler } from './lambda.ts';

/** Environment of the services functions (besides the scheduler-calls queue, `ENV.queues`). */
export const SERVICES_ENV = {
  table: 'MESO_SERVICES_TABLE',
  queueUrl: 'MESO_SERVICES_QUEUE_URL',
} as const;

export interface ServicesHandlers {
  readonly events: SqsHandler;
  readonly tick: () => Promise<void>;
}

/**
 * Records are handled one at a time, in order (the framework's state is read and written per
 * message); the first failure fails it and every later record, so their order survives the retry.
 */
export function createServicesHandlers(deps: () => ServicesDeps): ServicesHandlers {
  const events = inOrderBatch('services', deps, handleServicesMessage);
  return { events, tick: () => servicesTick(deps()) };
}

export function servicesDepsFromEnv(env: NodeJS.ProcessEnv = process.env): ServicesDeps {
  const logger = new Logger({ serviceName: 'meso-services' });
  return {
    store: new DynamoServicesStore(createDynamoClient(), required(env, SERVICES_ENV.table)),
    bus: new SqsBus(sdkSqs(createSqsClient())),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    log: loggerPort(logger),
    config: {
      frameworkId: SERVICES_FRAMEWORK_ID,
      name: 'meso-services',
      schedulerCallsQueueUrl: required(env, ENV.queues('schedulerCalls')),
      queueUrl: required(env, SERVICES_ENV.queueUrl),
    },
  };
}

let cached: ServicesDeps | undefined;
export const servicesLambdaDeps = (): ServicesDeps => {
  cached ??= servicesDepsFromEnv();
  return cached;
};
