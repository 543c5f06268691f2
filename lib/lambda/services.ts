/**
 * The services framework's handlers, built over injected dependencies: the framework's event
 * queue (FIFO) feeds `events`, a scheduled rule (a timer locally) calls `tick`. In Lambda the
 * dependencies come from the environment (`servicesDepsFromEnv`); `meso dev` builds its own.
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
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
  const events = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const d = deps();
    const failed: string[] = [];
    for (const r of event.Records) {
      if (failed.length > 0) {
        failed.push(r.messageId);
        continue;
      }
      try {
        await handleServicesMessage(d, r.messageId, r.body);
      } catch (e) {
        d.log.error('services: message failed; it will be retried', {
          messageId: r.messageId,
          error: String(e),
        });
        failed.push(r.messageId);
      }
    }
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  return { events, tick: () => servicesTick(deps()) };
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

export function servicesDepsFromEnv(env: NodeJS.ProcessEnv = process.env): ServicesDeps {
  const logger = new Logger({ serviceName: 'meso-services' });
  return {
    store: new DynamoServicesStore(createDynamoClient(), required(env, SERVICES_ENV.table)),
    bus: new SqsBus(sdkSqs(createSqsClient())),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    log: {
      info: (m, e) => logger.info(m, e ?? {}),
      warn: (m, e) => logger.warn(m, e ?? {}),
      error: (m, e) => logger.error(m, e ?? {}),
    },
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
