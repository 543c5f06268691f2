import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions, agentQueueName, loadOrCreateAgentId } from '../../agent/agent.ts';
import { silentLog } from '../../agent/log.ts';
import { parse } from '../../lib/core/resources.ts';
import type { AgentCall, AgentCommand } from '../../lib/protocol/agent.ts';
import type { TaskInfo, TaskStatus } from '../../lib/protocol/common.ts';
import { type FakeMessage, FakeSqs } from './fake-sqs.ts';
import { tempDir } from './helpers.ts';

const FW = 'fw-1';

let sqs: FakeSqs;
let callsUrl: string;
let dir: Awaited<ReturnType<typeof tempDir>>;
let agent: Agent | undefined;

beforeEach(async () => {
  sqs = new FakeSqs();
  callsUrl = sqs.createQueue('meso-agent-calls.fifo');
  dir = await tempDir();
});

afterEach(async () => {
  await agent?.stop({ killTasks: true, gracePeriodMs: 0 });
  agent = undefined;
  await dir.remove();
});

function makeAgent(extra: Partial<AgentOptions> = {}): Agent {
  agent = new Agent({
    sqs: sqs.client,
    agentCallsQueueUrl: callsUrl,
    prefix: 'meso',
    workDir: dir.path,
    resources: parse('cpus:2;mem:1024;ports:[31000-31010]'),
    attributes: { rack: 'r1' },
    hostname: 'node-1',
    heartbeatIntervalMs: 20,
    registerRetryIntervalMs: 20,
    statusRetryIntervalMs: 60_000,
    pollWaitSeconds: 1,
    log: silentLog,
    ...extra,
  });
  return agent;
}

/** The next call the agent sends to agent-calls that matches. */
function nextCall<T extends AgentCall['type']>(
  type: T,
  match: (c: Extract<AgentCall, { type: T }>) => boolean = () => true,
  fromHistory = false,
): Promise<{ body: Extract<AgentCall, { type: T }>; message: FakeMessage }> {
  return sqs.next<Extract<AgentCall, { type: T }>>(callsUrl, (b) => b.type === type && match(b), {
    fromHistory,
  });
}

function nextStatus(taskId: string, state: TaskStatus['state']) {
  return nextCall('STATUS_UPDATE', (c) => c.status.taskId === taskId && c.status.state === state);
}

function command(a: Agent, c: AgentCommand, groupId = 'control'): void {
  sqs.put(a.queueUrl, c, groupId);
}

function launch(a: Agent, task: Omit<TaskInfo, 'agentId' | 'resources'> & Partial<TaskInfo>): void {
  command(a, {
    v: 1,
    type: 'LAUNCH',
    frameworkId: FW,
    task: { agentId: a.agentId, resources: { cpus: 0.1 }, ...task },
  });
}

function ack(a: Agent, s: TaskStatus): void {
  command(a, { v: 1, type: 'ACKNOWLEDGE', frameworkId: s.frameworkId, taskId: s.taskId, uuid: s.uuid! });
}

async function registered(a: Agent, heartbeatIntervalSeconds = 15): Promise<void> {
  const done = once(a, 'registered');
  command(a, { v: 1, type: 'REGISTERED', agentId: a.agentId, heartbeatIntervalSeconds });
  await done;
}

