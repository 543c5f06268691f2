/**
 * Task rows as this process last wrote them (lib/control/own-writes.ts): a change of a row this
 * process wrote starts from its copy without reading the store; a copy someone else made stale
 * costs one failed conditional write and is decided again on the store's row; a decision that
 * writes nothing is never made on a copy alone.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../lib/adapters/memory-store.ts';
import { OwnWrites } from '../../../lib/control/own-writes.ts';
import { ReadCache } from '../../../lib/control/read-cache.ts';
import { updateRecord } from '../../../lib/control/records/transact.ts';
import type { Item, Store, WriteOp } from '../../../lib/ports/store.ts';

type Row = { frameworkId: string; taskId: string; state: string; n: number; version: number };
const KEY = { frameworkId: 'f1', taskId: 't1' };

/** A store that counts the reads and writes reaching it. */
function counting(base: Store): Store & { gets: number; writes: number } {
  const s = {
    gets: 0,
    writes: 0,
    get: <T extends Item>(table: never, key: Item) => {
      s.gets++;
      return base.get<T>(table, key);
    },
    query: base.query.bind(base),
    scan: base.scan.bind(base),
    increment: base.increment.bind(base),
    write: (ops: readonly WriteOp[]) => {
      s.writes++;
      return base.write(ops);
    },
  };
  return s;
}

const put = (item: Item): WriteOp => ({ kind: 'put', table: 'tasks', item, expect: 'absent' });

describe('own writes', () => {
  it('changes a row it wrote without reading it, however many times, through an invocation cache too', async () => {
    const base = new MemoryStore();
    const store = counting(base);
    const own = new OwnWrites(store);
    await own.write([put({ ...KEY, state: 'STAGING', n: 0 })]);
    for (const state of ['STARTING', 'RUNNING', 'FINISHED']) {
      await updateRecord<Row, void>(new ReadCache(own), 'tasks', KEY, (row) => ({
        set: { state, n: row!.n + 1 },
        result: undefined,
      }));
    }
    expect(store.gets).toBe(0);
    expect(own.hits).toBe(3);
    expect(await base.get('tasks', KEY)).toMatchObject({ state: 'FINISHED', n: 3, version: 4 });
  });

  it('a copy another process made stale fails its write once, and the change is made on the stored row', async () => {
    const base = new MemoryStore();
    const own = new OwnWrites(base);
    await own.write([put({ ...KEY, state: 'STAGING', n: 0 })]);
    // Another process: its own change, straight to the store.
    await base.write([
      { kind: 'patch', table: 'tasks', key: KEY, set: { state: 'RUNNING', n: 10 }, expect: 1 },
    ]);
    const seen: string[] = [];
    await updateRecord<Row, void>(own, 'tasks', KEY, (row) => {
      seen.push(row!.state);
      return { set: { state: 'FINISHED', n: row!.n + 1 }, result: undefined };
    });
    expect(seen).toEqual(['STAGING', 'RUNNING']);
    expect(await base.get('tasks', KEY)).toMatchObject({ state: 'FINISHED', n: 11, version: 3 });
  });

  it('a decision to write nothing made on a copy is made again on the stored row', async () => {
    const base = new MemoryStore();
    const own = new OwnWrites(base);
    await own.write([put({ ...KEY, state: 'STAGING', n: 0 })]);
    await base.write([{ kind: 'patch', table: 'tasks', key: KEY, set: { state: 'FINISHED' }, expect: 1 }]);
    const decided = await updateRecord<Row, string>(own, 'tasks', KEY, (row) =>
      row!.state === 'FINISHED' ? { result: 'already ended' } : { result: `would skip from ${row!.state}` },
    );
    expect(decided).toBe('already ended');
  });

  it('forgets a row when a write to it fails, when it is deleted, and beyond its capacity', async () => {
    const base = new MemoryStore();
    const own = new OwnWrites(base, 2);
    await own.write([put({ ...KEY, state: 'STAGING', n: 0 })]);
    await expect(
      own.write([{ kind: 'patch', table: 'tasks', key: KEY, set: { n: 1 }, expect: 7 }]),
    ).rejects.toThrow();
    expect(own.latest('tasks', KEY)).toBeUndefined();

    await own.write([put({ frameworkId: 'f1', taskId: 't2', n: 0 })]);
    await own.write([
      { kind: 'delete', table: 'tasks', key: { frameworkId: 'f1', taskId: 't2' }, expect: 'any' },
    ]);
    expect(own.latest('tasks', { frameworkId: 'f1', taskId: 't2' })).toBeUndefined();

    for (const t of ['a', 'b', 'c']) await own.write([put({ frameworkId: 'f1', taskId: t, n: 0 })]);
    expect(own.latest('tasks', { frameworkId: 'f1', taskId: 'a' })).toBeUndefined();
    expect(own.latest('tasks', { frameworkId: 'f1', taskId: 'c' })).toMatchObject({ n: 0, version: 1 });
  });

  it('keeps task rows only, and hands out copies nobody can change', async () => {
    const own = new OwnWrites(new MemoryStore());
    await own.write([{ kind: 'put', table: 'frameworks', item: { frameworkId: 'f1' }, expect: 'absent' }]);
    expect(own.latest('frameworks', { frameworkId: 'f1' })).toBeUndefined();
    await own.write([put({ ...KEY, state: 'STAGING', n: 0 })]);
    (own.latest<Row>('tasks', KEY) as { n: number }).n = 99;
    expect(own.latest('tasks', KEY)).toMatchObject({ n: 0 });
  });
});
