/**
 * Serverless faults against the emulators: every handler dies right after each of its DynamoDB
 * writes once, every send to SQS fails once, invocations time out half-way through their batch,
 * DynamoDB throttles and reports spurious conflicts — and the run must look like a clean one:
 * every task launched once, every update delivered, nothing over-committed. A message that keeps
 * failing lands in its dead-letter queue, where `meso dlq` finds it and puts it back.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterQueues } from '../../lib/adapters/dlq.ts';
import { SqsBus, sdkSqs } from '../../lib/adapters/sqs.ts';
import { runProgram } from '../../lib/cli/program.ts';
import type { TaskRecord } from '../../lib/core/model.ts';
import type { SqsHandler } from '../../lib/lambda/lambda.ts';
import type { Bus } from '../../lib/ports/bus.ts';
import { ConditionFailedError, type Item, type WriteOp } from '../../lib/ports/store.ts';
import type { TaskStatus } from '../../lib/protocol/index.ts';
import { faultyStore } from './fault-kit.ts';
import { eventually, type Harness, launchWhatFits, startHarness } from './harness.ts';

const faults = { crashAfterWrite: 0, sendFailed: 0, timeouts: 0, throttled: 0, conflicts: 0 };
/** Off while the test reads the state it checks. */
let faultsOn = true;
/**
 * The delivery attempt of the batch being handled. Injected faults are transient, as real ones
 * are: a message meets them on its first three deliveries at most, so none is given up on (SQS
 * gives up after 5) — the dead-letter queues must stay empty.
 */
const attempt = new AsyncLocalStorage<number>();
const transient = () => faultsOn && (attempt.getStore() ?? 1) <= 3;

/** Each distinct write lands, then its handler dies — once. */
const writeKey = (ops: readonly WriteOp[]) =>
  JSON.stringify(
    ops.map((o) => [
      o.kind,
      o.table,
      o.kind === 'put' ? [o.item.agentId, o.item.frameworkId, o.item.taskId, o.item.key] : o.key,
      o.kind === 'patch' ? Object.keys(o.set) : [],
    ]),
  );
const crashed = new Set<string>();
let calls = 0;

/** Each message is refused by SQS once before it goes through. */
function flakyBus(inner: Bus): Bus {
  const failed = new Set<string>();
  return {
    async send(queueUrl, messages) {
      const key = `${queueUrl}|${messages.map((m) => m.body).join(',')}`; // stable across retries (dedup ids of nudges are not)
      if (transient() && !failed.has(key)) {
        failed.add(key);
        faults.sendFailed++;
        throw new Error('SQS unavailable (injected)');
      }
      await inner.send(queueUrl, messages);
    },
  };
}

/** One batch in three, the first time it comes, handles half its records and then times out. */
function timingOut(h: SqsHandler): SqsHandler {
  const seen = new Set<string>();
  let batches = 0;
  return (event, context) =>
    attempt.run(
      Math.max(...event.Records.map((r) => Number(r.attributes.ApproximateReceiveCount ?? '1'))),
      async () => {
        const id = event.Records.map((r) => r.messageId).join(',');
        if (transient() && !seen.has(id) && event.Records.length > 0 && ++batches % 3 === 0) {
          seen.add(id);
          faults.timeouts++;
          await h({ Records: event.Records.slice(0, Math.ceil(event.Records.length / 2)) }, context);
          throw new Error('Task timed out after 10.00 seconds (injected)');
        }
        return h(event, context);
      },
    );
}