describe('Agent', () => {
  it('creates its queue, registers (resending until REGISTERED), then heartbeats', async () => {
    const a = makeAgent();
    const firstRegister = nextCall('REGISTER');
    const resent = new Promise<void>((resolve) => a.on('registerSent', (n) => n >= 1 && resolve()));
    await a.start();

    expect(a.queueUrl).toContain(agentQueueName('meso', a.agentId));
    expect(sqs.queue(a.queueUrl).attributes).toEqual({ FifoQueue: 'true', VisibilityTimeout: '30' });
    expect((await readFile(join(dir.path, 'agent-id'), 'utf8')).trim()).toBe(a.agentId);

    const { body, message } = await firstRegister;
    expect(body).toEqual({
      v: 1,
      type: 'REGISTER',
      agentId: a.agentId,
      hostname: 'node-1',
      resources: { cpus: 2, mem: 1024, ports: [[31000, 31010]] },
      attributes: { rack: 'r1' },
      queueUrl: a.queueUrl,
      agentVersion: expect.any(String),
    });
    expect(message.groupId).toBe(a.agentId);
    await resent;

    const heartbeat = nextCall('HEARTBEAT');
    await registered(a);
    expect(a.isRegistered).toBe(true);
    expect(a.heartbeatIntervalMs).toBe(20); // the option is shorter than the 15 s REGISTERED asks
    const hb = await heartbeat;
    expect(hb.body).toEqual({ v: 1, type: 'HEARTBEAT', agentId: a.agentId });
    expect(hb.message.groupId).toBe(a.agentId);
    const dedupIds = sqs.queue(callsUrl).history.map((m) => m.dedupId);
    expect(new Set(dedupIds).size).toBe(dedupIds.length);
  });

  it('keeps its agent id across restarts', async () => {
    const first = await loadOrCreateAgentId(dir.path);
    expect(await loadOrCreateAgentId(dir.path)).toBe(first);
    await writeFile(join(dir.path, 'agent-id'), 'bad id!\n');
    await expect(loadOrCreateAgentId(dir.path)).rejects.toThrow(/not an agent id/);
  });

  it('runs a task through STARTING → RUNNING → FINISHED, one acknowledged update at a time', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);

    const starting = nextStatus('t1', 'TASK_STARTING');
    launch(a, { taskId: 't1', command: { shell: true, value: 'echo out; echo err >&2' } });
    const s1 = await starting;
    expect(s1.body.agentId).toBe(a.agentId);
    expect(s1.body.status).toMatchObject({ frameworkId: FW, agentId: a.agentId, source: 'SOURCE_EXECUTOR' });
    expect(s1.message).toMatchObject({ groupId: a.agentId, dedupId: s1.body.status.uuid });

    const running = nextStatus('t1', 'TASK_RUNNING');
    ack(a, s1.body.status);
    const s2 = await running;
    const finished = nextStatus('t1', 'TASK_FINISHED');
    ack(a, s2.body.status);
    const s3 = await finished;
    expect(s3.body.status).toMatchObject({ exitCode: 0, stdoutTail: 'out\n', stderrTail: 'err\n' });
    ack(a, s3.body.status);
    await once(a, 'command');
    expect(a.pendingStatusUpdates()).toEqual([]);
  });

  it('resends an unacknowledged update with a new deduplication id', async () => {
    const a = makeAgent({ statusRetryIntervalMs: 20 });
    await a.start();
    await registered(a);
    const first = nextStatus('t1', 'TASK_STARTING');
    launch(a, { taskId: 't1', command: { shell: true, value: 'true' } });
    const s = await first;
    const again = await nextStatus('t1', 'TASK_STARTING');
    expect(again.body.status).toEqual(s.body.status);
    expect(again.message.dedupId).toBe(`${s.body.status.uuid}-1`);
  });

  it('ignores a duplicate LAUNCH', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    const started = once(a, 'taskStarted');
    launch(a, { taskId: 'dup', command: { shell: true, value: 'sleep 60' } });
    await started;
    const run = a.task(FW, 'dup');
    const handled = once(a, 'command');
    launch(a, { taskId: 'dup', command: { shell: true, value: 'sleep 60' } });
    await handled;
    expect(a.task(FW, 'dup')).toBe(run);
    expect(a.runningTasks()).toHaveLength(1);
  });

  it('kills a running task to TASK_KILLED', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    const starting = nextStatus('k1', 'TASK_STARTING');
    launch(a, { taskId: 'k1', command: { shell: true, value: 'sleep 60' } });
    const s1 = await starting;
    const running = nextStatus('k1', 'TASK_RUNNING');
    ack(a, s1.body.status);
    const s2 = await running;
    const killed = nextStatus('k1', 'TASK_KILLED');
    command(a, { v: 1, type: 'KILL', frameworkId: FW, taskId: 'k1', gracePeriodSeconds: 30 });
    ack(a, s2.body.status);
    const s3 = await killed;
    expect(s3.body.status.message).toMatch(/^killed with SIGTERM/);
  });

  it('answers a KILL for an unknown task with TASK_DROPPED and never runs a later LAUNCH of it', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    const dropped = nextStatus('ghost', 'TASK_DROPPED');
    command(a, { v: 1, type: 'KILL', frameworkId: FW, taskId: 'ghost' });
    const d1 = await dropped;
    expect(d1.body.status).toMatchObject({ reason: 'REASON_TASK_UNKNOWN', source: 'SOURCE_AGENT' });
    expect(d1.body.status.message).toMatch(/^unknown task/);

    const again = nextStatus('ghost', 'TASK_DROPPED');
    launch(a, { taskId: 'ghost', command: { shell: true, value: 'echo should-not-run' } });
    ack(a, d1.body.status);
    const d2 = await again;
    expect(d2.body.status.reason).toBe('REASON_TASK_KILLED_DURING_LAUNCH');
    expect(a.task(FW, 'ghost')).toBeUndefined();
  });

  it('logs and deletes malformed commands', async () => {
    const a = makeAgent();
    await a.start();
    const rejected: string[] = [];
    a.on('rejected', (e) => rejected.push(e));
    const two = new Promise<void>((resolve) => a.on('rejected', () => rejected.length === 3 && resolve()));
    sqs.put(a.queueUrl, 'not json');
    sqs.put(a.queueUrl, { v: 1, type: 'LAUNCH', frameworkId: FW });
    sqs.put(a.queueUrl, { v: 2, type: 'KILL' });
    await two;
    expect(rejected[0]).toMatch(/not JSON/);
    expect(rejected[1]).toMatch(/invalid LAUNCH/);
    expect(rejected[2]).toMatch(/unsupported protocol version/);
    // Deleted once the batch was handled, never left to be redelivered.
    await sqs.whenEmpty(a.queueUrl);
  });

  it('stop({ killTasks: true }) kills running tasks and stops sending', async () => {
    const a = makeAgent();
    await a.start();
    await registered(a);
    const started = once(a, 'taskStarted');
    launch(a, { taskId: 's1', command: { shell: true, value: "trap '' TERM; sleep 60" } });
    await started;
    const run = a.task(FW, 's1')!;
    await a.stop({ killTasks: true, gracePeriodMs: 0 });
    expect(run.isTerminated).toBe(true);
    expect((await run.terminated).state).toBe('TASK_KILLED');
    expect(a.runningTasks()).toEqual([]);
    const sends = sqs.calls.length;
    await a.stop();
    expect(sqs.calls.length).toBe(sends);
  });
});
