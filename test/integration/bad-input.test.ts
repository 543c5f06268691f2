/**
 * Bad input on each inbound queue gets a clear answer where the sender is known, is counted, is
 * not retried, crashes nothing and changes no state. Bad agent calls are sent with the agent's own
 * key (the identity gateway makes it the agent's SenderId); calls on behalf of someone else are
 * made here by handing the registry handler records with another SenderId (test/integration/
 * impersonation.test.ts sends them through SQS with other keys).
 */
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.ts';
import { rejectedCounterKey } from '../../lib/control/reject.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { AgentCommand } from '../../lib/protocol/index.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { ownGroup, sendRawCall } from '../setup/raw-calls.ts';
import { eventually, type Harness, Recorder, startHarness } from './harness.ts';

describe('bad input', () => {
  let h: Harness;
  let s: MesoScheduler;
  let r: Recorder;
  let agent: Agent;
  const agentErrors: AgentCommand[] = [];

  beforeAll(async () => {
    h = await startHarness({ agents: 1 });
    agent = h.agents[0]!;
    agent.on('command', (c) => c.type === 'ERROR' && agentErrors.push(c));
    s = h.scheduler({ name: 'victim' });
    r = new Recorder(s);
    await s.subscribe();
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'keep',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'sleep 300' },
        },
      ],
    );
    await r.update('keep', 'TASK_RUNNING');
  });
  afterAll(async () => h?.stop());

  const counter = async (queue: 'scheduler-calls' | 'agent-calls', code: string) =>
    Number(
      (await h.controlPlane.deps.store.get<Item>('meta', { key: rejectedCounterKey(queue, code as never) }))
        ?.count ?? 0,
    );

  /**
   * Everything but counters, heartbeat times and the allocator's own work: what a bad call must
   * not change. The allocator keeps offering while a test runs (a refusal filter ends, a cycle
   * follows a nudge), so an agent's outstanding offers — and the version and change stamp their
   * writes bump — are left out; its ledger of tasks, its total and its status are kept.
   */
  async function snapshot() {
    const store = h.controlPlane.deps.store;
    const sorted = (items: Item[]) =>
      items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const strip = (items: Item[]) => sorted(items.map(({ lastSeenAt: _l, ...rest }) => rest));
    const agents = (await store.scan('agents')).map(
      ({ lastSeenAt: _l, offers: _o, version: _v, changedAt: _c, ...rest }) => rest,
    );
    return {
      agents: sorted(agents),
      frameworks: strip(await store.scan('frameworks')),
      tasks: strip(await store.scan('tasks')),
    };
  }

  /** Sent as the framework's principal, or on agent-calls as the agent's. */
  const send = (queue: 'schedulerCalls' | 'agentCalls', body: string, group: string) =>
    sendRawCall(queue === 'agentCalls' ? h.as(h.principalOf(agent)) : h.sqs, h.cluster.queues[queue], body, {
      group,
    });

  /** Calls the registry handler directly with a record from another identity. */
  async function asSomeoneElse(
    queue: 'scheduler-calls' | 'agent-calls',
    body: Record<string, unknown>,
    group = ownGroup(body),
    senderId = 'AIDAINTRUDER',
  ) {
    const event: SQSEvent = {
      Records: [
        {
          messageId: `forged-${Math.random()}`,
          receiptHandle: 'none',
          body: JSON.stringify(body),
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(Date.now()),
            SenderId: senderId,
            ApproximateFirstReceiveTimestamp: String(Date.now()),
            MessageGroupId: group,
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${h.cluster.prefix}-${queue}.fifo`,
          awsRegion: 'us-east-1',
        },
      ],
    };
    return h.controlPlane.handlers.registry(event, {} as Context);
  }

  it('scheduler-calls: malformed JSON is counted, not retried, and changes nothing', async () => {
    const before = await snapshot();
    const n = await counter('scheduler-calls', 'MALFORMED_JSON');
    await send('schedulerCalls', '{"v":1,"type":"ACCEPT",', s.frameworkId);
    await eventually(
      async () => (await counter('scheduler-calls', 'MALFORMED_JSON')) === n + 1,
      'the rejection to be counted',
    );
    expect(await snapshot()).toEqual(before);
  });

  it('scheduler-calls: an unknown type gets an ERROR back to the framework', async () => {
    const before = await snapshot();
    await send(
      'schedulerCalls',
      JSON.stringify({ v: 1, type: 'LAUNCH_ROCKETS', frameworkId: s.frameworkId }),
      s.frameworkId,
    );
    await r.until(() => r.errors.some((e) => /LAUNCH_ROCKETS/.test(e.message)));
    expect(await counter('scheduler-calls', 'UNKNOWN_TYPE')).toBeGreaterThanOrEqual(1);
    expect(await snapshot()).toEqual(before);
  });

  it('scheduler-calls: negative resources get an ERROR and launch nothing', async () => {
    const before = await snapshot();
    const body = {
      v: 1,
      type: 'ACCEPT',
      frameworkId: s.frameworkId,
      offerIds: [`x@${agent.agentId}`],
      operations: [
        {
          type: 'LAUNCH',
          tasks: [
            { taskId: 'neg', agentId: agent.agentId, resources: { cpus: -1 }, command: { value: 'true' } },
          ],
        },
      ],
    };
    await send('schedulerCalls', JSON.stringify(body), s.frameworkId);
    await r.until(() => r.errors.some((e) => /cpus/.test(e.message)));
    expect(await snapshot()).toEqual(before);
  });

  it("scheduler-calls: a call on someone else's framework is rejected, counted and changes nothing", async () => {
    const before = await snapshot();
    const n = await counter('scheduler-calls', 'FORBIDDEN');
    const res = await asSomeoneElse('scheduler-calls', {
      v: 1,
      type: 'KILL',
      frameworkId: s.frameworkId,
      taskId: 'keep',
    });
    expect(res.batchItemFailures).toEqual([]); // not retried
    expect(await counter('scheduler-calls', 'FORBIDDEN')).toBe(n + 1);
    const sub = await asSomeoneElse('scheduler-calls', {
      v: 1,
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: s.frameworkId,
        name: 'thief',
        // The one queue this id may name: the victim's own.
        queueUrl: s.queueUrl!,
      },
    });
    expect(sub.batchItemFailures).toEqual([]);
    expect(await counter('scheduler-calls', 'FORBIDDEN')).toBe(n + 2);
    expect(await snapshot()).toEqual(before);
    expect(agent.runningTasks().map((t) => t.taskId)).toContain('keep');
  });

  it('agent-calls: malformed JSON is counted, not retried, and changes nothing', async () => {
    const before = await snapshot();
    const n = await counter('agent-calls', 'MALFORMED_JSON');
    await send('agentCalls', 'not json at all', agent.agentId);
    await eventually(
      async () => (await counter('agent-calls', 'MALFORMED_JSON')) === n + 1,
      'the rejection to be counted',
    );
    expect(await snapshot()).toEqual(before);
  });

  it('agent-calls: an unknown type gets an ERROR back to the agent', async () => {
    const before = await snapshot();
    await send(
      'agentCalls',
      JSON.stringify({ v: 1, type: 'SELF_DESTRUCT', agentId: agent.agentId }),
      agent.agentId,
    );
    await eventually(
      async () => agentErrors.some((e) => e.type === 'ERROR' && /SELF_DESTRUCT/.test(e.message)),
      'the ERROR at the agent',
    );
    expect(await snapshot()).toEqual(before);
  });

  it("agent-calls: a status update for someone else's agent is rejected, counted and changes nothing", async () => {
    const before = await snapshot();
    const n = await counter('agent-calls', 'FORBIDDEN');
    const res = await asSomeoneElse('agent-calls', {
      v: 1,
      type: 'STATUS_UPDATE',
      agentId: agent.agentId,
      status: {
        taskId: 'keep',
        frameworkId: s.frameworkId,
        state: 'TASK_FINISHED',
        source: 'SOURCE_EXECUTOR',
        uuid: 'forged',
        timestamp: Date.now(),
      },
    });
    expect(res.batchItemFailures).toEqual([]);
    expect(await counter('agent-calls', 'FORBIDDEN')).toBe(n + 1);
    const reg = await asSomeoneElse('agent-calls', {
      v: 1,
      type: 'REGISTER',
      agentId: agent.agentId,
      hostname: 'evil',
      resources: { cpus: 64, mem: 65536 },
      queueUrl: agent.queueUrl,
    });
    expect(reg.batchItemFailures).toEqual([]);
    expect(await counter('agent-calls', 'FORBIDDEN')).toBe(n + 2);
    expect(await snapshot()).toEqual(before);
    expect(r.updates.some((u) => u.taskId === 'keep' && u.state === 'TASK_FINISHED')).toBe(false);
  });

  it('a queue URL outside the deployment is refused', async () => {
    const n = await counter('scheduler-calls', 'INVALID');
    const res = await asSomeoneElse('scheduler-calls', {
      v: 1,
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: 'elsewhere',
        name: 'x',
        queueUrl: 'https://attacker.example/000000000000/not-ours.fifo',
      },
    });
    expect(res.batchItemFailures).toEqual([]);
    expect(await counter('scheduler-calls', 'INVALID')).toBe(n + 1);
    expect(await h.controlPlane.deps.store.get('frameworks', { frameworkId: 'elsewhere' })).toBeUndefined();
  });

  it("SUBSCRIBE of a new id naming another framework's queue is refused: nothing stored, nothing sent there", async () => {
    const before = await snapshot();
    const n = await counter('scheduler-calls', 'INVALID');
    const res = await asSomeoneElse('scheduler-calls', {
      v: 1,
      type: 'SUBSCRIBE',
      framework: { frameworkId: 'evil', name: 'evil', queueUrl: s.queueUrl! },
    });
    expect(res.batchItemFailures).toEqual([]);
    expect(await counter('scheduler-calls', 'INVALID')).toBe(n + 1);
    expect(await snapshot()).toEqual(before);
    // The victim's queue heard nothing: no SUBSCRIBED for `evil`, no ERROR about it.
    expect(r.errors.some((e) => /evil/.test(e.message))).toBe(false);
  });

  it("REGISTER of agent `evil` with the victim agent's queue and task list is refused: no KILL reaches the victim", async () => {
    const before = await snapshot();
    const n = await counter('agent-calls', 'INVALID');
    const commands: AgentCommand[] = [];
    agent.on('command', (c) => commands.push(c));
    const res = await asSomeoneElse('agent-calls', {
      v: 1,
      type: 'REGISTER',
      agentId: 'evil',
      hostname: 'evil',
      resources: { cpus: 1, mem: 64 },
      queueUrl: agent.queueUrl,
      tasks: [{ frameworkId: s.frameworkId, taskId: 'keep', state: 'TASK_RUNNING' }],
    });
    expect(res.batchItemFailures).toEqual([]);
    expect(await counter('agent-calls', 'INVALID')).toBe(n + 1);
    expect(await snapshot()).toEqual(before);
    // Markers sent after it in the groups a KILL (task.keep) and a REGISTERED or ERROR (control)
    // would use: once both arrive, anything sent before them in those groups has arrived too.
    const marker = (group: string, uuid: string) => ({
      body: JSON.stringify({ v: 1, type: 'ACKNOWLEDGE', frameworkId: 'marker', taskId: 'marker', uuid }),
      groupId: group,
      dedupId: `marker-${uuid}`,
    });
    const ids = [`k${Date.now()}`, `c${Date.now()}`];
    await h.controlPlane.deps.bus.send(agent.queueUrl, [
      marker('task.keep', ids[0]!),
      marker('control', ids[1]!),
    ]);
    await eventually(
      async () => ids.every((id) => commands.some((c) => c.type === 'ACKNOWLEDGE' && c.uuid === id)),
      'the markers at the victim agent',
    );
    expect(commands.filter((c) => c.type !== 'ACKNOWLEDGE')).toEqual([]);
    expect(agent.runningTasks().map((t) => t.taskId)).toContain('keep');
  });

  it("a framework's own call sent in another framework's message group is rejected, counted, not retried, and changes nothing", async () => {
    const attacker = h.scheduler({ name: 'attacker' });
    const ra = new Recorder(attacker);
    await attacker.subscribe();
    await ra.takeOffer(); // the allocator's cycle for it is over
    const before = await snapshot();
    const n = await counter('scheduler-calls', 'WRONG_GROUP');
    // Its own framework, its own identity (the emulator's one SenderId), the victim's group.
    const senderId = (await h.controlPlane.deps.store.get<Item>('frameworks', {
      frameworkId: attacker.frameworkId,
    }))!.principal as string;
    const res = await asSomeoneElse(
      'scheduler-calls',
      { v: 1, type: 'KILL', frameworkId: attacker.frameworkId, taskId: 'keep' },
      s.frameworkId,
      senderId,
    );
    expect(res.batchItemFailures).toEqual([]);
    expect(await counter('scheduler-calls', 'WRONG_GROUP')).toBe(n + 1);
    expect(await snapshot()).toEqual(before);
    await ra.until(() => ra.errors.some((e) => /message group .* is not framework/.test(e.message)));
    const agentBefore = await counter('agent-calls', 'WRONG_GROUP');
    const hb = await asSomeoneElse(
      'agent-calls',
      { v: 1, type: 'HEARTBEAT', agentId: 'evil' },
      agent.agentId,
    );
    expect(hb.batchItemFailures).toEqual([]);
    expect(await counter('agent-calls', 'WRONG_GROUP')).toBe(agentBefore + 1);
    expect(await snapshot()).toEqual(before);
    await attacker.close({ teardown: true });
  });

  it('ACKNOWLEDGE naming an agent that does not hold the task: UNKNOWN_TASK, and that agent hears nothing', async () => {
    const other = await h.startAgent();
    const heard: AgentCommand[] = [];
    other.on('command', (c) => heard.push(c));
    const before = await snapshot();
    const n = await counter('scheduler-calls', 'UNKNOWN_TASK');
    const ack = {
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: s.frameworkId,
      agentId: other.agentId,
      taskId: 'keep',
      uuid: 'peek',
    };
    await send('schedulerCalls', JSON.stringify(ack), `${s.frameworkId}:ack:keep`);
    await r.until(() => r.errors.some((e) => /task keep is not on agent/.test(e.message)));
    expect(await counter('scheduler-calls', 'UNKNOWN_TASK')).toBe(n + 1);
    // A marker after it in the group the ACKNOWLEDGE would have used: once it arrives, nothing came before it.
    await h.controlPlane.deps.bus.send(other.queueUrl, [
      {
        body: JSON.stringify({
          v: 1,
          type: 'ACKNOWLEDGE',
          frameworkId: 'marker',
          taskId: 'keep',
          uuid: 'marker',
        }),
        groupId: 'task.keep',
        dedupId: `marker-${Date.now()}`,
      },
    ]);
    await eventually(
      async () => heard.some((c) => c.type === 'ACKNOWLEDGE' && c.uuid === 'marker'),
      'the marker',
    );
    expect(heard.filter((c) => c.type === 'ACKNOWLEDGE' && c.frameworkId === s.frameworkId)).toEqual([]);
    // Tasks and frameworks as they were (the new agent's registration moves offers meanwhile).
    const { tasks, frameworks } = await snapshot();
    expect({ tasks, frameworks }).toEqual({ tasks: before.tasks, frameworks: before.frameworks });
  });
});
