/**
 * Lambda entry: the services framework. One function for its event queue and its scheduled tick,
 * so every call it sends comes from one sender (Meso binds a framework id to its sender). The
 * logic lives in lib/frameworks/services.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createServicesHandlers, servicesLambdaDeps } from '../lib/lambda/services.ts';

const handlers = createServicesHandlers(servicesLambdaDeps);

export const handler = async (
  event: SQSEvent | { source?: string },
  context: Context,
): Promise<SQSBatchResponse | undefined> => {
  if ('Records' in event && Array.isArray(event.Records)) return handlers.events(event, context);
  await handlers.tick();
  return undefined;
};
