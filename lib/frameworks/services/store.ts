/**
 * Where the services framework keeps its state: one DynamoDB table, `<prefix>-services`
 * (partition `pk`, sort `sk`). Apps are `pk=app, sk=<id>`, their past versions
 * `pk=ver#<id>, sk=<version>`, instances `pk=inst, sk=<taskId>`, the framework's own state
 * `pk=meta, sk=framework`. The CLI writes definitions; the framework's handler writes instances,
 * backoffs and its state — each with an update that touches only its own attributes, so a deploy
 * and a crash counted at the same moment do not overwrite each other.
 */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { TableDef } from '../../definition/tables-queues.ts';
import type { AppDefinition, AppRecord } from './app.ts';
import type { Instance } from './instance.ts';

export const SERVICES_TABLE = {
  name: 'services',
  partitionKey: 'pk',
  sortKey: 'sk',
} as const satisfies TableDef;

/** The framework's own state. */
export interface ServicesMeta {
  /** Last SUBSCRIBE sent, and the last sign of life from Meso (SUBSCRIBED or HEARTBEAT), ms. */
  readonly subscribeSentAt?: number;
  readonly lastContactAt?: number;
  /** Roles it subscribed with. */
  readonly roles?: readonly string[];
  /** Whether it asked Meso for no offers (SUPPRESS) and has not revived since. */
  readonly suppressed?: boolean;
}

/** What a deploy, scale, suspend or restart writes: everything of an app but its backoff. */
export interface AppSpec {
  readonly def: AppDefinition;
  readonly version: string;
  readonly suspended: boolean;
  readonly deployedAt: number;
}

export interface ServicesStore {
  listApps(): Promise<AppRecord[]>;
  getApp(id: string): Promise<AppRecord | undefined>;
  /**
   * Writes an app's definition and state, and keeps the version in its history. `expect` guards
   * against a concurrent change: 'absent' for a new app, a version for a change of that version.
   */
  putApp(spec: AppSpec, expect?: 'absent' | { version: string }): Promise<void>;
  deleteApp(id: string): Promise<void>;
  /** Past versions, newest first. */
  listVersions(id: string): Promise<{ version: string; def: AppDefinition }[]>;
  setBackoff(id: string, backoff: AppRecord['backoff']): Promise<void>;
  listInstances(): Promise<Instance[]>;
  getInstance(taskId: string): Promise<Instance | undefined>;
  putInstance(i: Instance): Promise<void>;
  deleteInstance(taskId: string): Promise<void>;
  getMeta(): Promise<ServicesMeta>;
  updateMeta(change: Partial<ServicesMeta>): Promise<void>;
}

/** A definition change that lost a race with another (someone deployed meanwhile). */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

const isConditionFailed = (e: unknown) => (e as Error).name === 'ConditionalCheckFailedException';

export class DynamoServicesStore implements ServicesStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private async query(pk: string, newestFirst = false): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
          ScanIndexForward: !newestFirst,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((r.Items ?? []) as Record<string, unknown>[]));
      start = r.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async listApps(): Promise<AppRecord[]> {
    return (await this.query('app')).map(toApp);
  }

  async getApp(id: string): Promise<AppRecord | undefined> {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: 'app', sk: id }, ConsistentRead: true }),
    );
    return r.Item ? toApp(r.Item) : undefined;
  }

  async putApp(spec: AppSpec, expect?: 'absent' | { version: string }): Promise<void> {
    const condition =
      expect === 'absent'
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : expect
          ? {
              ConditionExpression: '#version = :expected',
              ExpressionAttributeValues: { ':expected': expect.version },
            }
          : {};
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: 'app', sk: spec.def.id },
          UpdateExpression:
            'SET #def = :def, #version = :version, #suspended = :suspended, #at = :at, #backoff = if_not_exists(#backoff, :backoff)',
          ...condition,
          ExpressionAttributeNames: {
            '#def': 'def',
            '#version': 'version',
            '#suspended': 'suspended',
            '#at': 'deployedAt',
            '#backoff': 'backoff',
          },
          ExpressionAttributeValues: {
            ...condition.ExpressionAttributeValues,
            ':def': spec.def,
            ':version': spec.version,
            ':suspended': spec.suspended,
            ':at': spec.deployedAt,
            ':backoff': { failures: 0, delayUntil: 0 },
          },
        }),
      );
    } catch (e) {
      if (isConditionFailed(e))
        throw new ConflictError(
          expect === 'absent'
            ? `app ${spec.def.id} exists already`
            : `app ${spec.def.id} changed meanwhile: try again`,
        );
      throw e;
    }
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: `ver#${spec.def.id}`, sk: spec.version, def: spec.def },
      }),
    );
  }

  async deleteApp(id: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'app', sk: id } }));
    for (const v of await this.query(`ver#${id}`))
      await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: v.pk, sk: v.sk } }));
  }

  async listVersions(id: string): Promise<{ version: string; def: AppDefinition }[]> {
    return (await this.query(`ver#${id}`, true)).map((i) => ({
      version: String(i.sk),
      def: i.def as AppDefinition,
    }));
  }

  async setBackoff(id: string, backoff: AppRecord['backoff']): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: 'app', sk: id },
          UpdateExpression: 'SET #b = :b',
          ExpressionAttributeNames: { '#b': 'backoff' },
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':b': backoff },
        }),
      );
    } catch (e) {
      // The app was deleted meanwhile: nothing to back off.
      if (!isConditionFailed(e)) throw e;
    }
  }

  async listInstances(): Promise<Instance[]> {
    return (await this.query('inst')).map((i) => i.instance as Instance);
  }

  async getInstance(taskId: string): Promise<Instance | undefined> {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: 'inst', sk: taskId }, ConsistentRead: true }),
    );
    return r.Item ? (r.Item.instance as Instance) : undefined;
  }

  async putInstance(i: Instance): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { pk: 'inst', sk: i.taskId, instance: i } }),
    );
  }

  async deleteInstance(taskId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'inst', sk: taskId } }));
  }

  async getMeta(): Promise<ServicesMeta> {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: 'meta', sk: 'framework' }, ConsistentRead: true }),
    );
    const { pk: _pk, sk: _sk, ...meta } = r.Item ?? {};
    return meta as ServicesMeta;
  }

  async updateMeta(change: Partial<ServicesMeta>): Promise<void> {
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

function toApp(item: Record<string, unknown>): AppRecord {
  return {
    def: item.def as AppDefinition,
    version: String(item.version),
    suspended: item.suspended === true,
    deployedAt: Number(item.deployedAt ?? 0),
    backoff: (item.backoff as AppRecord['backoff']) ?? { failures: 0, delayUntil: 0 },
  };
}
