/**
 * An agent's ledger as DynamoDB Local stores it (lib/adapters/agent-item.ts): compact entries by
 * framework, read back in the domain's shape, released one path at a time — and a record written
 * before that layout (entries as maps under their keys) still read and released, as a cluster
 * upgraded in place has them.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoClient, DynamoStore } from '../../lib/adapters/dynamo-store.ts';
import { releaseTask } from '../../lib/control/records/agents.ts';
import { ledgerKey } from '../../lib/core/ledger.ts';
import type { AgentRecord, AgentTaskRecord } from '../../lib/core/model.ts';
import { resources } from '../../lib/core/resources.ts';
import type { Item } from '../../lib/ports/store.ts';
import { createTestCluster, type TestCluster, testAwsConfig } from '../setup/cluster.ts';

const FW = '3f0c2a8e-6b1d-4c57-9a0e-5d2f7b8c9e01';
const OTHER = '9d1e0f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a';
const entry = (frameworkId: string, taskId: string): AgentTaskRecord => ({
  frameworkId,
  taskId,
  role: '*',
  resources: resources({ cpus: 100, mem: 32000 }),
});
const agent = (agentId: string, tasks: Record<string, AgentTaskRecord>): AgentRecord & Item => ({
  agentId,
  principal: 'AIDAEXAMPLE',
  hostname: 'node-1',
  queueUrl: 'https://sqs.example/agent.fifo',
  total: resources({ cpus: 8000, mem: 16384000 }),
  attributes: {},
  status: 'ACTIVE',
  offers: {},
  tasks,
  registeredAt: 1,
  lastSeenAt: 1,
  shard: 0,
  version: 0,
});
const ledgerOf = (n: number, fw = FW) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [ledgerKey(fw, `b${i}`), entry(fw, `b${i}`)]));

describe('the agent ledger in DynamoDB', () => {
  let cluster: TestCluster;
  let doc: ReturnType<typeof createDynamoClient>;
  let store: DynamoStore;
  let table: string;
  beforeAll(async () => {
    cluster = await createTestCluster();
    doc = createDynamoClient(testAwsConfig());
    store = new DynamoStore(doc, cluster.config.tables);
    table = cluster.config.tables.agents;
  });
  afterAll(async () => {
    doc?.destroy();
    await cluster?.destroy();
  });
  const raw = async (agentId: string) =>
    (await doc.send(new GetCommand({ TableName: table, Key: { agentId } }))).Item!;

  it('is stored compact by framework, read back as written, and released entry by entry', async () => {
    const tasks = { ...ledgerOf(3), [ledgerKey(OTHER, 'b0')]: entry(OTHER, 'b0') };
    await store.write([{ kind: 'put', table: 'agents', item: agent('a1', tasks), expect: 'absent' }]);
    const stored = await raw('a1');
    expect(Object.keys(stored.ledger).sort()).toEqual([FW, OTHER].sort());
    expect(typeof stored.ledger[FW].b1).toBe('string');
    expect(stored.tasks).toEqual({});
    expect((await store.get<AgentRecord & Item>('agents', { agentId: 'a1' }))!.tasks).toEqual(tasks);

    expect(await releaseTask(store, 'a1', OTHER, 'b0')).toBe(true);
    const after = (await store.get<AgentRecord & Item>('agents', { agentId: 'a1' }))!;
    expect(Object.keys(after.tasks).sort()).toEqual(Object.keys(ledgerOf(3)).sort());
    expect(after.version).toBe(2);
    // The same framework's other task of that id, and a second release, leave the rest alone.
    expect(await releaseTask(store, 'a1', OTHER, 'b0')).toBe(false);
    expect((await store.get<AgentRecord & Item>('agents', { agentId: 'a1' }))!.tasks).toEqual(ledgerOf(3));
  });

  it('a record written before the layout is read and released, and a full write moves it over', async () => {
    const old = {
      ...agent('a2', {}),
      tasks: {
        [ledgerKey(FW, 'b0')]: entry(FW, 'b0'),
        [ledgerKey(FW, 'b1')]: entry(FW, 'b1'),
        bare: { frameworkId: OTHER, role: '*', resources: resources({ cpus: 1000 }) },
      },
      version: 1,
    };
    await doc.send(new PutCommand({ TableName: table, Item: old }));
    expect(await store.get('agents', { agentId: 'a2' })).toEqual(old);

    expect(await releaseTask(store, 'a2', FW, 'b0')).toBe(true);
    expect(await releaseTask(store, 'a2', OTHER, 'bare')).toBe(true);
    const left = (await store.get<AgentRecord & Item>('agents', { agentId: 'a2' }))!;
    expect(left.tasks).toEqual({ [ledgerKey(FW, 'b1')]: entry(FW, 'b1') });

    await store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: 'a2' },
        set: { tasks: left.tasks },
        expect: left.version,
      },
    ]);
    const moved = await raw('a2');
    expect(moved.tasks).toEqual({});
    expect(Object.keys(moved.ledger[FW])).toEqual(['b1']);
    expect(await releaseTask(store, 'a2', FW, 'b1')).toBe(true);
    expect((await store.get<AgentRecord & Item>('agents', { agentId: 'a2' }))!.tasks).toEqual({});
  });

  it('an agent with 80 running tasks is a 2-unit write to DynamoDB, where the map form was 13', async () => {
    const units = async (Item: Item) =>
      (await doc.send(new PutCommand({ TableName: table, Item, ReturnConsumedCapacity: 'TOTAL' })))
        .ConsumedCapacity!.CapacityUnits;
    await store.write([{ kind: 'put', table: 'agents', item: agent('a3', ledgerOf(80)), expect: 'absent' }]);
    expect(await units(await raw('a3'))).toBe(2);
    expect(await units({ ...agent('a4', ledgerOf(80)), version: 1 })).toBe(13);
  });
});
