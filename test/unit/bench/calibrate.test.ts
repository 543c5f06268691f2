import { describe, expect, it } from 'vitest';
import { addRounds, CALIBRATED, callMix, ceilingOf, drive } from '../../../bench/calibrate.ts';

describe('the launch bench calibration', () => {
  it('counts every caller’s calls when many callers run at once', async () => {
    // Each call resolves on a later turn, so the callers' loops interleave as they do against
    // the emulators; each caller makes exactly 5 calls of 3.
    const calls = await drive(
      32,
      (_, i) => i < 5,
      async () => {
        await new Promise((r) => setImmediate(r));
        return 3;
      },
    );
    expect(calls).toBe(32 * 5 * 3);
  });

  it('replays the run’s operations in its proportions, interleaved, with its batch sizes', () => {
    // 1,000 tasks: 6,000 sends of 2.5 entries, 3,000 receives of 3 messages, 1,000 deletes of
    // 9, 5,000 gets, 4,000 updates, 1,000 two-item transactions; and 20 CreateQueue.
    const mix = callMix(
      {
        'SQS.SendMessageBatch': 6000,
        'SQS.ReceiveMessage': 3000,
        'SQS.DeleteMessageBatch': 1000,
        'DynamoDB.GetItem': 5000,
        'DynamoDB.UpdateItem': 4000,
        'DynamoDB.TransactWriteItems': 1000,
        'SQS.CreateQueue': 20,
      },
      {
        'SQS.SendMessageBatch': 15_000,
        'SQS.ReceiveMessage': 9000,
        'SQS.DeleteMessageBatch': 9000,
        'DynamoDB.TransactWriteItems': 2000,
      },
      1000,
      100,
    );
    const count = (op: string) => mix.sequence.filter((o) => o === op).length;
    expect(mix.sequence).toHaveLength(100);
    expect(count('SQS.SendMessageBatch')).toBe(30);
    expect(count('SQS.ReceiveMessage')).toBe(15);
    expect(count('SQS.DeleteMessageBatch')).toBe(5);
    expect(count('DynamoDB.GetItem')).toBe(25);
    expect(count('DynamoDB.UpdateItem')).toBe(20);
    expect(count('DynamoDB.TransactWriteItems')).toBe(5);
    // Interleaved: no operation runs in a long streak (the 30 % op at most twice in a row).
    let streak = 1;
    for (let i = 1; i < mix.sequence.length; i++) {
      streak = mix.sequence[i] === mix.sequence[i - 1] ? streak + 1 : 1;
      expect(streak).toBeLessThanOrEqual(2);
    }
    expect(mix.size).toEqual({
      'SQS.SendMessageBatch': 3, // 2.5 rounded
      'SQS.ReceiveMessage': 3,
      'SQS.DeleteMessageBatch': 9,
      'DynamoDB.GetItem': 1,
      'DynamoDB.UpdateItem': 1,
      'DynamoDB.TransactWriteItems': 2,
    });
    expect(mix.calibratedPerTask).toBe(20);
    expect(mix.uncalibratedPerTask).toEqual({ 'SQS.CreateQueue': 0.02 });
  });

  it('gives every slot away by largest remainders and keeps sizes within the service’s bounds', () => {
    const mix = callMix(
      { 'DynamoDB.GetItem': 1, 'DynamoDB.Scan': 1, 'SQS.SendMessageBatch': 1 },
      { 'DynamoDB.Scan': 5000, 'SQS.SendMessageBatch': 0.2 },
      1,
      10,
    );
    expect(mix.sequence).toHaveLength(10);
    const counts = ['DynamoDB.GetItem', 'DynamoDB.Scan', 'SQS.SendMessageBatch'].map(
      (op) => mix.sequence.filter((o) => o === op).length,
    );
    expect(counts.sort()).toEqual([3, 3, 4]);
    expect(mix.size['DynamoDB.Scan']).toBe(CALIBRATED['DynamoDB.Scan']);
    expect(mix.size['SQS.SendMessageBatch']).toBe(1);
  });

  it('has nothing to replay when the run made no calibrated calls', () => {
    expect(callMix({ 'SQS.GetQueueUrl': 4 }, {}, 2)).toEqual({
      sequence: [],
      size: {},
      calibratedPerTask: 0,
      uncalibratedPerTask: { 'SQS.GetQueueUrl': 2 },
    });
  });

  it('divides the calibrated calls/s by the run’s calls per task for the ceiling', () => {
    // 25 calls a task at 800 calls/s: 32 tasks/s at most; 24 achieved is 75 %.
    expect(ceilingOf({ tasksPerSecond: 24, callsPerTask: 25 }, 800)).toEqual({
      ceilingTasksPerSecond: 32,
      shareOfCeiling: 0.75,
    });
    expect(ceilingOf({ tasksPerSecond: 24, callsPerTask: 0 }, 800)).toEqual({
      ceilingTasksPerSecond: 0,
      shareOfCeiling: 0,
    });
  });

  it('adds up the rounds that several processes ran at once', () => {
    const a = {
      callsPerSecond: 300,
      byOp: { 'SQS.ReceiveMessage': 100, 'DynamoDB.GetItem': 200 },
      clientCpu: 0.4,
      errors: 1,
    };
    const b = {
      callsPerSecond: 250,
      byOp: { 'SQS.ReceiveMessage': 150, 'DynamoDB.Scan': 100 },
      clientCpu: 0.6,
      errors: 0,
    };
    expect(addRounds([a, b])).toEqual({
      callsPerSecond: 550,
      byOp: { 'SQS.ReceiveMessage': 250, 'DynamoDB.GetItem': 200, 'DynamoDB.Scan': 100 },
      clientCpu: 0.6, // the busiest process
      errors: 1,
    });
  });
});
