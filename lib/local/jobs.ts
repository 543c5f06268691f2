/**
 * The jobs framework in the local stack: its table and event queue, its handler behind a local
 * event-source mapping (one batch at a time), and a timer for its tick instead of the scheduled
 * rule. Tests pass a clock to run schedules on a test clock.
 */
import { randomUUID } from 'node:crypto';
import { createDynamoClient } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import type { ClusterConfig } from '../config/cluster.ts';
import type { Logger } from '../control/deps.ts';
import { JOBS_FRAMEWORK_ID, type JobsDeps, jobsQueueName } from '../frameworks/jobs/framework.ts';
import { DynamoJobsStore, JOBS_TABLE } from '../frameworks/jobs/store.ts';
import { createJobsHandlers } from '../lambda/jobs.ts';
import { type Clock, systemClock } from '../ports/clock.ts';
import { startEventSource } from './esm-runner.ts';
import { provisionFramework, SERVICES_VISIBILITY_SECONDS } from './services.ts';

export interface LocalJobsOptions {
  readonly cluster: ClusterConfig;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Tick period; default 15 s (cron has minutes). 0: only the tick at start. */
  readonly tickIntervalMs?: number;
  readonly retryDelaySeconds?: number;
}

export interface LocalJobs {
  readonly queueUrl: string;
  readonly table: string;
  readonly deps: JobsDeps;
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export function provisionJobs(cluster: ClusterConfig): Promise<{ table: string; queueUrl: string }> {
  return provisionFramework(cluster, JOBS_TABLE, jobsQueueName(cluster.prefix));
}

export async function startLocalJobs(opts: LocalJobsOptions): Promise<LocalJobs> {
  const { cluster } = opts;
  const { table, queueUrl } = await provisionJobs(cluster);
  const sqs = createSqsClient(cluster.aws);
  const deps: JobsDeps = {
    store: new DynamoJobsStore(createDynamoClient(cluster.aws), table),
    bus: new SqsBus(sdkSqs(sqs)),
    clock: opts.clock ?? systemClock,
    ids: { next: () => randomUUID() },
    log: opts.log,
    config: {
      frameworkId: JOBS_FRAMEWORK_ID,
      name: 'meso-jobs',
      schedulerCallsQueueUrl: cluster.queues.schedulerCalls,
      queueUrl,
    },
  };
  const handlers = createJobsHandlers(() => deps);
  const source = startEventSource({
    client: sqs,
    queueUrl,
    fifo: true,
    batchSize: 10,
    visibilityTimeoutSeconds: SERVICES_VISIBILITY_SECONDS,
    maxReceiveCount: 5,
    concurrency: 1,
    handler: handlers.events,
    functionName: 'meso-jobs',
    ...(opts.retryDelaySeconds !== undefined ? { retryDelaySeconds: opts.retryDelaySeconds } : {}),
    onError: (e) => opts.log.error('jobs event source failed', { error: String(e) }),
  });
  // One tick at a time: a slow one (a loaded machine) must not overlap the next.
  let running: Promise<void> | undefined;
  const tick = async () => {
    while (running) await running;
    running = handlers.tick().catch((e) => opts.log.error('jobs tick failed', { error: String(e) }));
    await running;
    running = undefined;
  };
  await tick();
  const every = opts.tickIntervalMs ?? 15_000;
  const timer = every > 0 ? setInterval(() => void tick(), every) : undefined;
  return {
    queueUrl,
    table,
    deps,
    tick,
    async stop() {
      if (timer) clearInterval(timer);
      await running;
      await source.stop();
      sqs.destroy();
    },
  };
}
