/**
 * Counts AWS API calls at the client, by service and operation: every call is billed, so the
 * benchmarks report calls per task. A middleware on each client adds to one shared tally.
 */
import type { MiddlewareStack } from '@smithy/types';

export type CallTally = Map<string, number>;

export const apiCalls: CallTally = new Map();

/**
 * What the calls carried that is billed by the unit, by `<service>.<operation>`: DynamoDB items
 * written in transactions (each billed as two writes), items a Scan read and items a
 * BatchGetItem asked for; and, not billed but what the launch bench's calibration needs to
 * replay a run's calls, the entries of SQS batches sent and deleted and the messages a
 * ReceiveMessage returned.
 */
export const apiUnits: CallTally = new Map();

/** Adds one call of `key` (`<service>.<operation>`) to the tally. */
export function countCall(key: string, tally: CallTally = apiCalls, n = 1): void {
  tally.set(key, (tally.get(key) ?? 0) + n);
}

/** SQS's messages per call into `apiUnits`: batch entries sent or deleted, messages received. */
export function countSqsUnits(key: string, input: unknown, output: unknown): void {
  if (key.endsWith('.ReceiveMessage')) {
    const got = (output as { Messages?: unknown[] } | undefined)?.Messages;
    countCall(key, apiUnits, Array.isArray(got) ? got.length : 0);
    return;
  }
  const entries = (input as { Entries?: unknown[] } | undefined)?.Entries;
  if (Array.isArray(entries)) countCall(key, apiUnits, entries.length);
}

export function countCalls(
  stack: Pick<MiddlewareStack<object, object>, 'add'>,
  service: string,
  tally: CallTally = apiCalls,
): void {
  stack.add(
    (next, context) => async (args) => {
      const key = `${service}.${String(context.commandName ?? 'unknown').replace(/Command$/, '')}`;
      countCall(key, tally);
      const input = args.input as
        | { TransactItems?: unknown[]; RequestItems?: Record<string, { Keys?: unknown[] }> }
        | undefined;
      if (Array.isArray(input?.TransactItems)) countCall(key, apiUnits, input.TransactItems.length);
      // BatchGetItem: the items asked for (each billed as a read).
      if (input?.RequestItems && key.endsWith('.BatchGetItem'))
        for (const t of Object.values(input.RequestItems)) countCall(key, apiUnits, t.Keys?.length ?? 0);
      const result = await next(args);
      const scanned = (result.output as { ScannedCount?: unknown } | undefined)?.ScannedCount;
      if (typeof scanned === 'number') countCall(key, apiUnits, scanned);
      if (service === 'SQS') countSqsUnits(key, args.input, result.output);
      return result;
    },
    { step: 'initialize', name: 'mesoCallCounter' },
  );
}

export function snapshotCalls(tally: CallTally = apiCalls): Record<string, number> {
  return Object.fromEntries([...tally.entries()].sort());
}
