/**
 * The emulators' ceiling for the calls a task makes, for `bench/launch.ts`: after the run, the
 * run's own calls per task are replayed against the same emulator processes — the same
 * operations in the same proportions, batches and transactions of the sizes the run's calls
 * carried, on FIFO queues with a message group per message — by many callers at once, and the
 * calls/s they reach give the tasks/s the emulators allow (`ceilingOf`).
 *
 * The pure parts (`callMix`, `drive`, `ceilingOf`) are tested in test/unit/bench/calibrate.test.ts.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { apiCalls } from '../lib/adapters/api-calls.ts';
import { createDynamoClient } from '../lib/adapters/dynamo-store.ts';
import { createSqsClient } from '../lib/adapters/sqs.ts';
import type { ClusterConfig } from '../lib/config/cluster.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The operations the calibration can replay, and the bound on each one's size. */
export const CALIBRATED = {
  'SQS.SendMessageBatch': 10,
  'SQS.ReceiveMessage': 10,
  'SQS.DeleteMessageBatch': 10,
  'DynamoDB.GetItem': 1,
  'DynamoDB.BatchGetItem': 100,
  'DynamoDB.PutItem': 1,
  'DynamoDB.UpdateItem': 1,
  'DynamoDB.TransactWriteItems': 100,
  'DynamoDB.Scan': 100,
  'DynamoDB.Query': 1,
} as const;
export type CalibratedOp = keyof typeof CALIBRATED;

export interface CallMix {
  /** One round of the mix: each operation as often as its share of the calls, interleaved. */
  readonly sequence: readonly CalibratedOp[];
  /** Per operation: entries per batch, messages per receive, keys per BatchGetItem, items per transaction or per Scan page. */
  readonly size: Readonly<Partial<Record<CalibratedOp, number>>>;
  /** Calls per task of the run that the mix replays, and those it does not (setup calls: CreateQueue, …). */
  readonly calibratedPerTask: number;
  readonly uncalibratedPerTask: Readonly<Record<string, number>>;
}

/**
 * The run's calls as a replayable mix of `slots` calls: each calibrated operation gets slots by
 * its share of the calls (largest remainders, so they add up to `slots`; one with less than a
 * slot's share may get none), spread evenly over the round (smooth weighted round-robin,
 * deterministic); its size is the run's average units per
 * call, rounded and kept within 1 and the operation's bound. `calls` and `units` are totals (or
 * per task) by `<service>.<operation>`, as `lib/adapters/api-calls.ts` counts them.
 */
export function callMix(
  calls: Readonly<Record<string, number>>,
  units: Readonly<Record<string, number>>,
  tasks: number,
  slots = 1000,
): CallMix {
  const known = Object.entries(calls).filter(
    (e): e is [CalibratedOp, number] => e[0] in CALIBRATED && e[1] > 0,
  );
  const uncalibratedPerTask = Object.fromEntries(
    Object.entries(calls)
      .filter(([k, v]) => !(k in CALIBRATED) && v > 0)
      .map(([k, v]) => [k, v / tasks]),
  );
  const total = known.reduce((a, [, v]) => a + v, 0);
  if (total === 0) return { sequence: [], size: {}, calibratedPerTask: 0, uncalibratedPerTask };
  // Largest remainders: floor each exact share, then hand the slots left to the largest fractions.
  const exact = known.map(([op, v]) => ({ op, exact: (v / total) * slots }));
  const count = new Map(exact.map((e) => [e.op, Math.floor(e.exact)]));
  let left = slots - [...count.values()].reduce((a, b) => a + b, 0);
  for (const e of [...exact].sort(
    (a, b) => b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)),
  )) {
    if (left-- <= 0) break;
    count.set(e.op, count.get(e.op)! + 1);
  }
  // Smooth weighted round-robin: each step every op gains its weight, the richest is taken and pays `slots`.
  const credit = new Map([...count.keys()].map((op) => [op, 0]));
  const sequence: CalibratedOp[] = [];
  for (let i = 0; i < slots; i++) {
    let best: CalibratedOp | undefined;
    for (const [op, w] of count) {
      credit.set(op, credit.get(op)! + w);
      if (w > 0 && (best === undefined || credit.get(op)! > credit.get(best)!)) best = op;
    }
    credit.set(best!, credit.get(best!)! - slots);
    sequence.push(best!);
  }
  const size = Object.fromEntries(
    known.map(([op, v]) => {
      const perCall = (units[op] ?? v) / v;
      return [op, Math.max(1, Math.min(CALIBRATED[op], Math.round(perCall)))];
    }),
  );
  return { sequence, size, calibratedPerTask: total / tasks, uncalibratedPerTask };
}

