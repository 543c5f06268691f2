/**
 * Lambda glue shared by every handler: SQS records become InboundRecords, Powertools reports
 * partial batch failures (for FIFO queues it stops a message group at its first failure, so
 * order within a group survives a retry, and goes on with the other groups).
 */
import {
  BatchProcessor,
  EventType,
  processPartialResponse,
  SqsFifoPartialProcessorAsync,
} from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { ControlDeps, InboundRecord } from './deps.ts';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export function toInbound(r: SQSRecord): InboundRecord {
  return {
    messageId: r.messageId,
    body: r.body,
    senderId: r.attributes.SenderId,
    receiveCount: Number(r.attributes.ApproximateReceiveCount ?? '1'),
    source: r.eventSourceARN,
  };
}

const isFifoEvent = (event: SQSEvent) => event.Records[0]?.eventSourceARN?.endsWith('.fifo') ?? false;

/** A handler that processes each record on its own and reports the ones that failed. */
export function perRecordHandler(
  deps: () => ControlDeps,
  handle: (deps: ControlDeps, record: InboundRecord) => Promise<void>,
  after?: () => void,
): SqsHandler {
  return async (event, context) => {
    const d = deps();
    const recordHandler = (r: SQSRecord) => handle(d, toInbound(r));
    try {
      if (isFifoEvent(event)) {
        return await processPartialResponse(event, recordHandler, new SqsFifoPartialProcessorAsync(), {
          context,
          skipGroupOnError: true,
          throwOnFullBatchFailure: false,
        });
      }
      return await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
        context,
        throwOnFullBatchFailure: false,
      });
    } finally {
      after?.();
    }
  };
}
