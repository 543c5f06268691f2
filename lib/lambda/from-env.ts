/** Builds the control plane's dependencies inside Lambda, from the environment the CDK stack sets. */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { createDynamoClient, DynamoStore } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import { aclDefaultFromEnv } from '../control/acl-store.ts';
import { type ControlDeps, DEFAULT_CONTROL_CONFIG } from '../control/deps.ts';
import { ENV, ENV_DEFAULTS } from '../definition/env.ts';
import { QUEUES, type QueueName, TABLES, type TableName } from '../definition/tables-queues.ts';
import { systemClock } from '../ports/clock.ts';
import type { Metrics } from '../ports/metrics.ts';

/** An environment variable the function cannot run without. */
export function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

const num = (v: string | undefined, d: number) => (v && Number.isFinite(Number(v)) ? Number(v) : d);

export interface EnvDeps extends ControlDeps {
  /** Publishes the metrics gathered during one invocation (EMF to the log). */
  readonly flush: () => void;
}

export function depsFromEnv(env: NodeJS.ProcessEnv = process.env): EnvDeps {
  const tables = Object.fromEntries(
    Object.keys(TABLES).map((t) => [t, required(env, ENV.tables(t as TableName))]),
  ) as Record<TableName, string>;
  const queues = Object.fromEntries(
    Object.keys(QUEUES).map((q) => [q, required(env, ENV.queues(q as QueueName))]),
  ) as Record<QueueName, string>;
  const logger = new Logger();
  const pm = new PowertoolsMetrics({ namespace: env[ENV.metricsNamespace] || ENV_DEFAULTS.metricsNamespace });
  const metrics: Metrics = {
    count(name, dimensions, value = 1) {
      if (!dimensions || Object.keys(dimensions).length === 0)
        return pm.addMetric(name, MetricUnit.Count, value);
      const single = pm.singleMetric();
      for (const [k, v] of Object.entries(dimensions)) single.addDimension(k, v);
      single.addMetric(name, MetricUnit.Count, value);
    },
    measure(name, value, unit, dimensions) {
      const u = MetricUnit[unit];
      if (!dimensions || Object.keys(dimensions).length === 0) return pm.addMetric(name, u, value);
      const single = pm.singleMetric();
      for (const [k, v] of Object.entries(dimensions)) single.addDimension(k, v);
      single.addMetric(name, u, value);
    },
  };
  return {
    store: new DynamoStore(createDynamoClient(), tables),
    bus: new SqsBus(sdkSqs(createSqsClient())),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    metrics,
    log: loggerPort(logger),
    config: {
      ...DEFAULT_CONTROL_CONFIG,
      queues,
      prefix: env[ENV.prefix] || DEFAULT_CONTROL_CONFIG.prefix,
      offerTimeoutSeconds: num(env[ENV.offerTimeoutSeconds], DEFAULT_CONTROL_CONFIG.offerTimeoutSeconds),
      heartbeatIntervalSeconds: num(
        env[ENV.heartbeatIntervalSeconds],
        DEFAULT_CONTROL_CONFIG.heartbeatIntervalSeconds,
      ),
      shards: num(env[ENV.allocatorShards], DEFAULT_CONTROL_CONFIG.shards),
      // Closed unless MESO_ACL_PERMISSIVE=true, but for the grants in MESO_ACL.
      acls: aclDefaultFromEnv(env),
      ...(env[ENV.maxIdsPerIdentity] ? { maxIdsPerIdentity: num(env[ENV.maxIdsPerIdentity], 100) } : {}),
      taskRetentionSeconds: num(env[ENV.taskRetentionSeconds], DEFAULT_CONTROL_CONFIG.taskRetentionSeconds),
      allocationIntervalSeconds: num(
        env[ENV.allocationIntervalSeconds],
        DEFAULT_CONTROL_CONFIG.allocationIntervalSeconds,
      ),
    },
    flush: () => pm.publishStoredMetrics(),
  };
}

let cached: EnvDeps | undefined;
/** One set of clients per Lambda container, created on first use. */
export const lambdaDeps = (): EnvDeps => {
  cached ??= depsFromEnv();
  return cached;
};

/** The Logger port over a Powertools logger. */
export function loggerPort(logger: Logger): ControlDeps['log'] {
  return {
    info: (m, e) => logger.info(m, e ?? {}),
    warn: (m, e) => logger.warn(m, e ?? {}),
    error: (m, e) => logger.error(m, e ?? {}),
  };
}