/**
 * `callers` loops at once, each calling `work(caller, i)` while `more(caller, i)` holds; returns
 * the calls their work reports, summed. (Adding each result after its `await`: `n += await work()`
 * would read `n` before the await, and concurrent callers would overwrite each other's counts.)
 */
export async function drive(
  callers: number,
  more: (caller: number, i: number) => boolean,
  work: (caller: number, i: number) => Promise<number>,
): Promise<number> {
  let calls = 0;
  await Promise.all(
    Array.from({ length: callers }, async (_, w) => {
      for (let i = 0; more(w, i); i++) {
        const n = await work(w, i);
        calls += n;
      }
    }),
  );
  return calls;
}

/**
 * What the calibrated emulators allow this run: its calls per task (all of them; the few the mix
 * does not replay taken at the mix's average cost) against the calls/s the mix reached, and the
 * burst's share of that.
 */
export function ceilingOf(run: { tasksPerSecond: number; callsPerTask: number }, callsPerSecond: number) {
  const ceilingTasksPerSecond = run.callsPerTask > 0 ? callsPerSecond / run.callsPerTask : 0;
  return {
    ceilingTasksPerSecond,
    shareOfCeiling: ceilingTasksPerSecond > 0 ? run.tasksPerSecond / ceilingTasksPerSecond : 0,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const QUEUES = 4;
/** Items each caller owns (written only by it, so transactions do not conflict among callers). */
const ITEMS_PER_CALLER = 8;
const PAYLOAD = 'x'.repeat(600); // about a task row's size

/** One timed round of the replay: calls/s in all and by operation, and the CPU its process used per second. */
export interface Round {
  readonly callsPerSecond: number;
  readonly byOp: Record<string, number>;
  readonly clientCpu: number;
  readonly errors: number;
}

/**
 * A replay of `mix` by `callers` callers from this process, ready to run timed rounds: its own
 * FIFO queues and items (named with `name`) created. Nothing else should be calling from this
 * process (the calls by operation are read off its API-call tally).
 */
export async function replayer(
  cluster: ClusterConfig,
  mix: CallMix,
  o: { callers: number; name: string },
): Promise<{ round(seconds: number): Promise<Round>; close(): Promise<void> }> {
  if (mix.sequence.length === 0) throw new Error('calibrate: the run made no calls to replay');
  const sqs: SQSClient = createSqsClient(cluster.aws);
  const doc: DynamoDBDocumentClient = createDynamoClient(cluster.aws);
  const table = cluster.tables.meta;
  const queues = await Promise.all(
    Array.from({ length: QUEUES }, async (_, q) => {
      const r = await sqs.send(
        new CreateQueueCommand({
          QueueName: `${cluster.prefix}-calibrate-${o.name}-${q}.fifo`,
          Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true', VisibilityTimeout: '60' },
        }),
      );
      return r.QueueUrl!;
    }),
  );
  const key = (w: number, j: number) => `calibrate-${o.name}-${w}-${j % ITEMS_PER_CALLER}`;
  await drive(
    o.callers,
    (_, j) => j < ITEMS_PER_CALLER,
    async (w, j) => {
      await doc.send(new PutCommand({ TableName: table, Item: { key: key(w, j), n: 0, payload: PAYLOAD } }));
      return 1;
    },
  );
  const pending: string[][] = Array.from({ length: o.callers }, () => []);
  let sent = 0;
  let errors = 0;
  const size = (op: CalibratedOp) => mix.size[op] ?? 1;
  const any = (w: number, i: number) => key((w * 7 + i) % o.callers, i); // any caller's item, read
  const ops: Record<CalibratedOp, (w: number, i: number) => Promise<number>> = {
    'SQS.SendMessageBatch': async (w, i) => {
      const n = size('SQS.SendMessageBatch');
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queues[w % QUEUES],
          Entries: Array.from({ length: n }, (_, k) => ({
            Id: String(k),
            MessageBody: `${sent++} ${PAYLOAD.slice(0, 300)}`,
            MessageGroupId: `t-${w}-${i}-${k}`, // a group per message, as a group per task
          })),
        }),
      );
      return 1;
    },
    'SQS.ReceiveMessage': async (w) => {
      const r = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queues[w % QUEUES],
          MaxNumberOfMessages: size('SQS.ReceiveMessage'),
          WaitTimeSeconds: 0,
        }),
      );
      for (const m of r.Messages ?? []) pending[w]!.push(m.ReceiptHandle!);
      return 1;
    },
    'SQS.DeleteMessageBatch': async (w) => {
      const handles = pending[w]!.splice(0, size('SQS.DeleteMessageBatch'));
      if (handles.length === 0) return 0; // nothing received yet: no call
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queues[w % QUEUES],
          Entries: handles.map((h, k) => ({ Id: String(k), ReceiptHandle: h })),
        }),
      );
      return 1;
    },
    'DynamoDB.GetItem': async (w, i) => {
      await doc.send(new GetCommand({ TableName: table, Key: { key: any(w, i) }, ConsistentRead: true }));
      return 1;
    },
    'DynamoDB.BatchGetItem': async (w, i) => {
      const n = Math.min(size('DynamoDB.BatchGetItem'), o.callers * ITEMS_PER_CALLER);
      const keys = Array.from({ length: n }, (_, k) => key((w + k) % o.callers, i + k));
      await doc.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: { Keys: [...new Set(keys)].map((k) => ({ key: k })), ConsistentRead: true },
          },
        }),
      );
      return 1;
    },
    'DynamoDB.PutItem': async (w, i) => {
      await doc.send(new PutCommand({ TableName: table, Item: { key: key(w, i), n: i, payload: PAYLOAD } }));
      return 1;
    },
    'DynamoDB.UpdateItem': async (w, i) => {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { key: key(w, i) },
          UpdateExpression: 'SET #n = :n, #s = :s',
          ConditionExpression: 'attribute_exists(#k)',
          ExpressionAttributeNames: { '#n': 'n', '#s': 'state', '#k': 'key' },
          ExpressionAttributeValues: { ':n': i, ':s': `S${i % 3}` },
        }),
      );
      return 1;
    },
    'DynamoDB.TransactWriteItems': async (w, i) => {
      // As an ACCEPT's: one of the caller's items updated, the rest new items put if absent.
      const n = size('DynamoDB.TransactWriteItems');
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: table,
                Key: { key: key(w, i) },
                UpdateExpression: 'SET #n = :n',
                ConditionExpression: 'attribute_exists(#k)',
                ExpressionAttributeNames: { '#n': 'n', '#k': 'key' },
                ExpressionAttributeValues: { ':n': i },
              },
            },
            ...Array.from({ length: n - 1 }, (_, k) => ({
              Put: {
                TableName: table,
                Item: { key: `calibrate-${o.name}-${w}-${i}-${k}-${sent++}`, payload: PAYLOAD },
                ConditionExpression: 'attribute_not_exists(#k)',
                ExpressionAttributeNames: { '#k': 'key' },
              },
            })),
          ],
        }),
      );
      return 1;
    },
    'DynamoDB.Query': async (w, i) => {
      await doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: '#k = :k',
          ExpressionAttributeNames: { '#k': 'key' },
          ExpressionAttributeValues: { ':k': any(w, i) },
          ConsistentRead: true,
        }),
      );
      return 1;
    },
    'DynamoDB.Scan': async () => {
      await doc.send(new ScanCommand({ TableName: table, Limit: size('DynamoDB.Scan') }));
      return 1;
    },
  };
  const step = (w: number, i: number) => {
    const op = mix.sequence[(w * 13 + i) % mix.sequence.length]!; // callers start at different points
    return ops[op](w, i).catch(() => {
      errors++;
      return 1;
    });
  };
  const round = async (seconds: number): Promise<Round> => {
    const until = performance.now() + seconds * 1000;
    const before = new Map(apiCalls);
    const errorsBefore = errors;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const calls = await drive(o.callers, () => performance.now() < until, step);
    const wall = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu);
    const byOp: Record<string, number> = {};
    for (const [k, v] of apiCalls) if (v > (before.get(k) ?? 0)) byOp[k] = (v - (before.get(k) ?? 0)) / wall;
    const clientCpu = (used.user + used.system) / 1e6 / wall;
    return { callsPerSecond: calls / wall, byOp, clientCpu, errors: errors - errorsBefore };
  };
  return {
    round,
    close: async () => {
      // The queues go; the items stay in `meta` with the run's.
      await Promise.all(queues.map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))));
      sqs.destroy();
      doc.destroy();
    },
  };
}

