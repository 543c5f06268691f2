/**
 * SendBatcher and DeleteBatcher against a scripted SQS: calls ready together share one request,
 * each entry keeps its group and deduplication id, a group's later message never goes ahead of
 * (or along with) an earlier one, a refused entry refuses what waits behind it in its group,
 * size limits split batches, and an idle sender sends at once. Then the agent's status update
 * manager over a SendBatcher whose SQS refuses entries at random: every task's updates still
 * arrive, in order.
 */
import { describe, expect, it } from 'vitest';
import { isUnsendableError, StatusUpdateManager, type Timers } from '../../../agent/status-updates.ts';
import type { SqsApi, SqsOp, SqsOps } from '../../../lib/adapters/sqs-api.ts';
import {
  DeleteBatcher,
  GroupBlockedError,
  MAX_BATCH_BYTES,
  SendBatcher,
  SqsEntryError,
} from '../../../lib/adapters/sqs-batcher.ts';
import { QueueGoneError } from '../../../lib/ports/bus.ts';
import type { TaskStatus } from '../../../lib/protocol/common.ts';

type Entry = SqsOps['SendMessageBatch']['input']['Entries'][number];

interface Call {
  readonly op: SqsOp;
  readonly input: { Entries: { Id: string }[] } & Record<string, unknown>;
  readonly answer: (output: unknown) => void;
  readonly fail: (e: unknown) => void;
}

/** An SQS whose every call waits until the test answers it. */
function scriptedSqs() {
  const calls: Call[] = [];
  let waiter: (() => void) | undefined;
  const sqs: SqsApi = {
    call: (op, input) =>
      new Promise((answer, fail) => {
        calls.push({ op, input: input as Call['input'], answer: answer as (o: unknown) => void, fail });
        waiter?.();
      }) as never,
  };
  /** Waits until `n` calls have been made. */
  const made = async (n: number): Promise<void> => {
    while (calls.length < n) await new Promise<void>((r) => (waiter = r));
  };
  return { sqs, calls, made };
}

const entries = (c: Call | undefined) => (c?.input.Entries ?? []) as Entry[];
/** Answers a send: every entry taken but those with the ids in `failIds`. */
const answerSend = (c: Call, failIds: readonly string[] = [], code = 'InternalError') =>
  c.answer({
    Successful: entries(c)
      .filter((e) => !failIds.includes(e.Id))
      .map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })),
    Failed: failIds.map((Id) => ({ Id, Code: code, Message: 'refused', SenderFault: false })),
  });

/** Manual timers: nothing runs until the test says so. */
function manualTimers() {
  const pending = new Map<number, { fn: () => void; at: number }>();
  let now = 0;
  let next = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = next++;
      pending.set(id, { fn, at: now + ms });
      return id;
    },
    clearTimeout: (h) => void pending.delete(h as number),
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > now || !pending.has(id)) continue;
      pending.delete(id);
      t.fn();
    }
  };
  return {
    timers,
    advance,
    get count() {
      return pending.size;
    },
  };
}

const QUEUE = 'http://sqs.local/000000000000/meso-agent-calls.fifo';
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};
const outcome = (p: Promise<void>) =>
  p.then(
    () => 'sent' as const,
    (e: unknown) => e as Error,
  );

