/**
 * The Store port over DynamoDB. Every write is conditional (see lib/ports/store.ts); several
 * writes go as one TransactWriteItems. Throttling and transient errors are retried by the SDK
 * (standard retry mode, 5 attempts, backoff with jitter); a failed condition becomes
 * ConditionFailedError, which callers answer by re-reading and deciding again.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TABLES, type TableDef, type TableName } from '../definition/tables-queues.ts';
import { ConditionFailedError, type Item, type SortFrom, type Store, type WriteOp } from '../ports/store.ts';
import { decodeAgentItem, encodeAgentItem, ledgerEntryPath } from './agent-item.ts';
import { countCalls } from './api-calls.ts';
import { type AwsConfig, awsConfigFromEnv, clientOptions } from './aws-config.ts';

export function createDynamoClient(config: AwsConfig = awsConfigFromEnv()): DynamoDBDocumentClient {
  const base = new DynamoDBClient(clientOptions(config, config.dynamoEndpoint));
  countCalls(base.middlewareStack, 'DynamoDB');
  return DynamoDBDocumentClient.from(base, { marshallOptions: { removeUndefinedValues: true } });
}

/**
 * How a table's items are laid out in DynamoDB where that differs from the domain's shape: the
 * agents' ledgers are stored compact (lib/adapters/agent-item.ts), because AWS bills each write by
 * the whole item's size.
 */
const LAYOUTS: Partial<
  Record<
    TableName,
    {
      encode(item: Item): Item;
      decode<T extends Item>(item: T): T;
      /** Where `attribute[mapKey]` may be stored: where writes keep it now first, then older places. */
      paths(attribute: string, mapKey: string): string[][];
    }
  >
> = {
  agents: {
    encode: encodeAgentItem,
    decode: decodeAgentItem,
    // A ledger entry written before the compact layout is still a map in `tasks` under its key.
    paths: (attribute, mapKey) => {
      if (attribute !== 'tasks') return [[attribute, mapKey]];
      const now = ledgerEntryPath(mapKey);
      return now[0] === 'tasks' ? [now] : [now, ['tasks', mapKey]];
    },
  },
};

const encode = (table: TableName, item: Item): Item => LAYOUTS[table]?.encode(item) ?? item;
const decode = <T extends Item>(table: TableName, item: T): T => LAYOUTS[table]?.decode(item) ?? item;

type Built = {
  TableName: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
};

