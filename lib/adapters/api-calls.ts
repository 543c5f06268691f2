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

/**
 * DynamoDB's own account of the capacity the calls consumed, by `read` and `write` (and by
 * `<read|write> <table>`): what AWS
 * bills, by item size (a write unit per KB of the whole item written, a read unit per 4 KB read
 * consistently), where `apiUnits` counts items. Filled only while `MESO_COUNT_CAPACITY=1` (the
 * launch bench sets it), which asks every DynamoDB data call for `ReturnConsumedCapacity`.
 */
export const apiCapacity: CallTally = new Map();

/** The DynamoDB operations that can report consumed capacity, and what they consume. */
const CAPACITY_KIND: Readonly<Record<string, 'read' | 'write'>> = {
  GetItem: 'read',
  BatchGetItem: 'read',
  Query: 'read',
  Scan: 'read',
  TransactGetItems: 'read',
  PutItem: 'write',
  UpdateItem: 'write',
  DeleteItem: 'write',
  BatchWriteItem: 'write',
  TransactWriteItems: 'write',
};

/** Sums a DynamoDB response's `ConsumedCapacity` (one object, or one per table) into `apiCapacity`. */
export function countCapacity(operation: string, output: unknown): void {
  const kind = CAPACITY_KIND[operation];
  const consumed = (output as { ConsumedCapacity?: unknown } | undefined)?.ConsumedCapacity;
  if (!kind || consumed === undefined) return;
  for (const c of Array.isArray(consumed) ? consumed : [consumed]) {
    const { CapacityUnits: units, TableName: table } = (c ?? {}) as {
      CapacityUnits?: unknown;
      TableName?: unknown;
    };
    if (typeof units !== 'number' || !Number.isFinite(units)) continue;
    countCall(kind, apiCapacity, units);
    if (typeof table === 'string') countCall(`${kind} ${table}`, apiCapacity, units);
  }
}

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
      const operation = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      const key = `${service}.${operation}`;
      countCall(key, tally);
      const capacity =
        service === 'DynamoDB' && operation in CAPACITY_KIND && process.env.MESO_COUNT_CAPACITY === '1';
      if (capacity) (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity ??= 'TOTAL';
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
      if (capacity) countCapacity(operation, result.output);
      return result;
    },
    { step: 'initialize', name: 'mesoCallCounter' },
  );
}

export function snapshotCalls(tally: CallTally = apiCalls): Record<string, number> {
  return Object.fromEntries([...tally.entries()].sort());
}
