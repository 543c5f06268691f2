/**
 * Lambda glue shared by every handler: SQS records become InboundRecords and failures are
 * reported per record (ReportBatchItemFailures).
 *
 * Standard queues go through Powertools' BatchProcessor. FIFO batches are processed by
 * `processFifoBatch` below: message groups run concurrently, records within a group in order,
 * and a group stops at its first failure (that record and the rest of its group are reported
 * failed, so order within the group survives the retry). Powertools' FIFO processor keeps the
 * same rule but runs every group one after the other, which serializes independent frameworks,
 * agents and tasks behind each other.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { BatchingBus } from '../control/batching-bus.ts';
import type { ControlDeps, InboundRecord } from '../control/deps.ts';
import { ReadCache } from '../control/read-cache.ts';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export function toInbound(r: SQSRecord): InboundRecord {
  return {
    messageId: r.messageId,
    body: r.body,
    senderId: r.attributes.SenderId,
    receiveCount: Number(r.attributes.ApproximateReceiveCount ?? '1'),
    source: r.eventSourceARN,
    ...(r.attributes.MessageGroupId !== undefined ? { groupId: r.attributes.MessageGroupId } : {}),
  };
}

const isFifoEvent = (event: SQSEvent) => event.Records[0]?.eventSourceARN?.endsWith('.fifo') ?? false;

/** Processes a FIFO batch: groups concurrently, in order within a group, a group stops at its first failure. */
export async function processFifoBatch(
  records: readonly SQSRecord[],
  handle: (r: SQSRecord) => Promise<void>,
  onError?: (r: SQSRecord, e: unknown) => void,
): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const r of records) {
    const g = r.attributes.MessageGroupId ?? '';
    const list = groups.get(g);
    if (list) list.push(r);
    else groups.set(g, [r]);
  }
  const failed: string[] = [];
  await Promise.all(
    [...groups.values()].map(async (list) => {
      for (let i = 0; i < list.length; i++) {
        try {
          await handle(list[i]!);
        } catch (e) {
          onError?.(list[i]!, e);
          for (const r of list.slice(i)) failed.push(r.messageId);
          return;
        }
      }
    }),
  );
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/**
 * A handler that processes each record on its own and reports the ones that failed. The records'
 * sends travel together at the end of the batch (lib/control/batching-bus.ts), and with
 * `readCache` they read each item once (lib/control/read-cache.ts); if they cannot all
 * be sent, every record is reported failed, to be redelivered and handled again.
 */
export function perRecordHandler(
  deps: () => ControlDeps,
  handle: (deps: ControlDeps, record: InboundRecord) => Promise<void>,
  after?: () => void,
  opts: { readCache?: boolean } = {},
): SqsHandler {
  return async (event, context) => {
    const base = deps();
    const bus = new BatchingBus(base.bus, (queueUrl, count) => {
      base.log.warn('queue is gone; messages dropped', { queueUrl, count });
      base.metrics.count('EventsToGoneQueue', { kind: 'batch' }, count);
    });
    // `readCache`: the batch's records read each item once (lib/control/read-cache.ts).
    const d: ControlDeps = { ...base, bus, ...(opts.readCache ? { store: new ReadCache(base.store) } : {}) };
    const recordHandler = (r: SQSRecord) => handle(d, toInbound(r));
    try {
      const response = isFifoEvent(event)
        ? await processFifoBatch(event.Records, recordHandler, (r, e) =>
            d.log.error('record failed; it will be retried', { messageId: r.messageId, error: String(e) }),
          )
        : await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
            context,
            throwOnFullBatchFailure: false,
          });
      try {
        await bus.finish();
      } catch (e) {
        d.log.error('sends of the batch failed; every record will be retried', { error: String(e) });
        return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
      }
      return response;
    } finally {
      after?.();
    }
  };
}
