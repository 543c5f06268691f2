/**
 * Lambda entry: the jobs framework. One function for its event queue and its scheduled tick, so
 * every call it sends comes from one sender. The logic lives in lib/frameworks/jobs.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createJobsHandlers, jobsLambdaDeps } from '../lib/lambda/jobs.ts';

const handlers = createJobsHandlers(jobsLambdaDeps);

export const handler = async (
  event: SQSEvent | { source?: string },
  context: Context,
): Promise<SQSBatchResponse | undefined> => {
  if ('Records' in event && Array.isArray(event.Records)) return handlers.events(event, context);
  await handlers.tick();
  return undefined;
};
