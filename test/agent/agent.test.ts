/**
 * The Agent against the SQS emulator through the real AWS SDK client. The test plays the control
 * plane: it receives the agent's REGISTER, HEARTBEAT and STATUS_UPDATE calls from the cluster's
 * `agent-calls` queue and sends REGISTERED, LAUNCH, KILL, ACKNOWLEDGE (and malformed bodies) to
 * the agent's own FIFO queue.
 */
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions, agentQueueName, loadOrCreateAgentId } from '../../agent/agent.ts';
import { silentLog, stderrLog } from '../../agent/log.ts';
import type { CallTally } from '../../lib/adapters/api-calls.ts';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/aws-config.ts';
import { staticCredentials } from '../../lib/adapters/credentials.ts';
import { SqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import { parse } from '../../lib/core/resources.ts';
import type { TaskInfo, TaskStatus } from '../../lib/protocol/common.ts';
import { createTestCluster, type TestCluster } from '../setup/cluster.ts';
import { TestControlPlane } from './control-plane.ts';
import { tempDir } from './helpers.ts';

const FW = 'fw-1';
const HEARTBEAT_MS = 500;

let cluster: TestCluster;
let control: TestControlPlane;
let dir: Awaited<ReturnType<typeof tempDir>>;
let agent: Agent | undefined;
let agentSqs: SqsHttpClient | undefined;
const agentTally: CallTally = new Map();
/** SQS calls made by the current agent's client. */

beforeAll(async () => {
  cluster = await createTestCluster();
  // One receiver for the file; each test takes only its own agent's calls.
  control = new TestControlPlane(cluster.sqs, cluster.config.queues.agentCalls);
});

afterAll(async () => {
  await control?.stop();
  await cluster?.destroy();
});

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  const a = agent;
  agent = undefined;
  await a?.stop({ killTasks: true, gracePeriodMs: 0 });
  let queueUrl: string | undefined;
  try {
    queueUrl = a?.queueUrl;
  } catch {
    queueUrl = undefined; // never started
  }
  // The cluster's deprovision does not know agents' queues.
  if (queueUrl) await cluster.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
  agentSqs?.close();
  agentSqs = undefined;
  await dir.remove();
});

function makeAgent(extra: Partial<AgentOptions> = {}): Agent {
  agentTally.clear();
  agentSqs = new SqsHttpClient({
    region: cluster.config.aws.region,
    endpoint: cluster.config.aws.sqsEndpoint!,
    credentials: staticCredentials(LOCAL_CREDENTIALS),
    tally: agentTally,
  });
  agent = new Agent({
    sqs: agentSqs,
    agentCallsQueueUrl: cluster.config.queues.agentCalls,
    prefix: cluster.config.prefix,
    workDir: dir.path,
    resources: parse('cpus:2;mem:1024;ports:[31000-31010]'),
    attributes: { rack: 'r1' },
    hostname: 'node-1',
    heartbeatIntervalMs: HEARTBEAT_MS,
    registerRetryIntervalMs: 250,
    statusRetryIntervalMs: 60_000,
    pollWaitSeconds: 1,
    // MESO_AGENT_TEST_LOG=1: the agent's log on stderr.
    log: process.env.MESO_AGENT_TEST_LOG ? stderrLog('debug') : silentLog,
    ...extra,
  });
  return agent;
}

/** The next STATUS_UPDATE (not taken before) the agent sent for `taskId` in `state`. */
function nextStatus(a: Agent, taskId: string, state: TaskStatus['state']) {
  return control.take(
    a.agentId,
    'STATUS_UPDATE',
    (c) => c.status.taskId === taskId && c.status.state === state,
  );
}

function launch(a: Agent, task: Omit<TaskInfo, 'agentId' | 'resources'> & Partial<TaskInfo>): Promise<void> {
  return control.command(a.queueUrl, {
    v: 1,
    type: 'LAUNCH',
    frameworkId: FW,
    task: { agentId: a.agentId, resources: { cpus: 0.1 }, ...task },
  });
}

function ack(a: Agent, s: TaskStatus): Promise<void> {
  return control.command(a.queueUrl, {
    v: 1,
    type: 'ACKNOWLEDGE',
    frameworkId: s.frameworkId,
    taskId: s.taskId,
    uuid: s.uuid!,
  });
}

