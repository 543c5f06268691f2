/**
 * The jobs framework's handlers, built over injected dependencies (as lib/lambda/services.ts):
 * its event queue feeds `events`, a scheduled rule (a timer locally) calls `tick`.
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import { ENV } from '../definition/env.ts';
import {
  handleJobsMessage,
  JOBS_FRAMEWORK_ID,
  type JobsDeps,
  jobsTick,
} from '../frameworks/jobs/framework.ts';
import { DynamoJobsStore } from '../frameworks/jobs/store.ts';
import { systemClock } from '../ports/clock.ts';
import { loggerPort, required } from './from-env.ts';
import { inOrderBatch } from './in-order.ts';
import type { SqsHandler } from './lambda.ts';

export const JOBS_ENV = { table: 'MESO_JOBS_TABLE', queueUrl: 'MESO_JOBS_QUEUE_URL' } as const;

export interface JobsHandlers {
  readonly events: SqsHandler;
  readonly tick: () => Promise<void>;
}

/** Records one at a time, in order; the first failure fails it and the rest of the batch. */
export function createJobsHandlers(deps: () => JobsDeps): JobsHandlers {
  const events = inOrderBatch('jobs', deps, handleJobsMessage);
  return { events, tick: () => jobsTick(deps()) };
}

export function jobsDepsFromEnv(env: NodeJS.ProcessEnv = process.env): JobsDeps {
  const logger = new Logger({ serviceName: 'meso-jobs' });
  return {
    store: new DynamoJobsStore(createDynamoClient(), required(env, JOBS_ENV.table)),
    bus: new SqsBus(sdkSqs(createSqsClient())),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    log: loggerPort(logger),
    config: {
      frameworkId: JOBS_FRAMEWORK_ID,
      name: 'meso-jobs',
      schedulerCallsQueueUrl: required(env, ENV.queues('schedulerCalls')),
      queueUrl: required(env, JOBS_ENV.queueUrl),
    },
  };
}

let cached: JobsDeps | undefined;
export const jobsLambdaDeps = (): JobsDeps => {
  cached ??= jobsDepsFromEnv();
  return cached;
};
