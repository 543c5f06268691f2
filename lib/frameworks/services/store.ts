/**
 * Where the services framework keeps its state: one DynamoDB table, `<prefix>-services`
 * (partition `pk`, sort `sk`). Apps are `pk=app, sk=<id>`, their past versions
 * `pk=ver#<id>, sk=<version>`, instances `pk=inst, sk=<taskId>`, the framework's own state
 * `pk=meta, sk=framework`. The CLI writes definitions; the framework's handler writes instances,
 * backoffs and its state — each with an update that touches only its own attributes, so a deploy
 * and a crash counted at the same moment do not overwrite each other.
 */
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { FrameworkMeta } from '../host/meta.ts';
import { FrameworkTable, frameworkTable, isConditionFailed } from '../host/table.ts';
import type { AppDefinition, AppRecord } from './app.ts';
import type { Instance } from './instance.ts';

export const SERVICES_TABLE = frameworkTable('services');

/** The framework's own state. */
export type ServicesMeta = FrameworkMeta;

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
  /** Notes that the app's deployment progressed at `at` (nothing when the app is gone). */
  setProgress(id: string, at: number): Promise<void>;
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

export class DynamoServicesStore extends FrameworkTable implements ServicesStore {
  async listApps(): Promise<AppRecord[]> {
    return (await this.query('app')).map(toApp);
  }

  async getApp(id: string): Promise<AppRecord | undefined> {
    const item = await this.item('app', id);
    return item ? toApp(item) : undefined;
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
    return (await this.query(`ver#${id}`, { newestFirst: true })).map((i) => ({
      version: String(i.sk),
      def: i.def as AppDefinition,
    }));
  }

  async setBackoff(id: string, backoff: AppRecord['backoff']): Promise<void> {
    await this.setAppAttribute(id, 'backoff', backoff);
  }

  async setProgress(id: string, at: number): Promise<void> {
    await this.setAppAttribute(id, 'progressAt', at);
  }

  /** Sets one attribute the framework owns on an app; nothing when the app was deleted meanwhile. */
  private async setAppAttribute(id: string, name: string, value: unknown): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: 'app', sk: id },
          UpdateExpression: 'SET #a = :v',
          ExpressionAttributeNames: { '#a': name },
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':v': value },
        }),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }

  async listInstances(): Promise<Instance[]> {
    return (await this.query('inst')).map((i) => i.instance as Instance);
  }

  async getInstance(taskId: string): Promise<Instance | undefined> {
    return (await this.item('inst', taskId))?.instance as Instance | undefined;
  }

  async putInstance(i: Instance): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { pk: 'inst', sk: i.taskId, instance: i } }),
    );
  }

  async deleteInstance(taskId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'inst', sk: taskId } }));
  }
}

function toApp(item: Record<string, unknown>): AppRecord {
  return {
    def: item.def as AppDefinition,
    version: String(item.version),
    suspended: item.suspended === true,
    deployedAt: Number(item.deployedAt ?? 0),
    backoff: (item.backoff as AppRecord['backoff']) ?? { failures: 0, delayUntil: 0 },
    ...(typeof item.progressAt === 'number' ? { progressAt: item.progressAt } : {}),
  };
}
