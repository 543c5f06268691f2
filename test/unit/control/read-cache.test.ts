import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../lib/adapters/memory-store.ts';
import { ACL_CACHE_MS, cachedAcls, saveAcls } from '../../../lib/control/acl-store.ts';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { aclRefusal } from '../../../lib/control/authorize.ts';
import { ReadCache, uncached } from '../../../lib/control/read-cache.ts';
import { updateRecord } from '../../../lib/control/records/transact.ts';
import { CLOSED_ACLS, OPEN_ACLS } from '../../../lib/core/acl.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import type { TableName } from '../../../lib/definition/tables-queues.ts';
import type { Item, Store } from '../../../lib/ports/store.ts';
import { agent, putAgent, putFramework, putTask, record, task, testControl } from './helpers.ts';

/** A MemoryStore that counts its gets. */
function countingStore() {
  const store = new MemoryStore();
  const gets: string[] = [];
  const counted: Store = {
    get: (t, k) => {
      gets.push(`${t}:${JSON.stringify(k)}`);
      return store.get(t, k);
    },
    query: (t, pk) => store.query(t, pk),
    scan: (t) => store.scan(t),
    write: (ops) => store.write(ops),
    increment: (k, by) => store.increment(k, by),
  };
  return { store, counted, gets };
}

const put = (s: Store, table: TableName, item: Item) =>
  s.write([{ kind: 'put', table, item, expect: 'any' }]);

