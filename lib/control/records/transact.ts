/**
 * The control plane's one way to change records: read, decide (a pure change from lib/core, or a
 * few reads more), write everything decided in one conditional transaction, and on a lost race
 * read and decide again (`withRetry`, lib/control/retry.ts). The per-table modules beside this
 * one (agents.ts, frameworks.ts, tasks.ts) give it types; no call handler retries by itself.
 *
 * Two writes stay outside on purpose (docs/architecture.md, "State and consistency"): heartbeats
 * that set `lastSeenAt` without bumping the version, and the removal of one ended task's key from
 * its agent (`removeKey`), which commutes with every other removal.
 */

import type { TableName } from '../../definition/tables-queues.ts';
import type { Item, Store, WriteOp } from '../../ports/store.ts';
import { ownWritesOf } from '../own-writes.ts';
import { withRetry } from '../retry.ts';

/** What one attempt decided: the writes (one transaction; none writes nothing) and what to return. */
export interface Plan<R> {
  readonly writes: readonly WriteOp[];
  readonly result: R;
}

/**
 * Reads with `read`, decides with `decide`, writes the plan in one transaction; retries the whole
 * of it when a condition failed.
 */
export function transact<S, R>(
  store: Store,
  read: () => Promise<S>,
  decide: (state: S) => Plan<R> | Promise<Plan<R>>,
): Promise<R> {
  return withRetry(async () => {
    const plan = await decide(await read());
    if (plan.writes.length > 0) await store.write(plan.writes);
    return plan.result;
  });
}

/** What a change decides about one record. */
export interface Change<R> {
  /** Attributes to set, conditional on the version read (absent: the record is not written). */
  readonly set?: Item;
  /** The whole record to write instead: created when there was none, else on the version read. */
  readonly put?: Item;
  /** Other writes in the same transaction (task rows, outbox items). */
  readonly also?: readonly WriteOp[];
  readonly result: R;
}

/** A decision on one record: it sees the record as read (undefined when there is none). */
export type Decide<T, R> = (current: T | undefined) => Change<R> | Promise<Change<R>>;

/**
 * `update(id, change)` for a record of `table` under `key`: read, decide, conditional write, retry.
 * The first attempt starts from the copy this process last wrote or read, where it keeps one
 * (lib/control/own-writes.ts): the write's condition on its version catches a copy someone else
 * has made stale, every retry reads the store, and so does a decision that writes nothing.
 */
export function updateRecord<T extends { readonly version: number }, R>(
  store: Store,
  table: TableName,
  key: Item,
  decide: Decide<T, R>,
): Promise<R> {
  const own = ownWritesOf(store);
  const fresh = async () => {
    const read = await store.get<T & Item>(table, key);
    own?.seen(table, read, key);
    return read;
  };
  let first = true;
  return transact(
    store,
    async () => {
      const copy = first ? own?.latest<T & Item>(table, key) : undefined;
      first = false;
      return copy ? { current: copy as T | undefined, copy: true } : { current: await fresh(), copy: false };
    },
    async (read): Promise<Plan<R>> => {
      let { current } = read;
      let change = await decide(current);
      // Only a write's condition proves a copy current: a decision to write nothing is made again
      // on the row as the store has it.
      if (read.copy && !change.put && !change.set) {
        current = await fresh();
        change = await decide(current);
      }
      const writes: WriteOp[] = [];
      if (change.put) {
        writes.push({ kind: 'put', table, item: change.put, expect: current ? current.version : 'absent' });
      } else if (change.set) {
        if (!current) throw new Error(`no ${table} record ${JSON.stringify(key)} to change`);
        writes.push({ kind: 'patch', table, key, set: change.set, expect: current.version });
      }
      writes.push(...(change.also ?? []));
      return { writes, result: change.result };
    },
  );
}
