import { describe, expect, it } from 'vitest';
import { BatchingBus } from '../../../lib/control/batching-bus.ts';
import { followUpReordered } from '../../../lib/control/order.ts';
import { ReadCache } from '../../../lib/control/read-cache.ts';
import type { Item, Store } from '../../../lib/ports/store.ts';
import { fwQueue, putAgent, putTask, testControl } from './helpers.ts';

describe('re-reads after forwarding updates, one call per invocation', () => {
  it('reads every task of the invocation in one getMany, after the sends, and follows up the one that moved', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    for (const id of ['t1', 't2', 't3']) await putTask(t, 'f1', id, 'a1');
    const calls: { kind: string; n: number }[] = [];
    const base = t.store;
    const counted: Store = {
      get: (table, k) => {
        calls.push({ kind: 'get', n: 1 });
        return base.get(table, k);
      },
      getMany: async <T extends Item>(table: Parameters<Store['get']>[0], keys: readonly Item[]) => {
        calls.push({ kind: 'getMany', n: keys.length });
        return Promise.all(keys.map((k) => base.get<T>(table, k)));
      },
      query: (table, pk) => base.query(table, pk),
      scan: (table) => base.scan(table),
      write: (ops) => base.write(ops),
      increment: (k, by) => base.increment(k, by),
    };
    const bus = new BatchingBus(t.bus, () => {});
    const deps = { ...t.deps, bus, store: new ReadCache(counted) };
    const sent = (taskId: string) => ({ queueUrl: fwQueue('f1'), frameworkId: 'f1', taskId, version: 1 });
    // Rows at version 1 (as the updates left them); t2 then moves on to version 2.
    for (const id of ['t1', 't2', 't3']) await followUpReordered(deps, [sent(id)]);
    expect(calls).toEqual([]); // nothing read before the sends are out
    await base.write([
      { kind: 'patch', table: 'tasks', key: { frameworkId: 'f1', taskId: 't2' }, set: { x: 2 }, expect: 1 },
    ]);
    await bus.finish();
    expect(calls).toEqual([{ kind: 'getMany', n: 3 }]);
    const followUps = t.bus.events(fwQueue('f1')).filter((e) => e.type === 'UPDATE');
    expect(followUps.map((e) => e.type === 'UPDATE' && e.status.taskId)).toEqual(['t2']);
  });
});
