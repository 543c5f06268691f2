/**
 * The one definition of Meso's tables and queues. The CDK constructs (`lib/infra/cdk/`) and the
 * local stack (`lib/local/`) both create their resources from this, so they cannot drift apart.
 */

export interface TableDef {
  /** Logical name; the physical name is `${prefix}-${name}`. */
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly indexes?: readonly IndexDef[];
  readonly ttlAttribute?: string;
  /**
   * An attribute the store sets to the write's time on every write that bumps an item's
   * `version` (not on a heartbeat's version-free patch), so an index on it lists what changed
   * since a given time (lib/control/agent-view.ts).
   */
  readonly changedAtAttribute?: string;
}

export interface IndexDef {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey?: string;
  /** Key attributes are numbers (default: strings). */
  readonly numericKeys?: boolean;
  /**
   * Only the keys and these attributes are copied into the index (DynamoDB's INCLUDE
   * projection); absent, the whole item is (ALL). Each write copies what is projected, so a
   * small projection keeps an index on a large, often written item to one write unit a write.
   */
  readonly include?: readonly string[];
}

export interface QueueDef {
  /** Logical name; the physical name is `${prefix}-cp-${name}` (plus `.fifo` for FIFO queues). */
  readonly name: string;
  readonly fifo: boolean;
  readonly visibilityTimeoutSeconds: number;
  /** Deliveries before a message moves to the queue's dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly retentionSeconds: number;
  /** The Lambda function (by logical name) that consumes this queue. */
  readonly consumer: FunctionName;
  /** Records per Lambda invocation. */
  readonly batchSize: number;
}

export type FunctionName = 'registry' | 'allocator' | 'timers';

export const TABLES = {
  agents: {
    name: 'agents',
    partitionKey: 'agentId',
    changedAtAttribute: 'changedAt',
    /** The agents of a shard that changed since a time: what an allocation cycle reads. */
    // Keys and version only: the allocator reads the records that changed, consistently.
    indexes: [
      {
        name: 'byChange',
        partitionKey: 'shard',
        sortKey: 'changedAt',
        numericKeys: true,
        include: ['version'],
      },
    ],
  },
  frameworks: { name: 'frameworks', partitionKey: 'frameworkId' },
  tasks: {
    name: 'tasks',
    partitionKey: 'frameworkId',
    sortKey: 'taskId',
    /**
     * An agent's task rows, for the few rows its liveness transition cannot find in its ledger
     * (lib/control/liveness.ts), which reads the rows themselves. It projects the keys and
     * `createdAt`, which only the row's first write sets: with the whole row projected every
     * status write wrote the index too, a second write unit each (docs/architecture.md).
     */
    indexes: [{ name: 'byAgent', partitionKey: 'agentId', sortKey: 'taskId', include: ['createdAt'] }],
    /** Epoch seconds after which DynamoDB deletes a finished task's record (its environment with it). */
    ttlAttribute: 'purgeAt',
  },
  /** Counters, cluster settings and later roles/quotas: small items keyed by `key`. */
  meta: { name: 'meta', partitionKey: 'key' },
} as const satisfies Record<string, TableDef>;

export type TableName = keyof typeof TABLES;

export const QUEUES = {
  schedulerCalls: {
    name: 'scheduler-calls',
    fifo: true,
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 5,
    retentionSeconds: 4 * 86400,
    consumer: 'registry',
    batchSize: 10,
  },
  agentCalls: {
    name: 'agent-calls',
    fifo: true,
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 5,
    retentionSeconds: 4 * 86400,
    consumer: 'registry',
    batchSize: 10,
  },
  allocator: {
    name: 'allocator',
    fifo: true,
    visibilityTimeoutSeconds: 120,
    maxReceiveCount: 5,
    retentionSeconds: 86400,
    consumer: 'allocator',
    batchSize: 10,
  },
  timers: {
    name: 'timers',
    fifo: false,
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 5,
    retentionSeconds: 86400,
    consumer: 'timers',
    batchSize: 10,
  },
} as const satisfies Record<string, QueueDef>;

export type QueueName = keyof typeof QUEUES;

export function tableName(prefix: string, def: TableDef): string {
  return `${prefix}-${def.name}`;
}

/**
 * Control-plane queues are `<prefix>-cp-<name>[.fifo]`: a namespace no framework (`<prefix>-fw-*`)
 * or agent (`<prefix>-agent-*`) queue name, and no IAM wildcard granted to them, can reach.
 */
export function queueName(prefix: string, def: Pick<QueueDef, 'name' | 'fifo'>): string {
  return `${prefix}-cp-${def.name}${def.fifo ? '.fifo' : ''}`;
}

export function dlqName(prefix: string, def: Pick<QueueDef, 'name' | 'fifo'>): string {
  return `${prefix}-cp-${def.name}-dlq${def.fifo ? '.fifo' : ''}`;
}

export const DEFAULT_PREFIX = 'meso';