/** Rounds of several processes at once, added up. */
export function addRounds(rounds: readonly Round[]): Round {
  const byOp: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.byOp)) byOp[k] = (byOp[k] ?? 0) + v;
  return {
    callsPerSecond: rounds.reduce((a, r) => a + r.callsPerSecond, 0),
    byOp,
    clientCpu: Math.max(0, ...rounds.map((r) => r.clientCpu)),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
  };
}

/** A replayer in a process of its own (bench/calibrate-process.ts), driven over stdin/stdout. */
function replayerProcess(cluster: ClusterConfig, mix: CallMix, o: { callers: number; name: string }) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href,
      join(ROOT, 'bench/calibrate-process.ts'),
      JSON.stringify({ cluster, mix, ...o }),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines: { resolve(m: Record<string, unknown>): void; reject(e: Error): void }[] = [];
  let gone = false;
  const exited = new Promise<void>((r) =>
    child.once('exit', (code) => {
      gone = true;
      // A process that dies fails what waits on it, instead of leaving the bench waiting forever.
      for (const w of lines.splice(0)) w.reject(new Error(`calibrating process ${o.name} exited (${code})`));
      r();
    }),
  );
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not one of ours
    }
    lines.shift()?.resolve(msg);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) =>
      gone ? reject(new Error(`calibrating process ${o.name} exited`)) : lines.push({ resolve, reject }),
    );
  const ready = next();
  return {
    ready,
    round: (seconds: number) => {
      const got = next();
      child.stdin!.write(`round ${seconds}\n`);
      return got.then((m) => m.round as Round);
    },
    close: async () => {
      if (!gone) child.stdin!.write('close\n');
      await exited;
    },
  };
}

