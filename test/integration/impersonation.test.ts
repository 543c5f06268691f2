/**
 * Impersonation, tried for real: a victim framework runs a task on a real agent; an attacker with
 * an access key of its own (so its own SenderId, through the run's identity gateway) sends the
 * calls that, with one SenderId for everybody, all succeeded — KILL and TEARDOWN of the victim's
 * task and framework, a TASK_FINISHED forged in the real agent's name, SUBSCRIBE with the victim's
 * framework id and the attacker's queue, REGISTER of the real agent's id with the attacker's
 * queue. Each must be refused as FORBIDDEN, be counted, reach nothing of the victim's, and leave
 * the registry and the running task as they were.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.ts';
import { type RejectCode, rejectedCounterKey } from '../../lib/control/reject.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { AgentCommand } from '../../lib/protocol/index.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { eventually, type Harness, Recorder, startHarness } from './harness.ts';

describe('impersonation with another access key', () => {
  let h: Harness;
  let victim: MesoScheduler;
  let r: Recorder;
  let agent: Agent;
  let attacker: SQSClient;
  const commands: AgentCommand[] = [];

  beforeAll(async () => {
    h = await startHarness({ agents: 1 });
    agent = h.agents[0]!;
    agent.on('command', (c) => commands.push(c));
    attacker = h.as('mesoattacker');
    victim = h.scheduler({ name: 'victim' });
    r = new Recorder(victim);
    await victim.subscribe();
    const offer = await r.takeOffer();
    await victim.accept(
      [offer.offerId],
      [
        {
          taskId: 'keep',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'sleep 300' },
        },
      ],
      // What is left is offered again at once (for the launch after the REGISTER attack).
      { refuseSeconds: 0 },
    );
    await r.update('keep', 'TASK_RUNNING');
  });
  afterAll(async () => h?.stop());

  const store = () => h.controlPlane.deps.store;
  const rejected = async (queue: 'scheduler-calls' | 'agent-calls', code: RejectCode) =>
    Number((await store().get<Item>('meta', { key: rejectedCounterKey(queue, code) }))?.count ?? 0);
  const task = () => store().get<Item>('tasks', { frameworkId: victim.frameworkId, taskId: 'keep' });
  const framework = () => store().get<Item>('frameworks', { frameworkId: victim.frameworkId });
  const agentRecord = () => store().get<Item>('agents', { agentId: agent.agentId });

  /**
   * What an attack must not change: the victim's framework (heartbeat times aside), its task, and
   * who the agent is (its offers come and go with the allocator meanwhile).
   */
  async function snapshot() {
    const { lastSeenAt: _f, ...fw } = (await framework())!;
    const { principal, hostname, queueUrl, total, tasks, status } = (await agentRecord())!;
    return { fw, ag: { principal, hostname, queueUrl, total, tasks, status }, task: await task() };
  }

  const send = (queue: 'schedulerCalls' | 'agentCalls', body: object, group: string) =>
    attacker.send(
      new SendMessageCommand({
        QueueUrl: h.cluster.queues[queue],
        MessageBody: JSON.stringify({ v: 1, ...body }),
        MessageGroupId: group,
        MessageDeduplicationId: randomUUID(),
      }),
    );

  /**
   * Sends `body` as the attacker and waits until the control plane has refused it with one of
   * `codes` (FORBIDDEN: the id belongs to another identity; INVALID: a queue URL that is not the
   * id's own, which a SUBSCRIBE or REGISTER naming the attacker's queue may be refused for first;
   * WRONG_GROUP: a call sent in the attacker's own group naming the victim's id).
   */
  async function refused(
    queue: 'schedulerCalls' | 'agentCalls',
    body: { type: string; [k: string]: unknown },
    group: string,
    codes: readonly RejectCode[] = ['FORBIDDEN'],
  ) {
    const counter = queue === 'schedulerCalls' ? 'scheduler-calls' : 'agent-calls';
    const count = async () =>
      (await Promise.all(codes.map((c) => rejected(counter, c)))).reduce((a, b) => a + b);
    const n = await count();
    await send(queue, body, group);
    await eventually(async () => (await count()) === n + 1, `the ${body.type} to be refused`);
  }

  /** The victim's framework still hears from Meso and its task still runs: a RECONCILE answers TASK_RUNNING. */
  async function victimUnharmed() {
    const seen = r.updates.length;
    await victim.reconcile([{ taskId: 'keep', agentId: agent.agentId }]);
    await r.until(() => r.updates.slice(seen).some((u) => u.taskId === 'keep'));
    expect(r.updates.slice(seen).find((u) => u.taskId === 'keep')!.state).toBe('TASK_RUNNING');
    expect(r.updates.filter((u) => u.taskId === 'keep').map((u) => u.state)).not.toContain('TASK_KILLED');
    expect(r.errors).toEqual([]);
    expect(agent.runningTasks().map((t) => t.taskId)).toContain('keep');
  }

  /**
   * Launches a task on the agent into a live offer and waits until it runs; returns its id. The
   * offer may be taken back before the ACCEPT lands (the earlier attacks can outlast its 30 s):
   * the task is then dropped with REASON_INVALID_OFFERS, and the next offer is taken, under a new id.
   */
  async function launchOnAgent(name: string): Promise<string> {
    const live = () =>
      r.offers.findLastIndex((o) => o.agentId === agent.agentId && !r.rescinds.includes(o.offerId));
    for (let attempt = 1; ; attempt++) {
      const taskId = attempt === 1 ? name : `${name}-${attempt}`;
      await r.until(() => live() >= 0);
      const offer = r.offers.splice(live(), 1)[0]!;
      const seen = r.updates.length;
      await victim.accept(
        [offer.offerId],
        [
          {
            taskId,
            agentId: agent.agentId,
            resources: { cpus: 0.1, mem: 32 },
            command: { value: 'sleep 300' },
          },
        ],
      );
      const first = () => r.updates.slice(seen).find((u) => u.taskId === taskId);
      await r.until(() => first() !== undefined);
      if (first()!.state === 'TASK_RUNNING') return taskId;
      expect(first()).toMatchObject({ state: 'TASK_DROPPED', reason: 'REASON_INVALID_OFFERS' });
      if (attempt >= 3)
        throw new Error(`three offers on ${agent.agentId} were taken back before their ACCEPT`);
    }
  }

  /** A FIFO queue of the attacker's own, created with its own key. */
  async function attackerQueue(name: string): Promise<string> {
    return (
      await attacker.send(
        new CreateQueueCommand({
          QueueName: `${h.cluster.prefix}-${name}.fifo`,
          Attributes: { FifoQueue: 'true' },
        }),
      )
    ).QueueUrl!;
  }

  /** Everything in `queueUrl` up to and including the first message `last` matches. */
  async function drainUntil(queueUrl: string, last: (m: { type: string }) => boolean) {
    const got: { type: string; [k: string]: unknown }[] = [];
    await eventually(async () => {
      const res = await attacker.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      for (const m of res.Messages ?? []) {
        got.push(JSON.parse(m.Body!));
        // Deleted as read: an undeleted message would hold back the rest of its FIFO group.
        await attacker.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }),
        );
      }
      return got.some(last);
    }, 'the attacker’s own answer');
    return got;
  }

  it('each principal signs with its own key: the framework and the agent are bound to different SenderIds', async () => {
    expect((await framework())!.principal).toBe(process.env.AWS_ACCESS_KEY_ID);
    expect((await agentRecord())!.principal).toBe(h.principalOf(agent));
    expect(h.principalOf(agent)).not.toBe(process.env.AWS_ACCESS_KEY_ID);
  });

  it("KILL of another framework's task is refused and the task keeps running", async () => {
    const before = await snapshot();
    const killsBefore = commands.filter((c) => c.type === 'KILL').length;
    await refused(
      'schedulerCalls',
      { type: 'KILL', frameworkId: victim.frameworkId, taskId: 'keep', agentId: agent.agentId },
      victim.frameworkId,
    );
    expect(await snapshot()).toEqual(before);
    expect(commands.filter((c) => c.type === 'KILL').length).toBe(killsBefore);
    await victimUnharmed();
  });

  it('TEARDOWN of another framework is refused: it stays ACTIVE and its task keeps running', async () => {
    const before = await snapshot();
    await refused(
      'schedulerCalls',
      { type: 'TEARDOWN', frameworkId: victim.frameworkId },
      victim.frameworkId,
    );
    expect(await snapshot()).toEqual(before);
    expect((await framework())!.status).toBe('ACTIVE');
    await victimUnharmed();
  });

  it("a TASK_FINISHED forged in the real agent's name is refused: the registry still has the task running", async () => {
    const before = await snapshot();
    await refused(
      'agentCalls',
      {
        type: 'STATUS_UPDATE',
        agentId: agent.agentId,
        status: {
          taskId: 'keep',
          frameworkId: victim.frameworkId,
          agentId: agent.agentId,
          state: 'TASK_FINISHED',
          source: 'SOURCE_EXECUTOR',
          uuid: randomUUID(),
          timestamp: Date.now(),
          exitCode: 0,
        },
      },
      agent.agentId,
    );
    expect(await snapshot()).toEqual(before);
    expect((await task())!.state).toBe('TASK_RUNNING');
    expect(r.updates.filter((u) => u.taskId === 'keep').map((u) => u.state)).not.toContain('TASK_FINISHED');
    await victimUnharmed();
  });

  it("SUBSCRIBE with the victim's framework id from another key and queue gets the attacker nothing", async () => {
    const before = await snapshot();
    // The attacker's queue is its own framework's, named after that framework's id.
    const own = `thief${randomUUID().slice(0, 8)}`;
    const queueUrl = await attackerQueue(`fw-${own}`);
    const group = own;
    await refused(
      'schedulerCalls',
      {
        type: 'SUBSCRIBE',
        framework: { frameworkId: victim.frameworkId, name: 'thief', roles: ['*'], queueUrl },
      },
      group,
      // In its own group the SUBSCRIBE names an id that group is not for: WRONG_GROUP comes first.
      ['FORBIDDEN', 'INVALID', 'WRONG_GROUP'],
    );
    // Then, in the same group (so handled after it), the attacker subscribes a framework of its
    // own with the same queue: its SUBSCRIBED marks the end of whatever the attack brought.
    await send(
      'schedulerCalls',
      { type: 'SUBSCRIBE', framework: { frameworkId: own, name: 'thief', queueUrl } },
      group,
    );
    const got = await drainUntil(queueUrl, (m) => m.type === 'SUBSCRIBED');
    const subscribed = got.filter((m) => m.type === 'SUBSCRIBED');
    expect(subscribed.map((m) => m.frameworkId)).toEqual([own]);
    // No task state of the victim's, nothing but the refusal.
    expect(got.filter((m) => m.type === 'UPDATE')).toEqual([]);
    for (const m of got.filter((m) => m.type === 'ERROR')) expect(['FORBIDDEN', 'INVALID']).toContain(m.code);
    // The victim was not failed over: same principal and queue, ACTIVE, told nothing.
    expect(await snapshot()).toEqual(before);
    expect(r.errors).toEqual([]);
    await victimUnharmed();
    // The attacker's own framework leaves: by DRF it would hold the agent's free resources (it has
    // none yet), and the victim launches on them next.
    await send('schedulerCalls', { type: 'TEARDOWN', frameworkId: own }, group);
    await eventually(
      async () => (await store().get<Item>('frameworks', { frameworkId: own }))?.status === 'TORN_DOWN',
      "the attacker's own framework to be torn down",
    );
  });

  it("REGISTER of the real agent's id from another key and queue is refused: LAUNCH and KILL still go to the real agent", async () => {
    const before = await snapshot();
    const evil = `evil${randomUUID().slice(0, 8)}`;
    const queueUrl = await attackerQueue(`agent-${evil}`);
    await refused(
      'agentCalls',
      {
        type: 'REGISTER',
        agentId: agent.agentId,
        hostname: 'evil',
        resources: { cpus: 64, mem: 65536 },
        queueUrl,
        tasks: [],
      },
      agent.agentId,
      ['FORBIDDEN', 'INVALID'],
    );
    expect(await snapshot()).toEqual(before);

    // The victim launches and kills another task on the agent: the real agent gets both.
    const after = await launchOnAgent('after');
    await victim.kill(after, agent.agentId);
    await r.update(after, 'TASK_KILLED');
    expect(commands.some((c) => c.type === 'LAUNCH' && c.task.taskId === after)).toBe(true);
    expect(commands.some((c) => c.type === 'KILL' && c.taskId === after)).toBe(true);

    // Then the attacker registers an agent of its own with that queue; its REGISTERED marks the
    // end of whatever reached the queue, and none of it is a LAUNCH or a KILL.
    await send(
      'agentCalls',
      {
        type: 'REGISTER',
        agentId: evil,
        hostname: 'evil',
        resources: { cpus: 1, mem: 64 },
        queueUrl,
        tasks: [],
      },
      evil,
    );
    const got = await drainUntil(queueUrl, (m) => m.type === 'REGISTERED');
    expect(got.filter((m) => m.type === 'LAUNCH' || m.type === 'KILL')).toEqual([]);
    expect(got.filter((m) => m.type === 'REGISTERED').map((m) => m.agentId)).toEqual([evil]);
    expect(await agentRecord()).toMatchObject({
      principal: h.principalOf(agent),
      queueUrl: before.ag.queueUrl,
      hostname: before.ag.hostname,
    });
    await victimUnharmed();
  });
});