async function registered(a: Agent, heartbeatIntervalSeconds = 15): Promise<void> {
  const done = once(a, 'registered');
  await control.command(a.queueUrl, {
    v: 1,
    type: 'REGISTERED',
    agentId: a.agentId,
    heartbeatIntervalSeconds,
  });
  await done;
}

describe('Agent', () => {
  it('creates its queue, registers (resending until REGISTERED), then heartbeats', async () => {
    const a = makeAgent();
    const resent = new Promise<void>((resolve) => a.on('registerSent', (n) => n >= 1 && resolve()));
    await a.start();

    expect(a.queueUrl).toContain(agentQueueName(cluster.config.prefix, a.agentId));
    expect(await control.queueAttributes(a.queueUrl, ['FifoQueue', 'VisibilityTimeout'])).toEqual({
      FifoQueue: 'true',
      VisibilityTimeout: '30',
    });
    expect((await readFile(join(dir.path, 'agent-id'), 'utf8')).trim()).toBe(a.agentId);

    const { body, message } = await control.take(a.agentId, 'REGISTER');
    expect(body).toEqual({
      v: 1,
      type: 'REGISTER',
      agentId: a.agentId,
      hostname: 'node-1',
      resources: { cpus: 2, mem: 1024, ports: [[31000, 31010]] },
      // The isolation in force travels as attributes (`meso agents` shows it).
      attributes: { rack: 'r1', 'meso.isolation': 'none', 'meso.containers': 'none' },
      queueUrl: a.queueUrl,
      agentVersion: expect.any(String),
      tasks: [],
    });
    expect(message.groupId).toBe(a.agentId);
    await resent;
    // The resend reached the queue: FIFO deduplication did not swallow it.
    const again = await control.take(a.agentId, 'REGISTER');
    expect(again.body).toEqual(body);
    expect(again.message.dedupId).not.toBe(message.dedupId);

    await registered(a);
    expect(a.isRegistered).toBe(true);
    expect(a.heartbeatIntervalMs).toBe(HEARTBEAT_MS); // the option is shorter than the 15 s REGISTERED asks
    const hb = await control.take(a.agentId, 'HEARTBEAT');
    expect(hb.body).toEqual({ v: 1, type: 'HEARTBEAT', agentId: a.agentId });
    expect(hb.message.groupId).toBe(a.agentId);
    const hb2 = await control.take(a.agentId, 'HEARTBEAT');
    expect(hb2.body).toEqual(hb.body);

    const dedupIds = control.callsFrom(a.agentId).map((m) => m.dedupId);
    expect(dedupIds.every((d) => typeof d === 'string' && d.length > 0)).toBe(true);
    expect(new Set(dedupIds).size).toBe(dedupIds.length);
  });

  it('keeps its agent id across restarts', async () => {
    const first = await loadOrCreateAgentId(dir.path);
    expect(await loadOrCreateAgentId(dir.path)).toBe(first);
    await writeFile(join(dir.path, 'agent-id'), 'bad id!\n');
    await expect(loadOrCreateAgentId(dir.path)).rejects.toThrow(/not an agent id/);
  });

  it('runs a task with nothing to fetch STAGING → RUNNING → FINISHED (no STARTING), one acknowledged update at a time', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);

    const ended = new Promise<void>((resolve) =>
      a.on('taskTerminated', (_fw, taskId) => taskId === 't1' && resolve()),
    );
    await launch(a, { taskId: 't1', command: { shell: true, value: 'echo out; echo err >&2' } });
    const s1 = await nextStatus(a, 't1', 'TASK_RUNNING');
    expect(s1.body.agentId).toBe(a.agentId);
    expect(s1.body.status).toMatchObject({ frameworkId: FW, agentId: a.agentId, source: 'SOURCE_EXECUTOR' });
    expect(s1.body.status.message).toMatch(/^pid \d+$/);
    expect(s1.message).toMatchObject({ groupId: `${a.agentId}:t1`, dedupId: s1.body.status.uuid });
    // One update at a time: FINISHED (the task has ended) waits for RUNNING's acknowledgement.
    await ended;
    const sent = () =>
      control
        .callsFrom(a.agentId)
        .filter((m) => m.call?.type === 'STATUS_UPDATE' && m.call.status.taskId === 't1');
    expect(sent().map((m) => m.call?.type === 'STATUS_UPDATE' && m.call.status.state)).toEqual([
      'TASK_RUNNING',
    ]);
    expect(a.pendingStatusUpdates().map((u) => u.state)).toEqual(['TASK_RUNNING', 'TASK_FINISHED']);
    expect(a.pendingStatusUpdates()[0]).toEqual(s1.body.status);

    await ack(a, s1.body.status);
    const s2 = await nextStatus(a, 't1', 'TASK_FINISHED');
    expect(s2.body.status).toMatchObject({ exitCode: 0, stdoutTail: 'out\n', stderrTail: 'err\n' });
    const acked = once(a, 'command');
    await ack(a, s2.body.status);
    await acked;
    expect(a.pendingStatusUpdates()).toEqual([]);
    // No TASK_STARTING was ever generated for it.
    expect(
      sent().some((m) => m.call?.type === 'STATUS_UPDATE' && m.call.status.state === 'TASK_STARTING'),
    ).toBe(false);
  });

  it('runs a task with URIs STARTING (as the fetch begins) → RUNNING, RUNNING after STARTING is acknowledged', async () => {
    const src = join(dir.path, 'artifact.txt');
    await writeFile(src, 'fetched\n');
    const a = makeAgent();
    await a.start();
    await registered(a);

    const started = new Promise<void>((resolve) =>
      a.on('taskStarted', (_fw, taskId) => taskId === 'u1' && resolve()),
    );
    await launch(a, {
      taskId: 'u1',
      uris: [{ value: `file://${src}`, extract: false }],
      command: { shell: true, value: 'cat artifact.txt; sleep 60' },
    });
    const s1 = await nextStatus(a, 'u1', 'TASK_STARTING');
    expect(s1.body.status).toMatchObject({ source: 'SOURCE_EXECUTOR', message: 'fetching 1 URI' });
    // The process runs, but RUNNING waits for STARTING's acknowledgement (in order per task).
    await started;
    expect(a.pendingStatusUpdates().map((u) => u.state)).toEqual(['TASK_STARTING', 'TASK_RUNNING']);
    expect(
      control
        .callsFrom(a.agentId)
        .filter((m) => m.call?.type === 'STATUS_UPDATE' && m.call.status.taskId === 'u1'),
    ).toHaveLength(1);
    await ack(a, s1.body.status);
    const s2 = await nextStatus(a, 'u1', 'TASK_RUNNING');
    expect(s2.body.status.message).toMatch(/^pid \d+$/);
  });

  it('takes one ACKNOWLEDGE carrying several tasks’ acknowledgements, ignoring uuids it does not hold', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    await launch(a, { taskId: 'm1', command: { shell: true, value: 'true' } });
    await launch(a, { taskId: 'm2', command: { shell: true, value: 'true' } });
    const s1 = await nextStatus(a, 'm1', 'TASK_RUNNING');
    const s2 = await nextStatus(a, 'm2', 'TASK_RUNNING');
    await control.command(a.queueUrl, {
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: FW,
      acks: [
        { taskId: 'm1', uuid: s1.body.status.uuid! },
        { taskId: 'm2', uuid: 'not-in-flight' },
        { taskId: 'm2', uuid: s2.body.status.uuid! },
      ],
    });
    // Both tasks' next updates follow: each acknowledgement released its task's head.
    await nextStatus(a, 'm1', 'TASK_FINISHED');
    await nextStatus(a, 'm2', 'TASK_FINISHED');
  });

  it('resends an unacknowledged update with a new deduplication id', async () => {
    const a = makeAgent({ statusRetryIntervalMs: 100 });
    await a.start();
    await registered(a);
    await launch(a, { taskId: 't1', command: { shell: true, value: 'true' } });
    const s = await nextStatus(a, 't1', 'TASK_RUNNING');
    const again = await nextStatus(a, 't1', 'TASK_RUNNING');
    expect(again.body.status).toEqual(s.body.status);
    expect(s.message.dedupId).toBe(s.body.status.uuid);
    expect(again.message.dedupId).toBe(`${s.body.status.uuid}-1`);
  });

  it('ignores a duplicate LAUNCH', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    const started = once(a, 'taskStarted');
    await launch(a, { taskId: 'dup', command: { shell: true, value: 'sleep 60' } });
    await started;
    const run = a.task(FW, 'dup');
    expect(run).toBeDefined();
    // A redelivery: same task, a new SQS message (a new deduplication id), so it reaches the agent.
    const handled = once(a, 'command');
    await launch(a, { taskId: 'dup', command: { shell: true, value: 'sleep 60' } });
    const [cmd] = await handled;
    expect(cmd).toMatchObject({ type: 'LAUNCH', task: { taskId: 'dup' } });
    expect(a.task(FW, 'dup')).toBe(run);
    expect(a.runningTasks()).toHaveLength(1);
  });

  it('kills a running task to TASK_KILLED', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    await launch(a, { taskId: 'k1', command: { shell: true, value: 'sleep 60' } });
    const s2 = await nextStatus(a, 'k1', 'TASK_RUNNING');
    await control.command(a.queueUrl, {
      v: 1,
      type: 'KILL',
      frameworkId: FW,
      taskId: 'k1',
      gracePeriodSeconds: 30,
    });
    await ack(a, s2.body.status);
    const s3 = await nextStatus(a, 'k1', 'TASK_KILLED');
    expect(s3.body.status.message).toMatch(/^killed with SIGTERM/);
  });

  it('answers a KILL for an unknown task with TASK_DROPPED and never runs a later LAUNCH of it', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    await control.command(a.queueUrl, { v: 1, type: 'KILL', frameworkId: FW, taskId: 'ghost' });
    const d1 = await nextStatus(a, 'ghost', 'TASK_DROPPED');
    expect(d1.body.status).toMatchObject({ reason: 'REASON_TASK_UNKNOWN', source: 'SOURCE_AGENT' });
    expect(d1.body.status.message).toMatch(/^unknown task/);

    let started = false;
    a.on('taskStarted', () => {
      started = true;
    });
    await launch(a, { taskId: 'ghost', command: { shell: true, value: 'echo should-not-run' } });
    await ack(a, d1.body.status);
    const d2 = await nextStatus(a, 'ghost', 'TASK_DROPPED');
    expect(d2.body.status.reason).toBe('REASON_TASK_KILLED_DURING_LAUNCH');
    expect(a.task(FW, 'ghost')).toBeUndefined();
    expect(started).toBe(false);
  });

  it('logs and deletes malformed commands', async () => {
    const a = makeAgent();
    await a.start();
    const rejected = new Map<string, string>();
    const three = new Promise<void>((resolve) =>
      a.on('rejected', (error, body) => {
        rejected.set(body, error);
        if (rejected.size === 3) resolve();
      }),
    );
    const notJson = 'not json';
    const badLaunch = JSON.stringify({ v: 1, type: 'LAUNCH', frameworkId: FW });
    const badVersion = JSON.stringify({ v: 2, type: 'KILL' });
    // One FIFO group each, so a message the agent failed to delete could not hold back the others.
    for (const [i, body] of [notJson, badLaunch, badVersion].entries()) {
      await control.sendRaw(a.queueUrl, body, `malformed-${i}`);
    }
    await three;
    expect(rejected.get(notJson)).toMatch(/not JSON/);
    expect(rejected.get(badLaunch)).toMatch(/invalid LAUNCH/);
    expect(rejected.get(badVersion)).toMatch(/unsupported protocol version/);
    // Deleted once the batch was handled, never left to be redelivered: stop() waits for the
    // poller's delete, after which nothing is left on the queue, visible or in flight.
    await a.stop();
    expect(
      await control.queueAttributes(a.queueUrl, [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ]),
    ).toEqual({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
      ApproximateNumberOfMessagesDelayed: '0',
    });
  });

  it('stop({ killTasks: true }) kills running tasks and stops sending', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    const started = once(a, 'taskStarted');
    await launch(a, { taskId: 's1', command: { shell: true, value: "trap '' TERM; sleep 60" } });
    await started;
    const run = a.task(FW, 's1')!;
    await a.stop({ killTasks: true, gracePeriodMs: 0 });
    expect(run.isTerminated).toBe(true);
    expect((await run.terminated).state).toBe('TASK_KILLED');
    expect(a.runningTasks()).toEqual([]);
    const calls = () => [...agentTally.values()].reduce((a, b) => a + b, 0);
    const sends = calls();
    await a.stop();
    expect(calls()).toBe(sends);
  });
});
