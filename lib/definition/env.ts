/**
 * The environment variables through which the control-plane functions learn their tables, queues
 * and settings, with the defaults that apply when one is not set. The one list: the CDK construct
 * (`lib/infra/cdk/control-plane.ts`) writes them, `lib/lambda/from-env.ts` reads them, and
 * clients (`lib/config/cluster.ts`, the agent) take the cluster's queues from the same names.
 */
import { DEFAULT_PREFIX, type QueueName, type TableName } from './tables-queues.ts';

export const ENV = {
  prefix: 'MESO_PREFIX',
  tables: (t: TableName) => `MESO_TABLE_${t.toUpperCase()}`,
  queues: (q: QueueName) => `MESO_QUEUE_${q.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`,
  /** Seconds an offer stays valid before it is rescinded (Mesos `--offer_timeout`). */
  offerTimeoutSeconds: 'MESO_OFFER_TIMEOUT_SECONDS',
  /** Seconds between agent heartbeats. */
  heartbeatIntervalSeconds: 'MESO_HEARTBEAT_INTERVAL_SECONDS',
  /** Allocator shards (agents partitioned by id; one FIFO message group each). */
  allocatorShards: 'MESO_ALLOCATOR_SHARDS',
  /** `true`: allow what no ACL rule refuses (a dev stack). Anything else, or unset: closed. */
  aclPermissive: 'MESO_ACL_PERMISSIVE',
  /** The deployer's grants: an ACL document (Mesos's JSON), used while no `acl` item is stored. */
  acl: 'MESO_ACL',
  /** Framework ids, and agent ids, one identity (SQS SenderId) may create (default 100). */
  maxIdsPerIdentity: 'MESO_MAX_IDS_PER_IDENTITY',
  /** Seconds a task's row is kept after the task ended (its `purgeAt`, lib/core/task-retention.ts). */
  taskRetentionSeconds: 'MESO_TASK_RETENTION_SECONDS',
  /** Seconds between allocation cycles of a shard (Mesos `--allocation_interval`). */
  allocationIntervalSeconds: 'MESO_ALLOCATION_INTERVAL_SECONDS',
  /** CloudWatch namespace of the functions' Powertools metrics. */
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
} as const;

/** What a setting is when its variable is not set. */
export const ENV_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  offerTimeoutSeconds: 60,
  /** ≈ $0.19 per agent-month through FIFO SQS (docs/architecture.md). */
  heartbeatIntervalSeconds: 15,
  allocatorShards: 1,
  /** 7 days. */
  taskRetentionSeconds: 7 * 86_400,
  allocationIntervalSeconds: 1,
  metricsNamespace: 'Meso',
} as const;
