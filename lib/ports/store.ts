/**
 * The store port: versioned items in named tables. Every write is conditional — on the item
 * being absent (`expect: 'absent'`) or on its `version` being the one read (`expect: n`) — and a
 * write of several items is one transaction. Adapters: DynamoDB (`lib/adapters/dynamo-store.ts`)
 * and an in-memory store for unit tests (`lib/adapters/memory-store.ts`).
 */
import type { TableName } from '../infra/definition.ts';

export type Item = Record<string, unknown>;

export type Expect = 'absent' | number | 'any';

export type WriteOp =
  | { readonly kind: 'put'; readonly table: TableName; readonly item: Item; readonly expect: Expect }
  | { readonly kind: 'delete'; readonly table: TableName; readonly key: Item; readonly expect: Expect };

/** A condition on a write did not hold: someone else changed the item first. */
export class ConditionFailedError extends Error {
  override name = 'ConditionFailedError';
}

export interface Store {
  get<T extends Item>(table: TableName, key: Item): Promise<T | undefined>;
  /** Every item whose partition key is `pk` (optionally through an index). */
  query<T extends Item>(table: TableName, pk: { name: string; value: string }, index?: string): Promise<T[]>;
  scan<T extends Item>(table: TableName): Promise<T[]>;
  /** One conditional write, or a transaction of several. Throws ConditionFailedError. */
  write(ops: readonly WriteOp[]): Promise<void>;
  /** Atomically adds `by` to a numeric counter in the meta table. */
  increment(key: string, by?: number): Promise<void>;
}
