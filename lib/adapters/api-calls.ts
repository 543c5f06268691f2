/**
 * Counts AWS API calls at the client, by service and operation: every call is billed, so the
 * benchmarks report calls per task. A middleware on each client adds to one shared tally.
 */
import type { MiddlewareStack } from '@smithy/types';

export type CallTally = Map<string, number>;

export const apiCalls: CallTally = new Map();

/** Adds one call of `key` (`<service>.<operation>`) to the tally. */
export function countCall(key: string, tally: CallTally = apiCalls): void {
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

export function countCalls(
  stack: Pick<MiddlewareStack<object, object>, 'add'>,
  service: string,
  tally: CallTally = apiCalls,
): void {
  stack.add(
    (next, context) => async (args) => {
      countCall(`${service}.${String(context.commandName ?? 'unknown').replace(/Command$/, '')}`, tally);
      return next(args);
    },
    { step: 'initialize', name: 'mesoCallCounter' },
  );
}

export function snapshotCalls(tally: CallTally = apiCalls): Record<string, number> {
  return Object.fromEntries([...tally.entries()].sort());
}
