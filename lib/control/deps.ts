/**
 * What the control-plane services need from the outside world. Lambda handlers build this from
 * the environment (`lib/lambda/from-env.ts`); the local stack and tests build it from their own config.
 */
import type { Acls } from '../core/acl.ts';
import { ENV_DEFAULTS } from '../definition/env.ts';
import type { QueueName } from '../definition/tables-queues.ts';
import type { Bus } from '../ports/bus.ts';
import type { Clock, Ids } from '../ports/clock.ts';
import type { Metrics } from '../ports/metrics.ts';
import type { Store } from '../ports/store.ts';

export interface Logger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export interface ControlConfig {
  readonly queues: Readonly<Record<QueueName, string>>;
  /**
   * The deployment's resource prefix. Frameworks' and agents' own queues must be named
   * `<prefix>-fw-*` and `<prefix>-agent-*`: the control plane may send only there.
   */
  readonly prefix: string;
  /** Offers not accepted or declined within this are rescinded (default 60 s). */
  readonly offerTimeoutSeconds: number;
  /** How often agents heartbeat (default 15 s, as Mesos's agent ping interval). */
  readonly heartbeatIntervalSeconds: number;
  /** How often frameworks get a HEARTBEAT event: the sweep's period (default 60 s). */
  readonly frameworkHeartbeatSeconds: number;
  /** Default and ceiling of DECLINE's refuse_seconds. */
  readonly defaultRefuseSeconds: number;
  readonly maxRefuseSeconds: number;
  /** Allocator shards (agents partitioned by id; one FIFO group each). */
  readonly shards: number;
  /**
   * Seconds between two allocation cycles of a shard (Mesos `--allocation_interval`, 1 s): nudges
   * within it make one cycle (lib/control/allocation-interval.ts). 0: every batch of nudges runs one.
   */
  readonly allocationIntervalSeconds: number;
  /**
   * Heartbeat intervals an agent may miss before it is UNREACHABLE (Mesos
   * `--max_agent_ping_timeouts`, 5): 5 × 15 s = 75 s.
   */
  readonly agentPingTimeouts: number;
  /**
   * Seconds an agent stays UNREACHABLE before it is GONE and its tasks TASK_GONE (Mesos keeps
   * unreachable agents in its registry for `--registry_max_agent_age`, two weeks).
   */
  readonly agentUnreachableTimeoutSeconds: number;
  /** Framework heartbeat periods a framework may stay silent before it is DISCONNECTED (default 3). */
  readonly frameworkPingTimeouts: number;
  /** The sweep's period (default 60 s): liveness deadlines before the next sweep get a timer. */
  readonly sweepIntervalSeconds: number;
  /**
   * The ACLs that apply while an operator has stored none (lib/control/acl-store.ts). Absent:
   * open, as a dev stack; a deployed stack's functions read a closed default from their
   * environment (`aclDefaultFromEnv`).
   */
  readonly acls?: Acls;
  /** Framework ids, and agent ids, one identity may create (default 100; lib/control/id-quota.ts). */
  readonly maxIdsPerIdentity?: number;
  /**
   * Seconds an ended task's row is kept before DynamoDB's TTL purges it (default 7 days; at least
   * an hour): see lib/core/task-retention.ts.
   */
  readonly taskRetentionSeconds: number;
}

export const DEFAULT_CONTROL_CONFIG: Omit<ControlConfig, 'queues'> = {
  prefix: ENV_DEFAULTS.prefix,
  offerTimeoutSeconds: ENV_DEFAULTS.offerTimeoutSeconds,
  heartbeatIntervalSeconds: ENV_DEFAULTS.heartbeatIntervalSeconds,
  frameworkHeartbeatSeconds: 60,
  defaultRefuseSeconds: 5,
  maxRefuseSeconds: 31_536_000,
  shards: ENV_DEFAULTS.allocatorShards,
  allocationIntervalSeconds: ENV_DEFAULTS.allocationIntervalSeconds,
  agentPingTimeouts: 5,
  agentUnreachableTimeoutSeconds: 14 * 86_400,
  frameworkPingTimeouts: 3,
  sweepIntervalSeconds: 60,
  taskRetentionSeconds: ENV_DEFAULTS.taskRetentionSeconds,
};

export interface ControlDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly clock: Clock;
  readonly ids: Ids;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly config: ControlConfig;
}

/** One inbound SQS message, as the services see it (Lambda record or local runner alike). */
export interface InboundRecord {
  readonly messageId: string;
  readonly body: string;
  /** SQS SenderId: the IAM identity (or account) that sent the message. */
  readonly senderId: string;
  readonly receiveCount: number;
  /** The queue it came from (its ARN, or its name locally). */
  readonly source?: string;
  /** Its FIFO MessageGroupId (absent on a standard queue): checked against the id the call names. */
  readonly groupId?: string;
}

export const consoleLogger: Logger = {
  info: (m, e) => console.error(JSON.stringify({ level: 'INFO', message: m, ...e })),
  warn: (m, e) => console.error(JSON.stringify({ level: 'WARN', message: m, ...e })),
  error: (m, e) => console.error(JSON.stringify({ level: 'ERROR', message: m, ...e })),
};