/**
 * The calibration: the replay of `mix` by `callers` callers, split over `processes` processes
 * (1: this one), after a one-second warm-up, for `rounds` rounds of `seconds` each; the processes
 * run each round at once and their calls are added. The median round is the figure.
 */
export async function calibrate(
  cluster: ClusterConfig,
  mix: CallMix,
  o: { seconds: number; rounds: number; callers: number; processes: number },
) {
  const processes = Math.max(1, o.processes);
  const share = (p: number) => Math.floor(o.callers / processes) + (p < o.callers % processes ? 1 : 0);
  let replayers: { round(seconds: number): Promise<Round>; close(): Promise<void> }[];
  if (processes === 1) replayers = [await replayer(cluster, mix, { callers: o.callers, name: 'p0' })];
  else {
    replayers = Array.from({ length: processes }, (_, p) =>
      replayerProcess(cluster, mix, { callers: share(p), name: `p${p}` }),
    );
  }
  const rounds: Round[] = [];
  try {
    await Promise.all(replayers.map((r) => ('ready' in r ? r.ready : undefined)));
    const round = async (seconds: number) =>
      addRounds(await Promise.all(replayers.map((r) => r.round(seconds))));
    await round(1); // warm-up
    for (let r = 0; r < o.rounds; r++) rounds.push(await round(o.seconds));
  } finally {
    await Promise.all(replayers.map((r) => r.close().catch(() => {})));
  }
  const mid = rounds.find((r) => r.callsPerSecond === median(rounds.map((x) => x.callsPerSecond)))!;
  const service = (s: string) =>
    Object.entries(mid.byOp)
      .filter(([k]) => k.startsWith(`${s}.`))
      .reduce((a, [, v]) => a + v, 0);
  const r0 = (x: number) => Math.round(x);
  return {
    seconds: o.seconds,
    rounds: o.rounds,
    callers: o.callers,
    processes,
    callsPerSecond: r0(mid.callsPerSecond),
    callsPerSecondByRound: rounds.map((r) => r0(r.callsPerSecond)),
    sqsCallsPerSecond: r0(service('SQS')),
    dynamodbCallsPerSecond: r0(service('DynamoDB')),
    callsPerSecondByOperation: Object.fromEntries(
      Object.entries(mid.byOp)
        .sort()
        .map(([k, v]) => [k, r0(v)]),
    ),
    size: mix.size,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    /** CPU seconds per second of the busiest calling process in the median round: near 1, the callers, not the emulators, were the limit. */
    clientCpu: Number(mid.clientCpu.toFixed(2)),
  };
}