describe('SendBatcher', () => {
  it('sends a lone message at once, with its group and deduplication id', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const sent = outcome(b.send({ body: '{"a":1}', groupId: 'agent-1:task-1', dedupId: 'uuid-1' }));
    await made(1);
    expect(calls[0]!.op).toBe('SendMessageBatch');
    expect(entries(calls[0])).toEqual([
      { Id: '0', MessageBody: '{"a":1}', MessageGroupId: 'agent-1:task-1', MessageDeduplicationId: 'uuid-1' },
    ]);
    answerSend(calls[0]!);
    expect(await sent).toBe('sent');
  });

  it('sends what is ready in the same turn as one request, and what comes while it is in flight as the next', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const first = [1, 2, 3].map((i) =>
      outcome(b.send({ body: `s${i}`, groupId: `g${i}`, dedupId: `d${i}` })),
    );
    await made(1);
    // While that request is out, five more calls are made: they wait for it, then go together.
    const second = [4, 5, 6, 7, 8].map((i) =>
      outcome(b.send({ body: `s${i}`, groupId: `g${i}`, dedupId: `d${i}` })),
    );
    await settle();
    expect(calls).toHaveLength(1);
    expect(entries(calls[0]).map((e) => e.MessageBody)).toEqual(['s1', 's2', 's3']);
    answerSend(calls[0]!);
    await made(2);
    expect(entries(calls[1]).map((e) => [e.MessageBody, e.MessageGroupId, e.MessageDeduplicationId])).toEqual(
      [4, 5, 6, 7, 8].map((i) => [`s${i}`, `g${i}`, `d${i}`]),
    );
    answerSend(calls[1]!);
    expect(await Promise.all([...first, ...second])).toEqual(Array(8).fill('sent'));
    expect(calls).toHaveLength(2);
  });

  it('sends a full batch of 10 at once even while another is in flight', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    void b.send({ body: 'first', groupId: 'g0' });
    await made(1);
    const rest = Array.from({ length: 12 }, (_, i) => b.send({ body: `m${i}`, groupId: `h${i}` }));
    await made(2);
    await settle();
    // Ten went at once; the two left over wait for the requests in flight to come back.
    expect(calls).toHaveLength(2);
    expect(entries(calls[1])).toHaveLength(10);
    answerSend(calls[0]!);
    await settle();
    expect(calls).toHaveLength(2);
    answerSend(calls[1]!);
    await made(3);
    expect(entries(calls[2]).map((e) => e.MessageBody)).toEqual(['m10', 'm11']);
    answerSend(calls[2]!);
    await Promise.all(rest);
  });

  it('never puts two messages of one group in a batch, nor sends a group’s next before its previous is taken', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const sends = ['a1', 'b1', 'a2', 'a3', 'b2'].map((body) => outcome(b.send({ body, groupId: body[0]! })));
    await made(1);
    expect(entries(calls[0]).map((e) => e.MessageBody)).toEqual(['a1', 'b1']);
    answerSend(calls[0]!);
    await made(2);
    expect(entries(calls[1]).map((e) => e.MessageBody)).toEqual(['a2', 'b2']);
    answerSend(calls[1]!);
    await made(3);
    expect(entries(calls[2]).map((e) => e.MessageBody)).toEqual(['a3']);
    answerSend(calls[2]!);
    expect(await Promise.all(sends)).toEqual(Array(5).fill('sent'));
  });

  it('refuses what waits behind a refused message of its group, and sends the other groups', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const a1 = outcome(b.send({ body: 'a1', groupId: 'a' }));
    const b1 = outcome(b.send({ body: 'b1', groupId: 'b' }));
    await made(1);
    const a2 = outcome(b.send({ body: 'a2', groupId: 'a' }));
    const b2 = outcome(b.send({ body: 'b2', groupId: 'b' }));
    answerSend(calls[0]!, ['0'], 'InternalError');
    const refused = await a1;
    expect(refused).toBeInstanceOf(SqsEntryError);
    expect((refused as SqsEntryError).code).toBe('InternalError');
    expect(await b1).toBe('sent');
    expect(await a2).toBeInstanceOf(GroupBlockedError);
    await made(2);
    expect(entries(calls[1]).map((e) => e.MessageBody)).toEqual(['b2']);
    answerSend(calls[1]!);
    expect(await b2).toBe('sent');
    // a2 was never sent ahead of a1.
    expect(calls.flatMap((c) => entries(c).map((e) => e.MessageBody))).not.toContain('a2');
  });

  it('does not make a message refused for its content look unsendable to the ones blocked behind it', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const first = outcome(b.send({ body: 'first', groupId: 'a' }));
    await made(1);
    const behind = outcome(b.send({ body: 'behind', groupId: 'a' }));
    answerSend(calls[0]!, ['0'], 'InvalidMessageContents');
    // The status update manager strips the texts of an update refused as unsendable: only the guilty one.
    expect(isUnsendableError(await first)).toBe(true);
    const blocked = await behind;
    expect(blocked).toBeInstanceOf(GroupBlockedError);
    expect(isUnsendableError(blocked)).toBe(false);
  });

  it('refuses the whole batch when the request fails, naming a queue that is gone', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const sends = ['x', 'y'].map((body) => outcome(b.send({ body, groupId: body })));
    await made(1);
    calls[0]!.fail(
      Object.assign(new Error('The specified queue does not exist.'), { name: 'QueueDoesNotExist' }),
    );
    const [x, y] = await Promise.all(sends);
    expect(x).toBeInstanceOf(QueueGoneError);
    expect(y).toBeInstanceOf(QueueGoneError);
  });

  it('keeps a batch within 256 KiB of bodies, and sends a larger message alone', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const big = 'x'.repeat(100 * 1024);
    const huge = 'y'.repeat(MAX_BATCH_BYTES + 1);
    // Multi-byte characters count as bytes, not as characters.
    const wide = 'é'.repeat(60 * 1024);
    const sends = [big, big, big, huge, wide, 's'].map((body, i) => b.send({ body, groupId: `g${i}` }));
    const sizes: number[][] = [];
    for (let n = 1; sizes.flat().length < 6; n++) {
      await made(n);
      const c = calls[n - 1]!;
      const bytes = entries(c).map((e) => Buffer.byteLength(e.MessageBody));
      sizes.push(bytes);
      answerSend(c);
    }
    await Promise.all(sends);
    for (const batch of sizes) {
      if (batch.length > 1) expect(batch.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    }
    expect(sizes.find((s) => s.includes(MAX_BATCH_BYTES + 1))).toEqual([MAX_BATCH_BYTES + 1]);
    expect(sizes[0]).toEqual([100 * 1024, 100 * 1024]);
  });

  it('splits a batch refused as a whole for its content, so only the guilty message is refused', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const good = outcome(b.send({ body: 'good', groupId: 'g' }));
    const bad = outcome(b.send({ body: 'bad\u0000', groupId: 'h' }));
    await made(1);
    const invalid = Object.assign(new Error('Invalid characters found'), { name: 'InvalidMessageContents' });
    calls[0]!.fail(invalid);
    await made(3);
    expect(calls.slice(1).map((c) => entries(c).map((e) => e.MessageBody))).toEqual([
      ['good'],
      ['bad\u0000'],
    ]);
    answerSend(calls[1]!);
    calls[2]!.fail(invalid);
    expect(await good).toBe('sent');
    expect(((await bad) as Error).name).toBe('InvalidMessageContents');
  });

  it('lets the next partial batch, and the next message of its group, go when the one in flight has stalled', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const t = manualTimers();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: t.timers, stallMs: 1000 });
    void b.send({ body: 'stuck', groupId: 'agent' });
    await made(1);
    const next = outcome(b.send({ body: 'update', groupId: 'task' }));
    const heartbeat = outcome(b.send({ body: 'heartbeat', groupId: 'agent' }));
    await settle();
    expect(calls).toHaveLength(1);
    t.advance(999);
    await settle();
    expect(calls).toHaveLength(1);
    t.advance(1);
    await made(2);
    expect(entries(calls[1]).map((e) => e.MessageBody)).toEqual(['update', 'heartbeat']);
    answerSend(calls[1]!);
    expect(await next).toBe('sent');
    expect(await heartbeat).toBe('sent');
    // The stalled batch's late answer does not free the group of a message sent after it.
    const after = outcome(b.send({ body: 'after', groupId: 'agent' }));
    await made(3);
    const later = outcome(b.send({ body: 'later', groupId: 'agent' }));
    // Nine more: with 'later' they would make a full batch, which goes at once if 'later' may go.
    const others = Array.from({ length: 9 }, (_, i) => outcome(b.send({ body: `o${i}`, groupId: `o${i}` })));
    await settle();
    answerSend(calls[0]!);
    await settle();
    expect(calls).toHaveLength(3);
    answerSend(calls[2]!);
    await made(4);
    expect(entries(calls[3]).map((e) => e.MessageBody)).toEqual(['later', ...others.map((_, i) => `o${i}`)]);
    answerSend(calls[3]!);
    expect([await after, await later, ...(await Promise.all(others))]).toEqual(Array(11).fill('sent'));
  });

  it('does not count stalled batches against the limit on batches in flight', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const t = manualTimers();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: t.timers, stallMs: 1000, maxInFlight: 1 });
    void b.send({ body: 'hung', groupId: 'a' });
    await made(1);
    const full = Array.from({ length: 10 }, (_, i) => outcome(b.send({ body: `f${i}`, groupId: `f${i}` })));
    await settle();
    // One batch in flight is the limit, even for a full one...
    expect(calls).toHaveLength(1);
    // ...until it has stalled: a hung connection does not stop every send after it.
    t.advance(1000);
    await made(2);
    expect(entries(calls[1])).toHaveLength(10);
    answerSend(calls[1]!);
    expect(await Promise.all(full)).toEqual(Array(10).fill('sent'));
  });

  it('drain() waits for everything queued', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const b = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const sends = ['a1', 'a2'].map((body) => outcome(b.send({ body, groupId: 'a' })));
    let drained = false;
    const draining = b.drain().then(() => (drained = true));
    await made(1);
    answerSend(calls[0]!);
    await made(2);
    expect(drained).toBe(false);
    answerSend(calls[1]!);
    await draining;
    expect(await Promise.all(sends)).toEqual(['sent', 'sent']);
  });
});

