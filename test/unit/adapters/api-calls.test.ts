/**
 * The API-call counter on an SDK client's middleware stack: one call per command, and the units
 * the launch bench reads (transaction items, SQS batch entries and messages received).
 */
import { describe, expect, it } from 'vitest';
import { apiCapacity, apiUnits, type CallTally, countCalls } from '../../../lib/adapters/api-calls.ts';

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

describe('countCapacity (MESO_COUNT_CAPACITY=1)', () => {
  it('asks DynamoDB data calls for their consumed capacity and sums it by read and write', async () => {
    const call = counter('DynamoDB', new Map());
    const was = process.env.MESO_COUNT_CAPACITY;
    process.env.MESO_COUNT_CAPACITY = '1';
    try {
      const before = { read: apiCapacity.get('read') ?? 0, write: apiCapacity.get('write') ?? 0 };
      const update: { ReturnConsumedCapacity?: string } = {};
      const byTable = apiCapacity.get('write t') ?? 0;
      await call('UpdateItemCommand', update, { ConsumedCapacity: { TableName: 't', CapacityUnits: 10 } });
      expect((apiCapacity.get('write t') ?? 0) - byTable).toBe(10);
      expect(update.ReturnConsumedCapacity).toBe('TOTAL');
      // A transaction reports one entry per table.
      await call(
        'TransactWriteItemsCommand',
        {},
        { ConsumedCapacity: [{ CapacityUnits: 4 }, { CapacityUnits: 2 }] },
      );
      await call('GetItemCommand', {}, { ConsumedCapacity: { CapacityUnits: 1.5 } });
      // Not a data call: not asked, nothing counted.
      const table: { ReturnConsumedCapacity?: string } = {};
      await call('DescribeTableCommand', table, { ConsumedCapacity: { CapacityUnits: 99 } });
      expect(table.ReturnConsumedCapacity).toBeUndefined();
      expect((apiCapacity.get('write') ?? 0) - before.write).toBe(16);
      expect((apiCapacity.get('read') ?? 0) - before.read).toBe(1.5);
    } finally {
      if (was === undefined) delete process.env.MESO_COUNT_CAPACITY;
      else process.env.MESO_COUNT_CAPACITY = was;
    }
  });

  it('leaves the calls alone when it is not asked for', async () => {
    const call = counter('DynamoDB', new Map());
    const was = process.env.MESO_COUNT_CAPACITY;
    delete process.env.MESO_COUNT_CAPACITY;
    try {
      const before = apiCapacity.get('write') ?? 0;
      const put: { ReturnConsumedCapacity?: string } = {};
      await call('PutItemCommand', put, { ConsumedCapacity: { CapacityUnits: 3 } });
      expect(put.ReturnConsumedCapacity).toBeUndefined();
      expect(apiCapacity.get('write') ?? 0).toBe(before);
    } finally {
      if (was !== undefined) process.env.MESO_COUNT_CAPACITY = was;
    }
  });
});
