/**
 * The part of a built-in framework's table every framework has: one DynamoDB table with
 * partition `pk` and sort `sk`, paged consistent queries of one partition, and the framework's own
 * state at `pk=meta, sk=framework`. Each framework's store extends it with its own records.
 */
import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { TableDef } from '../../definition/tables-queues.ts';
import type { FrameworkMeta } from './meta.ts';

/** A built-in framework's table: `<prefix>-<name>`, keyed `pk`/`sk`. */
export const frameworkTable = <N extends string>(name: N) =>
  ({ name, partitionKey: 'pk', sortKey: 'sk' }) as const satisfies TableDef;

export const isConditionFailed = (e: unknown): boolean =>
  (e as Error).name === 'ConditionalCheckFailedException';

export class FrameworkTable {
  constructor(
    protected readonly doc: DynamoDBDocumentClient,
    protected readonly table: string,
  ) {}

  /** Every item of partition `pk` (or the first `limit`), oldest sort key first unless `newestFirst`. */
  protected async query(
    pk: string,
    opts: { newestFirst?: boolean; limit?: number } = {},
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
          ScanIndexForward: !opts.newestFirst,
          ...(opts.limit ? { Limit: opts.limit } : {}),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((r.Items ?? []) as Record<string, unknown>[]));
      start = opts.limit && items.length >= opts.limit ? undefined : r.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** One item, read consistently. */
  protected async item(pk: string, sk: string): Promise<Record<string, unknown> | undefined> {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true }),
    );
    return r.Item;
  }

  async getMeta(): Promise<FrameworkMeta> {
    const { pk: _pk, sk: _sk, ...meta } = (await this.item('meta', 'framework')) ?? {};
    return meta as FrameworkMeta;
  }

  /** Sets the given attributes of the framework's state (undefined ones are left as they are). */
  async updateMeta(change: Partial<FrameworkMeta>): Promise<void> {
    const entries = Object.entries(change).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: 'meta', sk: 'framework' },
        UpdateExpression: `SET ${entries.map((_, k) => `#k${k} = :v${k}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(entries.map(([name], k) => [`#k${k}`, name])),
        ExpressionAttributeValues: Object.fromEntries(entries.map(([, v], k) => [`:v${k}`, v])),
      }),
    );
  }
}
