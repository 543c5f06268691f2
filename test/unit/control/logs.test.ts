/**
 * READ_LOGS and LOGS in the registry (lib/control/logs.ts), through the real call dispatch over
 * the in-memory store: who may read, what is forwarded to the agent (nothing, when refused), how
 * much, and where an agent's answer may go.
 */
import { describe, expect, it } from 'vitest';
import { saveAcls } from '../../../lib/control/acl-store.ts';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { logsQueueUrl } from '../../../lib/control/logs.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import { aclsFromJson } from '../../../lib/core/acl.ts';
import { LOGS_LIMITS, LogsReplySchema, logsQueueName } from '../../../lib/protocol/logs.ts';
import { agentQueue, putAgent, putFramework, putTask, record, testControl } from './helpers.ts';

let n = 0;
async function setup(agentStatus: 'ACTIVE' | 'UNREACHABLE' | 'GONE' = 'ACTIVE') {
  const t = testControl();
  const a = `logs-agent-${++n}`;
  await putAgent(t, a, { status: agentStatus, principal: 'node-1' });
  await putFramework(t, 'f1', { principal: 'owner' });
  await putTask(t, 'f1', 't1', a);
  return { t, a };
}

const readLogs = (over: Record<string, unknown> = {}) => ({
  v: 1,
  type: 'READ_LOGS',
  frameworkId: 'f1',
  taskId: 't1',
  requestId: 'req-1',
  stream: 'stdout',
  offset: 0,
  ...over,
});

describe('READ_LOGS: authorized, then forwarded to the task agent', () => {
  it("forwards the framework owner's request with the owner as requester and the length cut to a chunk", async () => {
    const { t, a } = await setup();
    await handleSchedulerCall(t.deps, record(readLogs({ maxBytes: 1e15, offset: 1e15 }), 'owner'));
    const [cmd, ...more] = t.bus.commands(agentQueue(a));
    expect(more).toHaveLength(0);
    expect(cmd).toEqual({
      v: 1,
      type: 'READ_LOGS',
      frameworkId: 'f1',
      taskId: 't1',
      requestId: 'req-1',
      requester: 'owner',
      stream: 'stdout',
      offset: 1e15,
      maxBytes: LOGS_LIMITS.chunkBytes,
    });
    expect(t.counters.get('LogsRequestsCapped')).toBe(1);
  });

  it('refuses another principal: FORBIDDEN on its own logs queue, counted, nothing forwarded', async () => {
    const { t, a } = await setup();
    await handleSchedulerCall(t.deps, record(readLogs(), 'stranger'));
    expect(t.bus.commands(agentQueue(a))).toHaveLength(0);
    const replies = t.bus.to(logsQueueUrl(t.deps.config, 'stranger'));
    expect(replies).toHaveLength(1);
    const reply = LogsReplySchema.parse(replies[0]!.body);
    expect(reply.error?.code).toBe('FORBIDDEN');
    // The refusal does not tell the stranger who owns the framework.
    expect(reply.error?.message).not.toContain('owner');
    expect(t.counters.get('RejectedCalls')).toBe(1);
    // Nothing went to anyone else's queue.
    expect(t.bus.sent).toHaveLength(1);
  });

  it('lets a principal an access_sandboxes rule names read, and not on the permissive default', async () => {
    const { t, a } = await setup();
    // Permissive, with a rule for ops only: the default does not open the sandbox to others.
    await saveAcls(
      t.store,
      aclsFromJson({
        permissive: true,
        access_sandboxes: [{ principals: { values: ['ops'] }, framework_principals: { values: ['owner'] } }],
      }),
      undefined,
      t.now,
    );
    await handleSchedulerCall(t.deps, record(readLogs(), 'someone'));
    expect(t.bus.commands(agentQueue(a))).toHaveLength(0);
    await handleSchedulerCall(t.deps, record(readLogs(), 'ops'));
    expect(t.bus.commands(agentQueue(a))).toMatchObject([{ type: 'READ_LOGS', requester: 'ops' }]);
  });

  it('answers an unknown task or framework with an error and forwards nothing', async () => {
    const { t, a } = await setup();
    await handleSchedulerCall(t.deps, record(readLogs({ taskId: 'nope' }), 'owner'));
    await handleSchedulerCall(t.deps, record(readLogs({ frameworkId: 'f9' }), 'owner'));
    expect(t.bus.commands(agentQueue(a))).toHaveLength(0);
    const codes = t.bus
      .to(logsQueueUrl(t.deps.config, 'owner'))
      .map((s) => LogsReplySchema.parse(s.body).error?.code);
    expect(codes).toEqual(['UNKNOWN_TASK', 'UNKNOWN_FRAMEWORK']);
  });

  it('answers at once when the agent is unreachable or gone', async () => {
    for (const status of ['UNREACHABLE', 'GONE'] as const) {
      const { t, a } = await setup(status);
      await handleSchedulerCall(t.deps, record(readLogs(), 'owner'));
      expect(t.bus.commands(agentQueue(a))).toHaveLength(0);
      const [reply] = t.bus.to(logsQueueUrl(t.deps.config, 'owner'));
      expect(LogsReplySchema.parse(reply!.body).error?.code).toBe(`AGENT_${status}`);
    }
  });

  it('rejects what the schema does not allow: a queue URL, a negative offset, a bad request id', async () => {
    const { t, a } = await setup();
    for (const bad of [
      readLogs({ queueUrl: 'http://sqs.local/000/meso-fw-other.fifo' }),
      readLogs({ offset: -1 }),
      readLogs({ requestId: '../x' }),
      readLogs({ stream: 'meta' }),
    ]) {
      await handleSchedulerCall(t.deps, record(bad, 'owner'));
    }
    expect(t.bus.commands(agentQueue(a))).toHaveLength(0);
    expect(t.counters.get('RejectedCalls')).toBe(4);
  });
});

