/**
 * Task rows as this process last wrote or read them, kept across invocations, so that an agent's
 * STATUS_UPDATE — which must read its row to decide, and is usually handled by the process that
 * wrote that row last (its ACCEPT, its previous update) — changes it without reading it first.
 *
 * What keeps it correct: a copy is only ever the *starting point* of a read-decide-write whose
 * write is conditional on the version the copy holds (lib/control/records/transact.ts). If another
 * process changed the row since, that write fails its condition, the copy is dropped, and the
 * retry reads the row from the store — one failed conditional write, never a wrong decision.
 * Nothing answers a caller from a copy: `get` and every other read go to the store as before.
 *
 * A copy follows this process's writes: a put is kept as written (its version as the store sets
 * it); a patch on the version a copy holds moves the copy on; any other write to the row, and any
 * write that fails or whose outcome is unknown, drops it. At most `capacity` rows are kept, the
 * oldest written first out.
 */
import type { TableName } from '../definition/tables-queues.ts';
import type { Item, SortFrom, Store, WriteOp } from '../ports/store.ts';
import { ReadCache, cacheKey as rowKey } from './read-cache.ts';

/** The tables whose rows are kept: task rows, read before each of their several status changes. */
const KEPT: ReadonlySet<TableName> = new Set(['tasks']);

export class OwnWrites implements Store {
  private readonly rows = new Map<string, Item>();
  /** Reads saved: a read-decide-write that started from a copy. */
  hits = 0;

  constructor(
    readonly base: Store,
    private readonly capacity = 20_000,
  ) {}

  /** A copy of the row as this process last wrote or read it, if it keeps one. */
  latest<T extends Item>(table: TableName, key: Item): T | undefined {
    const row = KEPT.has(table) ? this.rows.get(rowKey(table, key)) : undefined;
    if (!row) return undefined;
    this.hits++;
    return structuredClone(row) as T;
  }

  /** Keeps a row just read from the store as the starting point of its next change. */
  seen(table: TableName, row: Item | undefined, key: Item): void {
    if (!KEPT.has(table)) return;
    if (row) this.keep(rowKey(table, key), row);
    else this.rows.delete(rowKey(table, key));
  }

  get<T extends Item>(table: TableName, key: Item): Promise<T | undefined> {
    return this.base.get<T>(table, key);
  }

  getMany<T extends Item>(table: TableName, keys: readonly Item[]): Promise<(T | undefined)[]> {
    return this.base.getMany
      ? this.base.getMany<T>(table, keys)
      : Promise.all(keys.map((k) => this.base.get<T>(table, k)));
  }

  query<T extends Item>(
    table: TableName,
    pk: { name: string; value: string | number },
    index?: string,
    from?: SortFrom,
  ): Promise<T[]> {
    return this.base.query<T>(table, pk, index, from);
  }

  scan<T extends Item>(table: TableName): Promise<T[]> {
    return this.base.scan<T>(table);
  }

  increment(key: string, by?: number): Promise<void> {
    return this.base.increment(key, by);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    const kept = ops.filter((op) => KEPT.has(op.table));
    // Dropped first: while the write is in flight, its outcome is unknown.
    const before = kept.map((op) => {
      const k = rowKey(op.table, op.kind === 'put' ? op.item : op.key);
      const row = this.rows.get(k);
      this.rows.delete(k);
      return { op, k, row };
    });
    await this.base.write(ops);
    for (const { op, k, row } of before) {
      if (op.kind === 'put' && op.expect !== 'any')
        this.keep(k, { ...op.item, version: op.expect === 'absent' ? 1 : op.expect + 1 });
      else if (op.kind === 'patch' && typeof op.expect === 'number' && row?.version === op.expect)
        this.keep(k, { ...row, ...op.set, version: op.expect + 1 });
    }
  }

  private keep(k: string, row: Item): void {
    this.rows.delete(k);
    this.rows.set(k, structuredClone(row));
    if (this.rows.size > this.capacity) this.rows.delete(this.rows.keys().next().value!);
  }
}

/** The process's {@link OwnWrites} under `store` (through an invocation's read cache), if any. */
export function ownWritesOf(store: Store): OwnWrites | undefined {
  const s = store instanceof ReadCache ? store.base : store;
  return s instanceof OwnWrites ? s : undefined;
}