describe('ReadCache: each item read once per invocation', () => {
  it('serves repeated and concurrent reads of an item from one store read, each a copy of its own', async () => {
    const { store, counted, gets } = countingStore();
    await put(store, 'agents', { agentId: 'a1', tasks: { t1: 1 }, version: 1 });
    const cache = new ReadCache(counted);
    const [x, y] = await Promise.all([
      cache.get<Item>('agents', { agentId: 'a1' }),
      cache.get<Item>('agents', { agentId: 'a1' }),
    ]);
    const z = await cache.get<Item>('agents', { agentId: 'a1' });
    expect(gets).toHaveLength(1);
    expect(cache.hits).toBe(2);
    (x!.tasks as Record<string, number>).t2 = 2;
    expect(y!.tasks).toEqual({ t1: 1 });
    expect(z!.tasks).toEqual({ t1: 1 });
    // Items are keyed by their table's key: another key, or another table, is another read.
    await cache.get('agents', { agentId: 'a2' });
    await cache.get('frameworks', { frameworkId: 'a1' });
    expect(gets).toHaveLength(3);
  });

  it('drops an item the invocation writes: the next read sees the write', async () => {
    const { store, counted, gets } = countingStore();
    await put(store, 'tasks', { frameworkId: 'f', taskId: 't', state: 'A', version: 1 });
    const cache = new ReadCache(counted);
    expect((await cache.get<Item>('tasks', { frameworkId: 'f', taskId: 't' }))!.state).toBe('A');
    await cache.write([
      {
        kind: 'patch',
        table: 'tasks',
        key: { frameworkId: 'f', taskId: 't' },
        set: { state: 'B' },
        expect: 1,
      },
    ]);
    expect((await cache.get<Item>('tasks', { frameworkId: 'f', taskId: 't' }))!.state).toBe('B');
    expect(gets).toHaveLength(2);
  });

  it('a read begun while a write is in flight is not kept', async () => {
    const { store } = countingStore();
    await put(store, 'agents', { agentId: 'a', n: 1, version: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slowWrites: Store = {
      ...store,
      get: (t, k) => store.get(t, k),
      query: (t, pk) => store.query(t, pk),
      scan: (t) => store.scan(t),
      increment: (k, by) => store.increment(k, by),
      write: async (ops) => {
        await gate;
        await store.write(ops);
      },
    };
    const cache = new ReadCache(slowWrites);
    const writing = cache.write([
      { kind: 'patch', table: 'agents', key: { agentId: 'a' }, set: { n: 2 }, expect: 1 },
    ]);
    expect((await cache.get<Item>('agents', { agentId: 'a' }))!.n).toBe(1); // before the write lands
    release();
    await writing;
    expect((await cache.get<Item>('agents', { agentId: 'a' }))!.n).toBe(2);
  });

  it('a copy another process has since changed costs one failed conditional write, then is read afresh', async () => {
    const { store, counted, gets } = countingStore();
    await put(store, 'agents', { agentId: 'a', n: 1, version: 1 });
    const cache = new ReadCache(counted);
    await cache.get('agents', { agentId: 'a' });
    // Another process changes it (version 1 → 2) behind the cache's back.
    await store.write([{ kind: 'patch', table: 'agents', key: { agentId: 'a' }, set: { n: 5 }, expect: 1 }]);
    const seen: number[] = [];
    await updateRecord<{ version: number; n: number }, void>(cache, 'agents', { agentId: 'a' }, (cur) => {
      seen.push(cur!.n);
      return { set: { n: cur!.n + 1 }, result: undefined };
    });
    expect(seen).toEqual([1, 5]);
    expect((await store.get<Item>('agents', { agentId: 'a' }))!.n).toBe(6);
    expect(gets).toHaveLength(2);
  });

  it('`uncached` reads past it, for reads that look for what others wrote since', async () => {
    const { store, counted, gets } = countingStore();
    await put(store, 'tasks', { frameworkId: 'f', taskId: 't', version: 1 });
    const cache = new ReadCache(counted);
    await cache.get('tasks', { frameworkId: 'f', taskId: 't' });
    await store.write([
      { kind: 'patch', table: 'tasks', key: { frameworkId: 'f', taskId: 't' }, set: { x: 1 }, expect: 1 },
    ]);
    expect((await uncached(cache).get<Item>('tasks', { frameworkId: 'f', taskId: 't' }))!.version).toBe(2);
    expect(gets).toHaveLength(2);
    expect(uncached(counted)).toBe(counted);
  });
});

describe('ACLs cached for a few seconds', () => {
  it('reads the item once per ACL_CACHE_MS, and at once after a save in this process', async () => {
    const { store, counted, gets } = countingStore();
    await saveAcls(store, OPEN_ACLS, undefined, 0);
    const t0 = 1_000_000;
    await cachedAcls(counted, CLOSED_ACLS, t0);
    await cachedAcls(counted, CLOSED_ACLS, t0 + ACL_CACHE_MS - 1);
    expect(gets).toHaveLength(1);
    await cachedAcls(counted, CLOSED_ACLS, t0 + ACL_CACHE_MS);
    expect(gets).toHaveLength(2);
    await saveAcls(store, CLOSED_ACLS, 1, 0);
    expect((await cachedAcls(counted, OPEN_ACLS, t0 + ACL_CACHE_MS + 1)).acls.permissive).toBe(false);
    expect(gets).toHaveLength(3);
  });

  it('a refusal stored by an operator applies to the next call', async () => {
    const t = testControl();
    expect(await aclRefusal(t.deps, 'p', [{ action: 'run_tasks', object: 'root' }])).toBeUndefined();
    await saveAcls(t.store, { ...CLOSED_ACLS, permissive: false }, undefined, t.now);
    expect(await aclRefusal(t.deps, 'p', [{ action: 'run_tasks', object: 'root' }])).toBeDefined();
  });
});

describe('a terminal status update releases its task without reading the agent', () => {
  const SOURCE = 'arn:aws:sqs:us-east-1:000:meso-agent-calls.fifo';
  const finished = (t: ReturnType<typeof testControl>, uuid: string) =>
    handleAgentCall(
      t.deps,
      record(
        {
          v: 1,
          type: 'STATUS_UPDATE',
          agentId: 'a1',
          status: {
            taskId: 't1',
            frameworkId: 'f1',
            agentId: 'a1',
            state: 'TASK_FINISHED',
            source: 'SOURCE_EXECUTOR',
            uuid,
            timestamp: t.now,
          },
        },
        'agent-principal',
        SOURCE,
      ),
    );

  it('takes the task off the ledger, ends the row and nudges the allocator', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    await putFramework(t, 'f1');
    await putTask(t, 'f1', 't1', 'a1');
    const before = (await agent(t, 'a1')).version;
    await finished(t, 'fin-1');
    expect((await task(t, 'f1', 't1')).state).toBe('TASK_FINISHED');
    const a = await agent(t, 'a1');
    expect(a.tasks[ledgerKey('f1', 't1')]).toBeUndefined();
    expect(a.version).toBe(before + 1);
    expect(t.bus.sent.some((s) => s.body.type === 'ALLOCATE')).toBe(true);
  });

  it('a ledger that no longer holds the task (released already) still lets the row end', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    await putFramework(t, 'f1');
    await putTask(t, 'f1', 't1', 'a1');
    const a = await agent(t, 'a1');
    await t.store.write([
      { kind: 'patch', table: 'agents', key: { agentId: 'a1' }, set: { tasks: {} }, expect: a.version },
    ]);
    await finished(t, 'fin-2');
    expect((await task(t, 'f1', 't1')).state).toBe('TASK_FINISHED');
    expect((await agent(t, 'a1')).tasks).toEqual({});
  });

  it('a removal refused while the ledger still holds the task is tried again, not taken as released', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    await putFramework(t, 'f1');
    await putTask(t, 'f1', 't1', 'a1');
    const write = t.store.write.bind(t.store);
    let refused = 0;
    t.store.write = async (ops) => {
      if (ops.some((o) => o.kind === 'removeKey') && refused++ === 0) {
        const { ConditionFailedError } = await import('../../../lib/ports/store.ts');
        throw new ConditionFailedError('spurious');
      }
      return write(ops);
    };
    await finished(t, 'fin-4');
    expect(refused).toBe(2);
    expect((await agent(t, 'a1')).tasks[ledgerKey('f1', 't1')]).toBeUndefined();
    expect((await task(t, 'f1', 't1')).state).toBe('TASK_FINISHED');
  });

  it('a write of the row that fails after the release is retried, and the ledger is not charged again', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    await putFramework(t, 'f1');
    await putTask(t, 'f1', 't1', 'a1');
    // The release goes through; the row's write then loses a race once and is retried.
    const write = t.store.write.bind(t.store);
    let n = 0;
    t.store.write = async (ops) => {
      if (ops.some((o) => o.table === 'tasks') && n++ === 0) {
        const { ConditionFailedError } = await import('../../../lib/ports/store.ts');
        throw new ConditionFailedError('raced');
      }
      return write(ops);
    };
    await finished(t, 'fin-3');
    expect((await task(t, 'f1', 't1')).state).toBe('TASK_FINISHED');
    expect((await agent(t, 'a1')).tasks[ledgerKey('f1', 't1')]).toBeUndefined();
    expect(t.bus.sent.filter((s) => s.body.type === 'ALLOCATE')).toHaveLength(1);
  });
});