describe("LOGS: an agent's answer goes only to a reader allowed to see it", () => {
  const logs = (agentId: string, over: Record<string, unknown> = {}) => ({
    v: 1,
    type: 'LOGS',
    agentId,
    frameworkId: 'f1',
    taskId: 't1',
    requestId: 'req-1',
    requester: 'owner',
    stream: 'stdout',
    offset: 0,
    data: Buffer.from('hello\n').toString('base64'),
    size: 6,
    ended: false,
    ...over,
  });

  it("sends the chunk to the requester's own queue, with the task's recorded state", async () => {
    const { t, a } = await setup();
    await handleAgentCall(t.deps, record(logs(a), 'node-1'));
    const url = logsQueueUrl(t.deps.config, 'owner');
    expect(url).toBe(`http://sqs.local/000/${logsQueueName('meso', 'owner')}`);
    const [sent, ...more] = t.bus.to(url);
    expect(more).toHaveLength(0);
    expect(LogsReplySchema.parse(sent!.body)).toMatchObject({
      requestId: 'req-1',
      offset: 0,
      size: 6,
      ended: false,
      state: 'TASK_RUNNING',
      agentId: a,
    });
    expect(Buffer.from(LogsReplySchema.parse(sent!.body).data!, 'base64').toString()).toBe('hello\n');
  });

  it('drops an answer naming a requester that may not read the task (an agent cannot aim chunks at others)', async () => {
    const { t, a } = await setup();
    await handleAgentCall(t.deps, record(logs(a, { requester: 'victim' }), 'node-1'));
    expect(t.bus.sent).toHaveLength(0);
    expect(t.counters.get('RejectedCalls')).toBe(1);
  });

  it("drops an answer about a task that is not the agent's, and one from another identity", async () => {
    const { t, a } = await setup();
    const other = `logs-agent-${++n}`;
    await putAgent(t, other, { principal: 'node-2' });
    await handleAgentCall(t.deps, record(logs(other), 'node-2'));
    await handleAgentCall(t.deps, record(logs(a), 'node-2'));
    expect(t.bus.to(logsQueueUrl(t.deps.config, 'owner'))).toHaveLength(0);
    expect(t.counters.get('RejectedCalls')).toBe(2);
  });

  it('rejects a chunk larger than a chunk may be', async () => {
    const { t, a } = await setup();
    const big = Buffer.alloc(LOGS_LIMITS.chunkBytes + 3).toString('base64');
    await handleAgentCall(t.deps, record(logs(a, { data: big }), 'node-1'));
    expect(t.bus.to(logsQueueUrl(t.deps.config, 'owner'))).toHaveLength(0);
    expect(t.counters.get('RejectedCalls')).toBe(1);
  });
});
