/**
 * An in-memory Store with the same conditional semantics as DynamoStore, for unit tests of the
 * control layer and for the pure benchmarks. Not used against AWS.
 */
import { TABLES, type TableDef, type TableName } from '../definition/tables-queues.ts';
import { ConditionFailedError, type Item, type SortFrom, type Store, type WriteOp } from '../ports/store.ts';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryStore implements Store {
  readonly tables = new Map<TableName, Map<string, Item>>();
  /** Set to make the next N writes fail their condition (to test conflict/retry paths). */
  failNextWrites = 0;
  /** The clock of `changedAtAttribute` stamps (lib/ports/store.ts). */
  now: () => number = Date.now;

  private table(t: TableName): Map<string, Item> {
    const existing = this.tables.get(t);
    if (existing) return existing;
    const created = new Map<string, Item>();
    this.tables.set(t, created);
    return created;
  }

  private keyOf(t: TableName, item: Item): string {
    const def = TABLES[t] as { partitionKey: string; sortKey?: string };
    return def.sortKey
      ? `${String(item[def.partitionKey])}\u0000${String(item[def.sortKey])}`
      : String(item[def.partitionKey]);
  }

  async get<T extends Item>(table: TableName, key: Item): Promise<T | undefined> {
    const v = this.table(table).get(this.keyOf(table, key));
    return v ? (clone(v) as T) : undefined;
  }

  async query<T extends Item>(
    table: TableName,
    pk: { name: string; value: string | number },
    index?: string,
    from?: SortFrom,
  ): Promise<T[]> {
    // An index with an INCLUDE projection answers with its keys, the table's and those attributes, as DynamoDB's.
    const def = TABLES[table] as TableDef;
    const ix = index ? def.indexes?.find((i) => i.name === index) : undefined;
    const kept = ix?.include && [def.partitionKey, def.sortKey, ix.partitionKey, ix.sortKey, ...ix.include];
    const project = (i: Item): Item =>
      kept ? Object.fromEntries(Object.entries(i).filter(([k]) => kept.includes(k))) : i;
    return [...this.table(table).values()]
      .filter((i) => i[pk.name] === pk.value)
      .filter((i) => !from || (typeof i[from.name] === 'number' && (i[from.name] as number) >= from.value))
      .map((i) => clone(project(i)) as T);
  }

  async scan<T extends Item>(table: TableName): Promise<T[]> {
    return [...this.table(table).values()].map((i) => clone(i) as T);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.failNextWrites > 0) {
      this.failNextWrites--;
      throw new ConditionFailedError('injected');
    }
    for (const op of ops) {
      const key = op.kind === 'put' ? op.item : op.key;
      const cur = this.table(op.table).get(this.keyOf(op.table, key));
      if (op.kind === 'removeKey') {
        const map = cur?.[op.attribute] as Record<string, unknown> | undefined;
        if (!map || !Object.hasOwn(map, op.mapKey))
          throw new ConditionFailedError(`no ${op.attribute}.${op.mapKey}`);
        continue;
      }
      const ok =
        op.expect === 'any' ||
        (op.expect === 'absent' && !cur) ||
        (op.expect === 'exists' && !!cur) ||
        (typeof op.expect === 'number' && cur?.version === op.expect);
      if (!ok) throw new ConditionFailedError(`condition failed on ${op.table}`);
    }
    const now = this.now();
    for (const op of ops) {
      const t = this.table(op.table);
      const name = (TABLES[op.table] as TableDef).changedAtAttribute;
      const stamp = name ? { [name]: now } : {};
      if (op.kind === 'put') {
        const version =
          typeof op.expect === 'number' ? op.expect + 1 : op.expect === 'absent' ? 1 : op.item.version;
        t.set(this.keyOf(op.table, op.item), clone({ ...op.item, version, ...stamp }));
      } else if (op.kind === 'patch') {
        const k = this.keyOf(op.table, op.key);
        const cur = t.get(k)!;
        t.set(
          k,
          clone({
            ...cur,
            ...op.set,
            ...(typeof op.expect === 'number' ? { version: op.expect + 1, ...stamp } : {}),
          }),
        );
      } else if (op.kind === 'removeKey') {
        const k = this.keyOf(op.table, op.key);
        const cur = t.get(k)!;
        const map = { ...(cur[op.attribute] as Record<string, unknown>) };
        delete map[op.mapKey];
        t.set(k, clone({ ...cur, [op.attribute]: map, version: Number(cur.version) + 1, ...stamp }));
      } else t.delete(this.keyOf(op.table, op.key));
    }
  }

  async increment(key: string, by = 1): Promise<void> {
    const t = this.table('meta');
    const cur = t.get(key);
    t.set(key, { key, count: Number(cur?.count ?? 0) + by });
  }
}
