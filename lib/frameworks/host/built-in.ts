/**
 * A built-in framework as its hosts see it — the Lambda wiring (lib/lambda/framework-host.ts),
 * the local stack (lib/local/framework-host.ts), the CLI's connection (lib/cli/framework-host.ts)
 * and the CDK construct: its id, its table, its event queue, how to open its store over that
 * table, how it handles a message and a tick, and the notice the CLI sends after a change.
 * Everything else about a framework is its own logic.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TableDef } from '../../definition/tables-queues.ts';
import type { FrameworkDeps, MetaStore } from './framework.ts';

export interface BuiltInFramework<S extends MetaStore> {
  /** `meso-services`: the id it subscribes with; names its queue. */
  readonly frameworkId: string;
  /** `services`: names its table, function, log lines and environment variables. */
  readonly name: string;
  readonly table: TableDef & { readonly sortKey: string };
  /** Its event queue's name under a cluster prefix. */
  readonly queueName: (prefix: string) => string;
  readonly openStore: (doc: DynamoDBDocumentClient, table: string) => S;
  /** Handles one message of its queue; throws only when it should be retried. */
  readonly handle: (deps: FrameworkDeps<S>, messageId: string, body: string) => Promise<void>;
  /** The periodic tick (a scheduled rule, a timer locally). */
  readonly tick: (deps: FrameworkDeps<S>) => Promise<void>;
  /** The notice the CLI sends after changing what the framework runs. */
  readonly changedMessage: (id?: string) => string;
}

/** The environment variables naming its table and queue in its function (`MESO_SERVICES_TABLE`, …). */
export function builtInEnv(name: string): { readonly table: string; readonly queueUrl: string } {
  const key = name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return { table: `MESO_${key}_TABLE`, queueUrl: `MESO_${key}_QUEUE_URL` };
}