export class DynamoStore implements Store {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly names: Readonly<Record<TableName, string>>,
    /** The clock of `changedAtAttribute` stamps (lib/ports/store.ts). */
    private readonly now: () => number = Date.now,
  ) {}

  async get<T extends Item>(table: TableName, key: Item): Promise<T | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.names[table], Key: key, ConsistentRead: true }),
    );
    return res.Item && decode(table, res.Item as T);
  }

  /** BatchGetItem, 100 keys a call, until none is left unprocessed. */
  async getMany<T extends Item>(table: TableName, keys: readonly Item[]): Promise<(T | undefined)[]> {
    const name = this.names[table];
    const def = TABLES[table] as { partitionKey: string; sortKey?: string };
    const id = (i: Item) =>
      def.sortKey
        ? `${String(i[def.partitionKey])}\u0000${String(i[def.sortKey])}`
        : String(i[def.partitionKey]);
    const found = new Map<string, T>();
    const unique = [...new Map(keys.map((k) => [id(k), k])).values()];
    for (let i = 0; i < unique.length; i += 100) {
      let todo: Record<string, unknown>[] | undefined = unique.slice(i, i + 100);
      for (let attempt = 0; todo && todo.length > 0; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
        const res: BatchGetCommandOutput = await this.doc.send(
          new BatchGetCommand({ RequestItems: { [name]: { Keys: todo, ConsistentRead: true } } }),
        );
        for (const item of res.Responses?.[name] ?? []) found.set(id(item), decode(table, item as T));
        todo = res.UnprocessedKeys?.[name]?.Keys;
      }
    }
    return keys.map((k) => found.get(id(k)));
  }

  async query<T extends Item>(
    table: TableName,
    pk: { name: string; value: string | number },
    index?: string,
    from?: SortFrom,
  ): Promise<T[]> {
    const out: T[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.names[table],
          IndexName: index,
          KeyConditionExpression: from ? '#pk = :pk AND #sk >= :sk' : '#pk = :pk',
          ExpressionAttributeNames: { '#pk': pk.name, ...(from ? { '#sk': from.name } : {}) },
          ExpressionAttributeValues: { ':pk': pk.value, ...(from ? { ':sk': from.value } : {}) },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of (res.Items ?? []) as T[]) out.push(decode(table, item));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async scan<T extends Item>(table: TableName): Promise<T[]> {
    const out: T[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new ScanCommand({ TableName: this.names[table], ExclusiveStartKey: start }),
      );
      for (const item of (res.Items ?? []) as T[]) out.push(decode(table, item));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      if (ops.length === 1) {
        const op = ops[0]!;
        if (op.kind === 'put') await this.doc.send(new PutCommand(this.put(op)));
        else if (op.kind === 'patch') await this.doc.send(new UpdateCommand(this.patch(op)));
        else if (op.kind === 'removeKey') await this.removeFromMap(op);
        else await this.doc.send(new DeleteCommand(this.del(op)));
        return;
      }
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: ops.map((op) =>
            op.kind === 'put'
              ? { Put: this.put(op) }
              : op.kind === 'patch'
                ? { Update: this.patch(op) }
                : op.kind === 'removeKey'
                  ? { Update: this.removeKey(op, this.mapPaths(op)[0]!) }
                  : { Delete: this.del(op) },
          ),
        }),
      );
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'ConditionalCheckFailedException') throw new ConditionFailedError('condition failed');
      if (name === 'TransactionCanceledException') {
        const reasons = ((e as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map(
          (r) => r.Code,
        );
        if (reasons.includes('ConditionalCheckFailed') || reasons.includes('TransactionConflict')) {
          throw new ConditionFailedError(`transaction cancelled: ${reasons.join(',')}`);
        }
      }
      throw e;
    }
  }

  async increment(key: string, by = 1): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.names.meta,
        Key: { key },
        UpdateExpression: 'ADD #n :by',
        ExpressionAttributeNames: { '#n': 'count' },
        ExpressionAttributeValues: { ':by': by },
      }),
    );
  }

  private pkName(table: TableName): string {
    return TABLES[table].partitionKey;
  }

  private condition(
    table: TableName,
    expect: Exclude<WriteOp, { kind: 'removeKey' }>['expect'],
  ): Omit<Built, 'TableName'> {
    if (expect === 'any') return {};
    if (expect === 'absent')
      return {
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': this.pkName(table) },
      };
    if (expect === 'exists')
      return {
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: { '#pk': this.pkName(table) },
      };
    return {
      ConditionExpression: '#ver = :ver',
      ExpressionAttributeNames: { '#ver': 'version' },
      ExpressionAttributeValues: { ':ver': expect },
    };
  }

  /** The attribute `table` stamps with the write time, if any. */
  private stampName(table: TableName): string | undefined {
    return (TABLES[table] as TableDef).changedAtAttribute;
  }

  private put(op: Extract<WriteOp, { kind: 'put' }>) {
    const version =
      typeof op.expect === 'number' ? op.expect + 1 : op.expect === 'absent' ? 1 : op.item.version;
    const stamp = this.stampName(op.table);
    return {
      TableName: this.names[op.table],
      Item: { ...encode(op.table, op.item), version, ...(stamp ? { [stamp]: this.now() } : {}) },
      ...this.condition(op.table, op.expect),
    };
  }

  private del(op: Extract<WriteOp, { kind: 'delete' }>) {
    return { TableName: this.names[op.table], Key: op.key, ...this.condition(op.table, op.expect) };
  }

  private mapPaths(op: Extract<WriteOp, { kind: 'removeKey' }>): string[][] {
    return LAYOUTS[op.table]?.paths(op.attribute, op.mapKey) ?? [[op.attribute, op.mapKey]];
  }

  /**
   * A map key's removal where the item keeps it now, else where an older layout kept it: the
   * second write is made only when the first found nothing to remove.
   */
  private async removeFromMap(op: Extract<WriteOp, { kind: 'removeKey' }>): Promise<void> {
    const paths = this.mapPaths(op);
    for (const [i, path] of paths.entries()) {
      try {
        await this.doc.send(new UpdateCommand(this.removeKey(op, path)));
        return;
      } catch (e) {
        if ((e as Error).name !== 'ConditionalCheckFailedException' || i === paths.length - 1) throw e;
      }
    }
  }

  private removeKey(op: Extract<WriteOp, { kind: 'removeKey' }>, path: readonly string[]) {
    const stamp = this.stampName(op.table);
    const names = Object.fromEntries(path.map((p, i) => [`#p${i}`, p]));
    const at = path.map((_, i) => `#p${i}`).join('.');
    return {
      TableName: this.names[op.table],
      Key: op.key,
      UpdateExpression: `REMOVE ${at} ADD #ver :one${stamp ? ' SET #ch = :now' : ''}`,
      ConditionExpression: `attribute_exists(${at})`,
      ExpressionAttributeNames: {
        ...names,
        '#ver': 'version',
        ...(stamp ? { '#ch': stamp } : {}),
      },
      ExpressionAttributeValues: { ':one': 1, ...(stamp ? { ':now': this.now() } : {}) },
    };
  }

  private patch(op: Extract<WriteOp, { kind: 'patch' }>) {
    const cond = this.condition(op.table, op.expect);
    const names: Record<string, string> = { ...cond.ExpressionAttributeNames };
    const values: Record<string, unknown> = { ...cond.ExpressionAttributeValues };
    const sets: string[] = [];
    const stamp = typeof op.expect === 'number' ? this.stampName(op.table) : undefined;
    Object.entries(encode(op.table, op.set))
      .filter(([k]) => k !== stamp)
      .forEach(([k, v], i) => {
        names[`#a${i}`] = k;
        values[`:a${i}`] = v;
        sets.push(`#a${i} = :a${i}`);
      });
    if (typeof op.expect === 'number') {
      names['#ver'] = 'version';
      values[':next'] = op.expect + 1;
      sets.push('#ver = :next');
      if (stamp) {
        names['#ch'] = stamp;
        values[':now'] = this.now();
        sets.push('#ch = :now');
      }
    }
    return {
      TableName: this.names[op.table],
      Key: op.key,
      UpdateExpression: `SET ${sets.join(', ')}`,
      ConditionExpression: cond.ConditionExpression,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
    };
  }
}
