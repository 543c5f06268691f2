/**
 * The chaos run's faults in the control plane's own calls — DynamoDB, SQS sends, handler
 * invocations — and in its clients and the agents' network.
 *
 * Injected faults are transient, as real ones are: a message meets them on its first three
 * deliveries at most ({@link Faults.strikes}), so none should reach a dead-letter queue. Every
 * draw comes from the run's seeded generator, in a fixed order, so the same seed injects the same
 * faults at the same calls.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createDynamoClient, DynamoStore } from '../../lib/adapters/dynamo-store.ts';
import { createSqsClient, type SqsApi, SqsBus, sdkSqs } from '../../lib/adapters/sqs.ts';
import { createSqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import type { ClusterConfig } from '../../lib/config/cluster.ts';
import type { SqsHandler } from '../../lib/lambda/lambda.ts';
import type { Bus } from '../../lib/ports/bus.ts';
import { ConditionFailedError, type Store } from '../../lib/ports/store.ts';
import { sleep } from '../common.ts';

/** The run's fault switch, dice and tally. */
export class Faults {
  readonly counts: Record<string, number> = {};
  /** Off once the fault phase ends. */
  on = true;
  /** Sends are slowed until then (a lagging queue). */
  delayUntil = 0;
  /** The delivery attempt of the batch being handled. */
  readonly #attempt = new AsyncLocalStorage<number>();

  constructor(
    readonly random: () => number,
    readonly rate: number,
  ) {}

  count(kind: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
  }

  /** Whether this call meets a fault: faults are on, its message's first 3 deliveries, and the dice say so. */
  strikes(): boolean {
    return this.on && (this.#attempt.getStore() ?? 1) <= 3 && this.random() < this.rate;
  }

  /** Runs a handler invocation as delivery `attempt` of its batch. */
  inDelivery<T>(attempt: number, fn: () => T): T {
    return this.#attempt.run(attempt, fn);
  }
}

/** A store whose calls throttle, conflict, die after their write or lose its answer. */
export function faultyStore(faults: Faults, inner: Store): Store {
  async function call<T>(kind: 'read' | 'write', run: () => Promise<T>): Promise<T> {
    if (faults.strikes()) {
      const r = faults.random();
      if (r < 0.4) {
        faults.count('dynamodb-throttle');
        throw Object.assign(new Error('Throughput exceeds the current capacity (injected)'), {
          name: 'ProvisionedThroughputExceededException',
        });
      }
      if (kind === 'write' && r < 0.6) {
        faults.count('dynamodb-conflict');
        throw new ConditionFailedError('the item changed first (injected)');
      }
      if (kind === 'write' && r < 0.8) {
        await run();
        faults.count('crash-after-write');
        throw new Error('the handler died right after its write (injected)');
      }
      if (kind === 'write') {
        await run();
        faults.count('write-answer-lost');
        throw Object.assign(new Error('the write landed but its answer was lost (injected)'), {
          name: 'TimeoutError',
        });
      }
    }
    return run();
  }
  return {
    get: (t, k) => call('read', () => inner.get(t, k)),
    query: (t, pk, i, f) => call('read', () => inner.query(t, pk, i, f)),
    scan: (t) => call('read', () => inner.scan(t)),
    increment: (k, by) => inner.increment(k, by),
    write: (ops) => call('write', () => inner.write(ops)),
  };
}

/** A bus whose sends fail, get out before their sender dies, go twice, or lag. */
export function faultyBus(faults: Faults, inner: Bus): Bus {
  const { random } = faults;
  return {
    async send(queueUrl, messages) {
      if (Date.now() < faults.delayUntil) {
        faults.count('queue-delay');
        await sleep(50 + random() * 700);
      }
      if (faults.strikes()) {
        const r = random();
        if (r < 0.35) {
          faults.count('sqs-send-fails');
          throw new Error('SQS is unavailable (injected)');
        }
        if (r < 0.6) {
          await inner.send(queueUrl, messages);
          faults.count('crash-after-send');
          throw new Error('the handler died right after its send (injected)');
        }
        if (r < 0.85) {
          faults.count('delivered-twice');
          await inner.send(queueUrl, messages);
          return inner.send(
            queueUrl,
            messages.map((m) => ({ ...m, ...(m.dedupId ? { dedupId: `${m.dedupId}.again` } : {}) })),
          );
        }
        faults.count('slow-send');
        await sleep(100 + random() * 900);
      }
      return inner.send(queueUrl, messages);
    },
  };
}

/** A handler whose invocations time out half-way, crash before starting, or get their batch twice. */
export function faultyHandler(faults: Faults, h: SqsHandler): SqsHandler {
  return (event, context) =>
    faults.inDelivery(
      Math.max(1, ...event.Records.map((r) => Number(r.attributes.ApproximateReceiveCount ?? '1'))),
      async () => {
        if (event.Records.length > 0 && faults.strikes()) {
          const r = faults.random();
          if (r < 0.4) {
            faults.count('invocation-timeout');
            await h({ Records: event.Records.slice(0, Math.ceil(event.Records.length / 2)) }, context);
            throw new Error('Task timed out (injected)');
          }
          if (r < 0.6) {
            faults.count('invocation-crash');
            throw new Error('Runtime exited (injected)');
          }
          faults.count('batch-handled-twice');
          const first = await h(event, context);
          const second = await h(event, context);
          const failed = new Set(
            [...(first?.batchItemFailures ?? []), ...(second?.batchItemFailures ?? [])].map(
              (f) => f.itemIdentifier,
            ),
          );
          return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
        }
        return h(event, context);
      },
    );
}

/**
 * The control plane's AWS clients, which restart() throws away and recreates mid-flight. `store`
 * and `bus` always reach the current ones, without faults.
 */
export class SwappableClients {
  #current: ReturnType<typeof makeClients>;
  readonly store: Store;
  readonly bus: Bus;

