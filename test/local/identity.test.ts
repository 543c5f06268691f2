/**
 * Identity on the local stack, for real: the control plane (its handlers, behind the local
 * event-source runner) receives through the identity gateway, so two access keys are two
 * principals. A framework subscribes with one key; another key then tries to tear it down and to
 * take its framework id over. With the emulator's shared SenderId both attacks succeeded; here
 * each is refused as FORBIDDEN and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/aws-config.ts';
import { rejectedCounterKey } from '../../lib/control/reject.ts';
import type { FrameworkRecord } from '../../lib/core/model.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../../lib/local/control-plane.ts';
import { type SqsGateway, startSqsGateway } from '../../lib/local/sqs-gateway.ts';
import type { Item } from '../../lib/ports/store.ts';
import { eventually } from '../integration/harness.ts';
import { createTestCluster, sqsEmulatorEndpoint, type TestCluster } from '../setup/cluster.ts';

let cluster: TestCluster;
let gateway: SqsGateway;
let cp: LocalControlPlane;
const clients: SQSClient[] = [];

/** A client of the gateway signing with `accessKeyId` (the local secret: each key id is its own identity). */
const as = (accessKeyId: string) => {
  const c = new SQSClient({
    region: cluster.config.aws.region,
    endpoint: gateway.endpoint,
    credentials: { accessKeyId, secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey },
    useQueueUrlAsEndpoint: false,
  });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  cluster = await createTestCluster();
  gateway = await startSqsGateway({ upstream: sqsEmulatorEndpoint() });
  cp = startLocalControlPlane({
    cluster: { ...cluster.config, aws: { ...cluster.config.aws, sqsEndpoint: gateway.endpoint } },
    sweepIntervalMs: 0,
  });
});
afterAll(async () => {
  await cp?.stop();
  for (const c of clients) c.destroy();
  await gateway?.stop();
  await cluster?.destroy();
});

const call = (
  client: SQSClient,
  group: string,
  body: object,
  queue: 'schedulerCalls' | 'agentCalls' = 'schedulerCalls',
) =>
  client.send(
    new SendMessageCommand({
      QueueUrl: cluster.config.queues[queue],
      MessageBody: JSON.stringify({ v: 1, ...body }),
      MessageGroupId: group,
      MessageDeduplicationId: randomUUID(),
    }),
  );
const forbidden = async (queue: 'scheduler-calls' | 'agent-calls' = 'scheduler-calls') =>
  Number(
    (await cp.deps.store.get<Item>('meta', { key: rejectedCounterKey(queue, 'FORBIDDEN') }))?.count ?? 0,
  );
const framework = (id: string) =>
  cp.deps.store.get<FrameworkRecord & Item>('frameworks', { frameworkId: id });

describe('each access key its own identity, through the real handlers', () => {
  it('another key can neither tear down a framework nor take over its id', async () => {
    const victim = as('victim-key');
    const attacker = as('attacker-key');
    const id = `v${randomUUID().slice(0, 8)}`;
    // The queue is created on the emulator itself, so its URL is the deployment's own form.
    const direct = cluster.sqs;
    const queueUrl = (
      await direct.send(
        new CreateQueueCommand({
          QueueName: `${cluster.config.prefix}-fw-${id}.fifo`,
          Attributes: { FifoQueue: 'true' },
        }),
      )
    ).QueueUrl!;
    await call(victim, id, { type: 'SUBSCRIBE', framework: { frameworkId: id, name: 'victim', queueUrl } });
    await eventually(async () => (await framework(id))?.status === 'ACTIVE', 'the SUBSCRIBE to be handled');
    expect((await framework(id))!.principal).toBe('victim-key');
    const received = await direct.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 5 }));
    expect(received.Messages?.map((m) => JSON.parse(m.Body!).type)).toContain('SUBSCRIBED');

    const before = await forbidden();
    await call(attacker, id, { type: 'TEARDOWN', frameworkId: id });
    await eventually(async () => (await forbidden()) === before + 1, 'the TEARDOWN to be refused');
    // The only queue a SUBSCRIBE for this id may name is the one derived from it: the victim's.
    await call(attacker, id, {
      type: 'SUBSCRIBE',
      framework: { frameworkId: id, name: 'thief', queueUrl },
    });
    await eventually(async () => (await forbidden()) === before + 2, 'the SUBSCRIBE to be refused');
    const after = (await framework(id))!;
    expect(after).toMatchObject({ status: 'ACTIVE', principal: 'victim-key', queueUrl, name: 'victim' });
  });

  it("another node's key can neither take over an agent id nor forge its task's status", async () => {
    const node = as('node-a-key');
    const intruder = as('node-b-key');
    const agentId = `a${randomUUID().slice(0, 8)}`;
    const queueUrl = (
      await cluster.sqs.send(
        new CreateQueueCommand({
          QueueName: `${cluster.config.prefix}-agent-${agentId}.fifo`,
          Attributes: { FifoQueue: 'true' },
        }),
      )
    ).QueueUrl!;
    const register = {
      type: 'REGISTER',
      agentId,
      hostname: 'node-a',
      resources: { cpus: 1, mem: 256 },
      queueUrl,
    };
    await call(node, agentId, register, 'agentCalls');
    const agent = () => cp.deps.store.get<Item>('agents', { agentId });
    await eventually(async () => (await agent())?.status === 'ACTIVE', 'the REGISTER to be handled');
    const registered = (await agent())!;
    expect(registered.principal).toBe('node-a-key');

    const before = await forbidden('agent-calls');
    await call(
      intruder,
      agentId,
      { ...register, hostname: 'node-b', resources: { cpus: 64, mem: 65536 } },
      'agentCalls',
    );
    await eventually(
      async () => (await forbidden('agent-calls')) === before + 1,
      'the REGISTER to be refused',
    );
    const status = {
      taskId: 'nope',
      frameworkId: 'nope',
      agentId,
      state: 'TASK_FINISHED',
      source: 'SOURCE_EXECUTOR',
      uuid: randomUUID(),
      timestamp: Date.now(),
    };
    await call(intruder, `${agentId}:nope`, { type: 'STATUS_UPDATE', agentId, status }, 'agentCalls');
    await eventually(
      async () => (await forbidden('agent-calls')) === before + 2,
      'the STATUS_UPDATE to be refused',
    );
    expect(await agent()).toMatchObject({
      principal: 'node-a-key',
      hostname: 'node-a',
      total: registered.total,
    });
  });
});
