/**
 * Ended tasks do not stay forever: a task row gets `purgeAt` (the tasks table's TTL attribute)
 * when its task ends — the deployment's retention after it ended — and never while it runs.
 * Through the real control plane, a real agent and DynamoDB Local's table with TTL on.
 */
import { DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoClient } from '../../lib/adapters/dynamo-store.ts';
import type { TaskRecord } from '../../lib/core/model.ts';
import { TABLES } from '../../lib/definition/tables-queues.ts';
import type { Item } from '../../lib/ports/store.ts';
import { type Harness, startHarness } from './harness.ts';

const RETENTION = 7_200;

describe('task retention', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 1, control: { taskRetentionSeconds: RETENTION } });
  });
  afterAll(async () => h?.stop());

  const row = (frameworkId: string, taskId: string) =>
    h.controlPlane.deps.store.get<TaskRecord & Item>('tasks', { frameworkId, taskId });

  it("the tasks table's TTL attribute is the one rows are given", async () => {
    const ddb = createDynamoClient(h.cluster.aws);
    try {
      const ttl = await ddb.send(new DescribeTimeToLiveCommand({ TableName: h.cluster.tables.tasks }));
      expect(ttl.TimeToLiveDescription?.AttributeName).toBe('purgeAt');
      expect(TABLES.tasks.ttlAttribute).toBe('purgeAt');
    } finally {
      ddb.destroy();
    }
  });

  it('a running task has no purgeAt; once it ends (finished or killed) it is purged the retention later', async () => {
    const { s, r } = await h.framework({ name: 'retention' });
    const offer = await r.takeOffer();
    const before = Math.floor(Date.now() / 1000);
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'done',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'echo done' },
        },
        {
          taskId: 'sleeper',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'sleep 300' },
        },
      ],
    );
    await r.update('sleeper', 'TASK_RUNNING');
    const running = (await row(s.frameworkId, 'sleeper'))!;
    expect(running.state).toBe('TASK_RUNNING');
    expect(running.purgeAt).toBeUndefined();

    expect((await r.terminal('done')).state).toBe('TASK_FINISHED');
    await s.kill('sleeper');
    expect((await r.terminal('sleeper')).state).toBe('TASK_KILLED');
    const after = Math.ceil(Date.now() / 1000);
    for (const taskId of ['done', 'sleeper']) {
      const ended = (await row(s.frameworkId, taskId))!;
      expect(ended.purgeAt).toBe(Math.ceil(ended.updatedAt / 1000) + RETENTION);
      expect(ended.purgeAt).toBeGreaterThanOrEqual(before + RETENTION);
      expect(ended.purgeAt).toBeLessThanOrEqual(after + RETENTION);
    }
    await s.teardown();
  });
});