  constructor(
    readonly cluster: ClusterConfig,
    readonly faults: Faults,
  ) {
    this.#current = makeClients(cluster);
    this.store = {
      get: (t, k) => this.#current.store.get(t, k),
      query: (t, pk, i, f) => this.#current.store.query(t, pk, i, f),
      scan: (t) => this.#current.store.scan(t),
      increment: (k, by) => this.#current.store.increment(k, by),
      write: (ops) => this.#current.store.write(ops),
    };
    this.bus = { send: (q, m) => this.#current.bus.send(q, m) };
  }

  restart(): void {
    const old = this.#current;
    this.#current = makeClients(this.cluster);
    this.faults.count('client-restart');
    setTimeout(() => old.destroy(), 3_000).unref();
  }

  destroy(): void {
    this.#current.destroy();
  }
}

function makeClients(cluster: ClusterConfig) {
  const dynamo = createDynamoClient(cluster.aws);
  const sqs = createSqsClient(cluster.aws);
  return {
    store: new DynamoStore(dynamo, cluster.tables) as Store,
    bus: new SqsBus(sdkSqs(sqs)) as Bus,
    destroy: () => {
      dynamo.destroy();
      sqs.destroy();
    },
  };
}

/** An SQS client an agent can be cut off with (a network partition). */
export function partitionable(aws: ClusterConfig['aws'], blockDeletes: boolean) {
  const inner = createSqsHttpClient(aws);
  let cut = false;
  const client: SqsApi = {
    async call(op, input, opts) {
      if (cut && (blockDeletes || op !== 'DeleteMessageBatch'))
        throw Object.assign(new Error('network partition (injected)'), { name: 'NetworkingError' });
      return inner.call(op, input, opts);
    },
  };
  return {
    client,
    close: () => inner.close(),
    cut: () => {
      cut = true;
    },
    heal: () => {
      cut = false;
    },
  };
}
export type Net = ReturnType<typeof partitionable>;
