/**
 * The control plane in-process: the same handlers the Lambda functions export, driven by local
 * event-source-mapping runners (one per queue, with Lambda's SQS semantics) and a timer for the
 * minute-level sweep. Used by `meso dev` and by the integration tests.
 */
import { randomUUID } from 'node:crypto';
import { createDynamoClient, DynamoStore } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import {
  type ControlConfig,
  type ControlDeps,
  DEFAULT_CONTROL_CONFIG,
  type Logger,
} from '../control/deps.ts';
import { QUEUES, type QueueName } from '../definition/tables-queues.ts';
import { createHandlers, type Handlers } from '../lambda/handlers.ts';
import type { SqsHandler } from '../lambda/lambda.ts';
import type { Bus } from '../ports/bus.ts';
import { type Clock, systemClock } from '../ports/clock.ts';
import type { Metrics } from '../ports/metrics.ts';
import type { Store } from '../ports/store.ts';
import { startEventSource } from './esm-runner.ts';

export interface LocalControlPlaneOptions {
  readonly cluster: ClusterConfig;
  readonly dlqs?: Partial<Record<QueueName, string>>;
  readonly config?: Partial<Omit<ControlConfig, 'queues'>>;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Wraps the store and bus, e.g. to inject faults or count calls in tests. */
  readonly wrap?: { store?: (s: Store) => Store; bus?: (b: Bus) => Bus };
  /** Sweep period; default 60 s. 0 disables it. */
  readonly sweepIntervalMs?: number;
  /** Hands every batch to its handler twice (tests: redelivery must change nothing). */
  readonly deliverTwice?: boolean;
  /** Wraps each queue's handler, e.g. to make invocations fail or time out (the chaos run). */
  readonly wrapHandlers?: (queue: QueueName, handler: SqsHandler) => SqsHandler;
  /** Seconds before a failed record is retried (Lambda waits for the visibility timeout). */
  readonly retryDelaySeconds?: number;
}

export interface LocalControlPlane {
  readonly deps: ControlDeps;
  /** Counters gathered by the in-process metrics (what CloudWatch would get in AWS). */
  readonly counters: Map<string, number>;
  readonly handlers: Handlers;
  stop(): Promise<void>;
}

export const quietLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

export function countingMetrics(counters: Map<string, number>): Metrics {
  return {
    count(name, dimensions, value = 1) {
      const key =
        dimensions && Object.keys(dimensions).length
          ? `${name}{${Object.entries(dimensions)
              .map(([k, v]) => `${k}=${v}`)
              .join(',')}}`
          : name;
      counters.set(key, (counters.get(key) ?? 0) + value);
      if (key !== name) counters.set(name, (counters.get(name) ?? 0) + value);
    },
  };
}

export function startLocalControlPlane(opts: LocalControlPlaneOptions): LocalControlPlane {
  const { cluster } = opts;
  const sqs = createSqsClient(cluster.aws);
  const counters = new Map<string, number>();
  const baseStore = new DynamoStore(createDynamoClient(cluster.aws), cluster.tables);
  const baseBus = new SqsBus(sdkSqs(sqs));
  const sweepMs = opts.sweepIntervalMs ?? 60_000;
  const deps: ControlDeps = {
    store: opts.wrap?.store ? opts.wrap.store(baseStore) : baseStore,
    bus: opts.wrap?.bus ? opts.wrap.bus(baseBus) : baseBus,
    clock: opts.clock ?? systemClock,
    ids: { next: () => randomUUID() },
    metrics: countingMetrics(counters),
    log: opts.log ?? quietLogger,
    config: {
      ...DEFAULT_CONTROL_CONFIG,
      // Liveness timers cover deadlines that fall before the next sweep: tell them its period.
      ...(sweepMs > 0 ? { sweepIntervalSeconds: sweepMs / 1000 } : {}),
      ...opts.config,
      prefix: cluster.prefix,
      queues: cluster.queues,
    },
  };
  const handlers = createHandlers(() => deps);
  const twice =
    (h: SqsHandler): SqsHandler =>
    async (event, context) => {
      const first = await h(event, context);
      const second = await h(event, context);
      const failed = new Set(
        [...first.batchItemFailures, ...second.batchItemFailures].map((f) => f.itemIdentifier),
      );
      return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
    };
  const wrapHandler = opts.deliverTwice ? twice : (h: SqsHandler) => h;
  const outer = opts.wrapHandlers ?? ((_q: QueueName, h: SqsHandler) => h);
  const consumers: Record<QueueName, SqsHandler> = {
    schedulerCalls: outer('schedulerCalls', wrapHandler(handlers.registry)),
    agentCalls: outer('agentCalls', wrapHandler(handlers.registry)),
    allocator: outer('allocator', wrapHandler(handlers.allocator)),
    timers: outer('timers', wrapHandler(handlers.timers)),
  };
  const sources = (Object.keys(QUEUES) as QueueName[]).map((q) => {
    const def = QUEUES[q];
    return startEventSource({
      client: sqs,
      queueUrl: cluster.queues[q],
      dlqUrl: opts.dlqs?.[q],
      fifo: def.fifo,
      batchSize: def.batchSize,
      visibilityTimeoutSeconds: def.visibilityTimeoutSeconds,
      maxReceiveCount: def.maxReceiveCount,
      handler: consumers[q],
      ...(opts.retryDelaySeconds !== undefined ? { retryDelaySeconds: opts.retryDelaySeconds } : {}),
      onError: (e: unknown) => deps.log.error(`event source ${def.name} failed`, { error: String(e) }),
    });
  });
  // One sweep at a time: a tick that finds the last one still running is skipped. On a loaded
  // machine a sweep can take longer than a short period (the tests' 1 s), and overlapping sweeps
  // then pile up — each slower for the others, every handler in the process slower with them,
  // until an agent's silence takes several times its ping timeout to be noticed. A scheduled
  // Lambda sweep runs once a minute and takes well under that.
  let sweeping = false;
  const sweep =
    sweepMs > 0
      ? setInterval(() => {
          if (sweeping) {
            deps.metrics.count('SweepsSkipped');
            return;
          }
          sweeping = true;
          void handlers
            .sweep()
            .catch((e) => deps.log.error('sweep failed', { error: String(e) }))
            .finally(() => {
              sweeping = false;
            });
        }, sweepMs)
      : undefined;
  return {
    deps,
    counters,
    handlers,
    async stop() {
      if (sweep) clearInterval(sweep);
      await Promise.all(sources.map((s) => s.stop()));
      sqs.destroy();
    },
  };
}
