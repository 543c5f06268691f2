/**
 * The store port: versioned items in named tables. Every write is conditional — on the item
 * being absent (`expect: 'absent'`) or on its `version` being the one read (`expect: n`) — and a
 * write of several items is one transaction. Adapters: DynamoDB (`lib/adapters/dynamo-store.ts`)
 * and an in-memory store for unit tests (`lib/adapters/memory-store.ts`). On a table with a
 * `changedAtAttribute` (lib/definition/tables-queues.ts) every write but a version-free patch
 * (`expect: 'exists'`: heartbeats) also sets that attribute to the store's clock, so an index on
 * it finds what changed since a time.
 */
import type { TableName } from '../definition/tables-queues.ts';

export type Item = Record<string, unknown>;

export type Expect = 'absent' | number | 'any';

export type WriteOp =
  /** Writes the whole item; the store sets `version` to the expected version + 1 (1 when absent). */
  | { readonly kind: 'put'; readonly table: TableName; readonly item: Item; readonly expect: Expect }
  /**
   * Sets some attributes of an existing item. With a numeric `expect` the version must match and
   * is bumped; with 'exists' the item must exist and its version is left alone (heartbeats: they
   * must not race with resource changes).
   */
  | {
      readonly kind: 'patch';
      readonly table: TableName;
      readonly key: Item;
      readonly set: Item;
      readonly expect: number | 'exists';
    }
  | { readonly kind: 'delete'; readonly table: TableName; readonly key: Item; readonly expect: Expect }
  /**
   * Removes one key of a map attribute (`attribute[mapKey]`) if it is there, and bumps the
   * item's version. It commutes with other removals, so many tasks of one agent can end at once
   * without conflicting; the version bump still stops any read-modify-write based on the old map.
   */
  | {
      readonly kind: 'removeKey';
      readonly table: TableName;
      readonly key: Item;
      readonly attribute: string;
      readonly mapKey: string;
    };

/** A condition on a write did not hold: someone else changed the item first. */
export class ConditionFailedError extends Error {
  override name = 'ConditionFailedError';
}

/** A lower bound on a numeric sort key. */
export interface SortFrom {
  readonly name: string;
  readonly value: number;
}

export interface Store {
  get<T extends Item>(table: TableName, key: Item): Promise<T | undefined>;
  /**
   * Several items of one table in one call (strongly consistent, like `get`), in the order of
   * `keys`. Optional: a store without it is read one `get` at a time ({@link getEach}).
   */
  getMany?<T extends Item>(table: TableName, keys: readonly Item[]): Promise<(T | undefined)[]>;
  /**
   * Every item whose partition key is `pk` (optionally through an index) and, with `from`, whose
   * numeric sort key `from.name` is at least `from.value`. A store may return more than `from`
   * asks (a superset is always a correct answer), never fewer.
   */
  query<T extends Item>(
    table: TableName,
    pk: { name: string; value: string | number },
    index?: string,
    from?: SortFrom,
  ): Promise<T[]>;
  scan<T extends Item>(table: TableName): Promise<T[]>;
  /** One conditional write, or a transaction of several. Throws ConditionFailedError. */
  write(ops: readonly WriteOp[]): Promise<void>;
  /** Atomically adds `by` to a numeric counter in the meta table. */
  increment(key: string, by?: number): Promise<void>;
}

/** Items of one table by key: one call where the store can (`getMany`), else a `get` each. */
export function getEach<T extends Item>(
  store: Store,
  table: TableName,
  keys: readonly Item[],
): Promise<(T | undefined)[]> {
  if (keys.length === 0) return Promise.resolve([]);
  if (store.getMany && keys.length > 1) return store.getMany<T>(table, keys);
  return Promise.all(keys.map((k) => store.get<T>(table, k)));
}
