/**
 * The jobs framework's handlers, built over injected dependencies (as lib/lambda/services.ts):
 * its event queue feeds `events`, a scheduled rule (a timer locally) calls `tick`.
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
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
import type { SqsHandler } from './lambda.ts';

export const JOBS_ENV = { table: 'MESO_JOBS_TABLE', queueUrl: 'MESO_JOBS_QUEUE_URL' } as const;

export interface JobsHandlers {
  readonly events: SqsHandler;
  readonly tick: () => Promise<void>;
}

/** Records one at a time, in order; the first failure fails it and the rest of the batch. */
export function createJobsHandlers(deps: () => JobsDeps): JobsHandlers {
  const events = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const d = deps();
    const failed: string[] = [];
    for (const r of event.Records) {
      if (failed.length > 0) {
        failed.push(r.messageId);
        continue;
      }
      try {
        await handleJobsMessage(d, r.messageId, r.body);
      } catch (e) {
        d.log.error('jobs: message failed; it will be retried', { messageId: r.messageId, error: String(e) });
        failed.push(r.messageId);
      }
    }
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  return { events, tick: () => jobsTick(deps()) };
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

export function jobsDepsFromEnv(env: NodeJS.ProcessEnv = process.env): JobsDeps {
  const logger = new Logger({ serviceName: 'meso-jobs' });
  return {
    store: new DynamoJobsStore(createDynamoClient(), required(env, JOBS_ENV.table)),
    bus: new SqsBus(sdkSqs(createSqsClient())),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    log: {
      info: (m, e) => logger.info(m, e ?? {}),
      warn: (m, e) => logger.warn(m, e ?? {}),
      error: (m, e) => logger.error(m, e ?? {}),
    },
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
