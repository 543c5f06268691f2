/**
 * The API-call counter on an SDK client's middleware stack: one call per command, and the units
 * the launch bench reads (transaction items, SQS batch entries and messages received).
 */
import { describe, expect, it } from 'vitest';
import { apiUnits, type CallTally, countCalls } from '../../../lib/adapters/api-calls.ts';

type Middleware = (
  next: (args: { input: unknown }) => Promise<{ output: unknown }>,
  context: { commandName: string },
) => (args: { input: unknown }) => Promise<{ output: unknown }>;

/** The counter as a client would run it: `commandName` with `input`, answered with `output`. */
function counter(service: string, tally: CallTally) {
  let mw: Middleware | undefined;
  countCalls({ add: ((m: Middleware) => (mw = m)) as never }, service, tally);
  return (commandName: string, input: unknown, output: unknown) =>
    mw!(async () => ({ output }), { commandName })({ input });
}

describe('countCalls', () => {
  it('counts SQS calls once each, and their entries and received messages as units', async () => {
    const tally: CallTally = new Map();
    const call = counter('SQS', tally);
    const unitsOf = (k: string) => apiUnits.get(k) ?? 0;
    const sent = unitsOf('SQS.SendMessageBatch');
    const deleted = unitsOf('SQS.DeleteMessageBatch');
    const received = unitsOf('SQS.ReceiveMessage');
    await call('SendMessageBatchCommand', { Entries: [{}, {}, {}, {}] }, {});
    await call('DeleteMessageBatchCommand', { Entries: [{}, {}] }, {});
    await call('ReceiveMessageCommand', { QueueUrl: 'q' }, { Messages: [{}, {}, {}] });
    await call('ReceiveMessageCommand', { QueueUrl: 'q' }, {}); // an empty long poll
    expect(Object.fromEntries(tally)).toEqual({
      'SQS.SendMessageBatch': 1,
      'SQS.DeleteMessageBatch': 1,
      'SQS.ReceiveMessage': 2,
    });
    expect(unitsOf('SQS.SendMessageBatch') - sent).toBe(4);
    expect(unitsOf('SQS.DeleteMessageBatch') - deleted).toBe(2);
    expect(unitsOf('SQS.ReceiveMessage') - received).toBe(3);
  });

  it('counts a transaction once, and its items as units', async () => {
    const tally: CallTally = new Map();
    const call = counter('DynamoDB', tally);
    const before = new Map(apiUnits);
    await call('TransactWriteItemsCommand', { TransactItems: [{}, {}] }, {});
    expect(tally.get('DynamoDB.TransactWriteItems')).toBe(1);
    expect(
      (apiUnits.get('DynamoDB.TransactWriteItems') ?? 0) - (before.get('DynamoDB.TransactWriteItems') ?? 0),
    ).toBe(2);
  });
});