describe('DeleteBatcher', () => {
  it('deletes at once when idle, and what is handled meanwhile together after it', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const errors: unknown[] = [];
    const d = new DeleteBatcher({
      sqs,
      queueUrl: QUEUE,
      timers: manualTimers().timers,
      onError: (e) => errors.push(e),
    });
    d.delete(['r1']);
    await made(1);
    expect(calls[0]!.op).toBe('DeleteMessageBatch');
    d.delete(['r2', 'r3']);
    d.delete(['r4']);
    await settle();
    expect(calls).toHaveLength(1);
    calls[0]!.answer({});
    await made(2);
    expect(
      (calls[1]!.input.Entries as unknown as { ReceiptHandle: string }[]).map((e) => e.ReceiptHandle),
    ).toEqual(['r2', 'r3', 'r4']);
    calls[1]!.answer({ Failed: [{ Id: '1', Code: 'ReceiptHandleIsInvalid', SenderFault: true }] });
    await d.drain();
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('ReceiptHandleIsInvalid');
  });

  it('sends full batches of 10 without waiting', async () => {
    const { sqs, calls, made } = scriptedSqs();
    const d = new DeleteBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    d.delete(['first']);
    await made(1);
    d.delete(Array.from({ length: 23 }, (_, i) => `r${i}`));
    await made(3);
    await settle();
    expect(calls.map((c) => c.input.Entries.length)).toEqual([1, 10, 10]);
    for (const c of calls) c.answer({});
    await made(4);
    expect(calls[3]!.input.Entries).toHaveLength(3);
    calls[3]!.answer({});
    await d.drain();
  });
});