describe('serverless faults', () => {
  let h: Harness;
  let poisoned = false;
  beforeAll(async () => {
    h = await startHarness({
      agents: 2,
      controlPlane: {
        // As deployed: the sweep sends what a dead handler left in the outbox and nudges the allocator.
        sweepIntervalMs: 2000,
        wrap: {
          store: (s) =>
            faultyStore(
              s,
              (op, detail) => {
                if (
                  poisoned &&
                  op === 'write' &&
                  (detail as WriteOp[]).some(
                    (o) => o.table === 'frameworks' && o.kind === 'put' && o.item.frameworkId === 'poison',
                  )
                )
                  return 'before';
                if (!transient()) return undefined;
                if (op === 'write') {
                  const ops = detail as WriteOp[];
                  const key = writeKey(ops);
                  if (!crashed.has(key) && !ops.some((o) => o.table === 'meta')) {
                    crashed.add(key);
                    faults.crashAfterWrite++;
                    return 'after';
                  }
                }
                calls++;
                if (calls % 7 === 0) {
                  faults.throttled++;
                  return 'before';
                }
                return undefined;
              },
              (when) =>
                when === 'after'
                  ? new Error('the handler died after its write (injected)')
                  : poisoned
                    ? new Error('poison (injected)')
                    : Object.assign(new Error('Rate of requests exceeds the allowed throughput (injected)'), {
                        name: 'ProvisionedThroughputExceededException',
                      }),
            ),
          bus: flakyBus,
        },
        wrapHandlers: (_q, handler) => timingOut(handler),
      },
    });
  });
  afterAll(async () => h?.stop());

  it('a crash after each write, a failed send, a timeout mid-batch and throttling: every task once, every update delivered', async () => {
    const launches = new Map<string, number>();
    const sent = new Set<string>();
    for (const a of h.agents) {
      a.on('taskStarted', (_fw, taskId) => launches.set(taskId, (launches.get(taskId) ?? 0) + 1));
      a.on('statusSent', (st) => st.uuid && sent.add(st.uuid));
    }
    const s = h.scheduler({ name: 'faults' });
    const N = 8;
    const pending = Array.from({ length: N }, (_, i) => `f${i}`);
    launchWhatFits(s, pending, { max: 2, cpus: 0.25, mem: 32 });
    const received = new Map<string, TaskStatus[]>();
    const done = new Promise<void>((resolve) =>
      s.on('update', (u) => {
        if (process.env.MESO_DEBUG)
          process.stderr.write(
            `${new Date().toISOString()} ${u.taskId} ${u.state} ${JSON.stringify(faults)}\n`,
          );
        received.set(u.taskId, [...(received.get(u.taskId) ?? []), u]);
        if ([...received.values()].filter((l) => l.some((x) => x.state === 'TASK_FINISHED')).length === N)
          resolve();
      }),
    );
    await s.subscribe();
    await done;
    faultsOn = false;
    for (let i = 0; i < N; i++) {
      expect(launches.get(`f${i}`)).toBe(1);
      expect(received.get(`f${i}`)?.map((u) => u.state)).toEqual(['TASK_RUNNING', 'TASK_FINISHED']);
    }
    // Every update an agent handed to SQS reached the framework.
    const got = new Set([...received.values()].flat().map((u) => u.uuid));
    expect([...sent].filter((u) => !got.has(u))).toEqual([]);
    const rows = await h.controlPlane.deps.store.query<TaskRecord & Item>('tasks', {
      name: 'frameworkId',
      value: s.frameworkId,
    });
    expect(rows.map((r) => r.state).sort()).toEqual(Array(N).fill('TASK_FINISHED'));
    await eventually(
      async () => h.agents.every((a) => a.pendingStatusUpdates().length === 0),
      'acknowledgements',
    );
    await eventually(async () => {
      const agents = await h.controlPlane.deps.store.scan<{ tasks: object } & Item>('agents');
      return agents.every((a) => Object.keys(a.tasks).length === 0);
    }, 'resources to be freed');
    expect(h.violations).toEqual([]);
    expect(faults.crashAfterWrite).toBeGreaterThan(N);
    expect(faults.sendFailed).toBeGreaterThan(N);
    expect(faults.timeouts).toBeGreaterThan(0);
    expect(faults.throttled).toBeGreaterThan(0);
    // Nothing was given up on.
    expect((await deadLetterQueues(h.sqs, h.cluster.prefix)).filter((q) => q.count > 0)).toEqual([]);
    await s.teardown();
    faultsOn = true;
  }, 120_000);

  it('spurious conditional-check failures are retried (re-read and decided again)', async () => {
    // A store that reports a lost race on one write in three, on top of the faults above.
    let n = 0;
    const store = h.controlPlane.deps.store;
    const original = store.write.bind(store);
    (store as { write: typeof store.write }).write = async (ops) => {
      if (++n % 3 === 0) {
        faults.conflicts++;
        throw new ConditionFailedError('lost a race (injected)');
      }
      return original(ops);
    };
    try {
      const s = h.scheduler({ name: 'conflicts' });
      const finished = new Promise<void>((resolve) =>
        s.on('update', (u) => {
          if (u.state === 'TASK_FINISHED') resolve();
        }),
      );
      s.on('offers', async (offers) => {
        const o = offers[0]!;
        await s.accept(
          [o.offerId],
          [
            {
              taskId: 'c1',
              agentId: o.agentId,
              resources: { cpus: 0.1, mem: 16 },
              command: { value: 'true' },
            },
          ],
        );
      });
      await s.subscribe();
      await finished;
      expect(faults.conflicts).toBeGreaterThan(0);
      await s.teardown();
    } finally {
      (store as { write: typeof store.write }).write = original;
    }
  });

  it('a message that keeps failing lands in the dead-letter queue; `meso dlq` lists it and redrives it', async () => {
    const queueUrl = (
      await h.sqs.send(
        new CreateQueueCommand({
          QueueName: `${h.cluster.prefix}-fw-poison.fifo`,
          Attributes: { FifoQueue: 'true' },
        }),
      )
    ).QueueUrl!;
    faultsOn = false; // only the poison now
    poisoned = true;
    const subscribe = {
      v: 1,
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: 'poison',
        name: 'poison',
        roles: ['*'],
        failoverTimeoutSeconds: 0,
        queueUrl,
        partitionAware: false,
      },
    };
    await new SqsBus(sdkSqs(h.sqs)).send(h.cluster.queues.schedulerCalls, [
      { body: JSON.stringify(subscribe), groupId: 'poison', dedupId: `poison-${Date.now()}` },
    ]);
    await eventually(
      async () => (await deadLetterQueues(h.sqs, h.cluster.prefix, ['schedulerCalls']))[0]!.count > 0,
      'the message to reach the dead-letter queue',
      40_000,
    );
    const out: string[] = [];
    const io = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (_t: string) => true },
      onInterrupt: () => () => {},
      exit: (c: number): never => {
        throw new Error(`exit ${c}`);
      },
    };
    const deps = { io, dlq: { loadConfig: () => h.cluster } };
    const letter = await eventually(async () => {
      out.length = 0;
      expect(await runProgram(['dlq', 'list', '--json', '--queue', 'scheduler-calls'], deps)).toBe(0);
      const listed = JSON.parse(out.join('')) as { messages: { messageId: string; body: string }[] };
      return listed.messages.find((m) => m.body.includes('"poison"'));
    }, '`meso dlq list` to show it');

    // The cause is fixed; put it back.
    poisoned = false;
    out.length = 0;
    expect(await runProgram(['dlq', 'redrive', letter.messageId], deps)).toBe(0);
    expect(out.join('')).toContain(`redriven ${letter.messageId}`);
    await eventually(
      async () => !!(await h.controlPlane.deps.store.get('frameworks', { frameworkId: 'poison' })),
      'the redriven SUBSCRIBE to be handled',
      30_000,
    );
    expect((await deadLetterQueues(h.sqs, h.cluster.prefix, ['schedulerCalls']))[0]!.count).toBe(0);
  });
});
