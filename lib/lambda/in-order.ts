/**
 * An SQS handler for a built-in framework's event queue: records one at a time, in order (the
 * framework's state is read and written per message); the first failure fails it and every later
 * record of the batch, so their order survives the retry.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Logger } from '../control/deps.ts';

export function inOrderBatch<D extends { readonly log: Logger }>(
  name: string,
  deps: () => D,
  handle: (d: D, messageId: string, body: string) => Promise<void>,
): (event: SQSEvent) => Promise<SQSBatchResponse> {
  return async (event) => {
    const d = deps();
    const failed: string[] = [];
    for (const r of event.Records) {
      if (failed.length > 0) {
        failed.push(r.messageId);
        continue;
      }
      try {
        await handle(d, r.messageId, r.body);
      } catch (e) {
        d.log.error(`${name}: message failed; it will be retried`, {
          messageId: r.messageId,
          error: String(e),
        });
        failed.push(r.messageId);
      }
    }
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}