describe('status updates over a SendBatcher whose SQS refuses entries', () => {
  it('delivers every task’s updates, each task’s in order, no later one ahead of a refused earlier one', async () => {
    // SQS as a FIFO queue: what it takes is appended per group; every third entry it sees is refused.
    const taken = new Map<string, string[]>();
    let seen = 0;
    let requests = 0;
    const sqs: SqsApi = {
      call: async (op, input) => {
        if (op !== 'SendMessageBatch') return {} as never;
        requests++;
        const { Entries } = input as SqsOps['SendMessageBatch']['input'];
        const failed: string[] = [];
        for (const e of Entries) {
          if (++seen % 3 === 0) {
            failed.push(e.Id);
            continue;
          }
          const list = taken.get(e.MessageGroupId!) ?? [];
          list.push(e.MessageBody);
          taken.set(e.MessageGroupId!, list);
        }
        await new Promise<void>((r) => setImmediate(r));
        return {
          Successful: Entries.filter((e) => !failed.includes(e.Id)).map((e) => ({ Id: e.Id })),
          Failed: failed.map((Id) => ({ Id, Code: 'ServiceUnavailable', SenderFault: false })),
        } as never;
      },
    };
    const sender = new SendBatcher({ sqs, queueUrl: QUEUE, timers: manualTimers().timers });
    const t = manualTimers();
    let n = 0;
    const updates = new StatusUpdateManager({
      timers: t.timers,
      ids: { next: () => `u${n++}` },
      retryIntervalMs: 100,
      maxRetryIntervalMs: 100,
      send: (s: TaskStatus, attempt: number) =>
        sender.send({
          body: JSON.stringify({ taskId: s.taskId, state: s.state, uuid: s.uuid }),
          groupId: `agent-1:${s.taskId}`,
          dedupId: attempt === 0 ? s.uuid! : `${s.uuid}-${attempt}`,
        }),
    });
    const STATES = ['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED'] as const;
    const TASKS = Array.from({ length: 25 }, (_, i) => `task-${i}`);
    for (const taskId of TASKS) {
      for (const state of STATES) {
        updates.update({ taskId, frameworkId: 'fw', agentId: 'agent-1', state, source: 'SOURCE_EXECUTOR' });
      }
    }
    // Play the framework: acknowledge every head SQS has taken, resend the rest on their timers.
    for (let round = 0; round < 200 && updates.pending().length > 0; round++) {
      await sender.drain();
      for (const head of updates.inFlight()) {
        const got = (taken.get(`agent-1:${head.taskId}`) ?? []).map((b) => JSON.parse(b).uuid);
        if (got.includes(head.uuid)) updates.acknowledge('fw', head.taskId, head.uuid!);
      }
      t.advance(100);
    }
    expect(updates.pending()).toEqual([]);
    // Every update was sent at least once and a third of the sends were refused, yet they shared requests.
    expect(seen).toBeGreaterThan(75);
    expect(requests).toBeLessThan(seen / 3);
    for (const taskId of TASKS) {
      const states = taken.get(`agent-1:${taskId}`)!.map((b) => JSON.parse(b).state as string);
      // Resends may repeat a state, but never go back to an earlier one.
      const firstOf = STATES.map((s) => states.indexOf(s));
      expect(firstOf.every((i) => i >= 0)).toBe(true);
      const ranks = states.map((s) => STATES.indexOf(s as (typeof STATES)[number]));
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    }
  });
});
