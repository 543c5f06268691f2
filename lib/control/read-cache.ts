/**
 * Items read once per handler invocation: a registry batch of ten STATUS_UPDATEs from one agent
 * reads the agent record once, not ten times, and calls from one framework read its record once.
 * The cache lives as long as the invocation (a Lambda batch; one `perRecordHandler` call), never
 * longer, and holds only `get`s.
 *
 * What keeps it correct:
 * - The invocation's own writes drop what they touch, before they are made and again after
 *   (a read begun while a write was in flight may have either value): the next read goes to the
 *   store. Readers already waiting on the older read get the older value, as if they had read a
 *   moment earlier.
 * - A write that fails its condition has dropped every item it named too, so the read-decide-write retry
 *   (lib/control/records/transact.ts) reads afresh: a copy cached before another process changed
 *   the item costs one failed conditional write, never a wrong decision.
 * - Reads that exist to see what *others* wrote since — the re-read after a task's update is sent
 *   (lib/control/order.ts) — go past the cache (`uncached`).
 * - Every reader gets its own copy, so no handler sees another's changes to an object.
 */
import { TABLES, type TableName } from '../definition/tables-queues.ts';
import { getEach, type Item, type Store, type WriteOp } from '../ports/store.ts';

export class ReadCache implements Store {
  private readonly items = new Map<string, Promise<Item | undefined>>();
  /** Reads served from the cache. */
  hits = 0;

  constructor(readonly base: Store) {}

  async get<T extends Item>(table: TableName, key: Item): Promise<T | undefined> {
    const k = cacheKey(table, key);
    let item = this.items.get(k);
    if (item) this.hits++;
    else {
      const read = this.base.get<Item>(table, key);
      item = read;
      this.items.set(k, read);
      // A failed read is not kept (unless a newer read has taken its place).
      read.catch(() => {
        if (this.items.get(k) === read) this.items.delete(k);
      });
    }
    const v = await item;
    return v === undefined ? undefined : (structuredClone(v) as T);
  }

  /** Not cached: its one reader (lib/control/order.ts) wants what others wrote since. */
  getMany<T extends Item>(table: TableName, keys: readonly Item[]): Promise<(T | undefined)[]> {
    return getEach<T>(this.base, table, keys);
  }

  query<T extends Item>(table: TableName, pk: { name: string; value: string }, index?: string) {
    return this.base.query<T>(table, pk, index);
  }

  scan<T extends Item>(table: TableName) {
    return this.base.scan<T>(table);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    const keys = ops.map((op) => cacheKey(op.table, op.kind === 'put' ? op.item : op.key));
    for (const k of keys) this.invalidate(k);
    try {
      await this.base.write(ops);
    } finally {
      // After as well: a read that started while the write was in flight may hold either value.
      for (const k of keys) this.invalidate(k);
    }
  }

  async increment(key: string, by?: number): Promise<void> {
    const k = cacheKey('meta', { key });
    this.invalidate(k);
    try {
      await this.base.increment(key, by);
    } finally {
      this.invalidate(k);
    }
  }

  /** Forgets the item: the next read of it goes to the store. */
  private invalidate(k: string): void {
    this.items.delete(k);
  }
}

/** The store underneath an invocation's read cache, for reads that must see others' writes. */
export const uncached = (store: Store): Store => (store instanceof ReadCache ? store.base : store);

/** An item's key as one string, its table's name first. */
export function cacheKey(table: TableName, item: Item): string {
  const def = TABLES[table] as { partitionKey: string; sortKey?: string };
  const pk = String(item[def.partitionKey]);
  return def.sortKey ? `${table}\u0000${pk}\u0000${String(item[def.sortKey])}` : `${table}\u0000${pk}`;
}
