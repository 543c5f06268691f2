/**
 * Fault injection for the fault-tolerance tests: an SQS client an agent can be cut off with (a
 * network partition, both ways), that can hold back its REGISTER calls (a stale re-registration),
 * bus/store wrappers that fail the control plane at chosen points, and a forced re-registration.
 */
import type { AwsConfig } from '../../lib/adapters/aws-config.ts';
import type { SqsApi } from '../../lib/adapters/sqs-api.ts';
import { createSqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import type { Bus } from '../../lib/ports/bus.ts';
import type { Store } from '../../lib/ports/store.ts';
import type { Harness } from './harness.ts';

export interface Net {
  readonly client: SqsApi;
  /** Every call fails from now on, as if the node lost its network. */
  cut(): void;
  heal(): void;
  /** REGISTER sends wait until `release()` (the control plane sees a stale REGISTER). */
  holdRegisters(): void;
  release(): void;
  readonly held: number;
}

export function partitionable(aws: AwsConfig): Net {
  const inner = createSqsHttpClient(aws);
  let cut = false;
  let hold = false;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let held = 0;
  const client: SqsApi = {
    async call(op, input, opts) {
      if (cut) throw Object.assign(new Error('network partition (injected)'), { name: 'NetworkingError' });
      const entries = (input as { Entries?: { MessageBody?: string }[] }).Entries;
      if (hold && entries?.some((e) => e.MessageBody?.includes('"type":"REGISTER"'))) {
        held++;
        gate ??= (() => {
          let open = () => {};
          const promise = new Promise<void>((r) => {
            open = r;
          });
          return { promise, open };
        })();
        await gate.promise;
      }
      return inner.call(op, input, opts);
    },
  };
  return {
    client,
    cut: () => {
      cut = true;
    },
    heal: () => {
      cut = false;
    },
    holdRegisters: () => {
      hold = true;
    },
    release: () => {
      hold = false;
      gate?.open();
      gate = undefined;
    },
    get held() {
      return held;
    },
  };
}

/** A bus that drops the messages `drop` picks (a lost SQS message), counting them. */
export function droppingBus(inner: Bus, drop: (queueUrl: string, body: Record<string, unknown>) => boolean) {
  const dropped: Record<string, unknown>[] = [];
  const bus: Bus = {
    async send(queueUrl, messages) {
      const keep = messages.filter((m) => {
        const body = JSON.parse(m.body) as Record<string, unknown>;
        if (drop(queueUrl, body)) {
          dropped.push(body);
          return false;
        }
        return true;
      });
      if (keep.length > 0) await inner.send(queueUrl, keep);
    },
  };
  return { bus, dropped };
}

/** A store whose calls `fault` may make throw, before or after the write happened. */
export function faultyStore(
  inner: Store,
  fault: (
    op: 'get' | 'query' | 'scan' | 'write' | 'increment',
    detail: unknown,
  ) => 'before' | 'after' | undefined,
  makeError: (when: 'before' | 'after') => Error,
): Store {
  const guard = async <T>(
    op: 'get' | 'query' | 'scan' | 'write' | 'increment',
    detail: unknown,
    run: () => Promise<T>,
  ) => {
    const when = fault(op, detail);
    if (when === 'before') throw makeError('before');
    const out = await run();
    if (when === 'after') throw makeError('after');
    return out;
  };
  return {
    get: (t, k) => guard('get', { t, k }, () => inner.get(t, k)),
    query: (t, pk, i, f) => guard('query', { t, pk }, () => inner.query(t, pk, i, f)),
    scan: (t) => guard('scan', { t }, () => inner.scan(t)),
    write: (ops) => guard('write', ops, () => inner.write(ops)),
    increment: (k, by) => guard('increment', { k }, () => inner.increment(k, by)),
  };
}

/** Tells an agent to register again (what the registry does when it finds it unreachable). */
export async function forceReregistration(h: Harness, agentId: string): Promise<void> {
  const agent = h.agents.find((a) => a.agentId === agentId)!;
  const registered = new Promise<void>((resolve) => agent.once('registered', () => resolve()));
  await h.controlPlane.deps.bus.send(agent.queueUrl, [
    {
      body: JSON.stringify({ v: 1, type: 'REREGISTER', agentId, reason: 'test' }),
      groupId: 'control',
      dedupId: `rereg-${Date.now()}-${Math.random()}`,
    },
  ]);
  await registered;
}
