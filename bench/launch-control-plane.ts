/**
 * The control plane as `bench/launch.ts` runs it — its real handlers behind the local
 * event-source mappings — with what the bench reads off it: Lambda invocations and handler time
 * per function, and where its store calls and sends go (`detail`: store calls by operation and
 * table, the `meta` items read by key; messages sent by queue and type), so a profile can say
 * which stage of a task's launch makes which calls. Started in its own process by
 * `bench/launch-control.ts`, or in the bench's process with `--control-in-process`.
 */
import type { ClusterConfig } from '../lib/config/cluster.ts';
import { QUEUES, type QueueName, type TableName } from '../lib/definition/tables-queues.ts';
import { startLocalControlPlane } from '../lib/local/control-plane.ts';
import type { Bus } from '../lib/ports/bus.ts';
import type { Item, Store } from '../lib/ports/store.ts';

export interface ControlPlaneTally {
  readonly lambda: Map<string, { invocations: number; ms: number }>;
  readonly detail: Map<string, number>;
}

const add = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

/** Store calls by operation and table (and the meta items read, by key). */
function countingStore(inner: Store, detail: Map<string, number>): Store {
  return {
    get: (t, k) => {
      add(detail, t === 'meta' ? `get meta:${String(k.key)}` : `get ${t}`);
      return inner.get(t, k);
    },
    ...(inner.getMany
      ? {
          getMany: <T extends Item>(t: TableName, keys: readonly Item[]) => {
            add(detail, `getMany ${t}`);
            add(detail, `getMany ${t} items`, keys.length);
            return inner.getMany!<T>(t, keys);
          },
        }
      : {}),
    query: (t, pk, i) => {
      add(detail, `query ${t}`);
      return inner.query(t, pk, i);
    },
    scan: (t) => {
      add(detail, `scan ${t}`);
      return inner.scan(t);
    },
    write: (ops) => {
      const kinds = new Map<string, number>();
      for (const o of ops) add(kinds, `${o.kind} ${o.table}`);
      // A launch's many task rows as one entry: "put tasks×N" with N in tens.
      const what = [...kinds]
        .map(([k, n]) => (n === 1 ? k : `${k}×${n < 10 ? n : `${Math.floor(n / 10)}0+`}`))
        .join(' + ');
      add(detail, ops.length > 1 ? `transaction ${what}` : `write ${what}`);
      return inner.write(ops);
    },
    increment: (k, by) => {
      add(detail, `increment meta:${k}`);
      return inner.increment(k, by);
    },
  };
}

/** Messages sent, by destination and type; and the bus calls (one per ten messages at most). */
function countingBus(inner: Bus, cluster: ClusterConfig, detail: Map<string, number>): Bus {
  const own = new Map(Object.entries(cluster.queues).map(([q, url]) => [url, q]));
  const kind = (url: string) =>
    own.get(url) ?? (url.includes('-fw-') ? 'framework' : url.includes('-agent-') ? 'agent' : 'other');
  return {
    send: async (queueUrl, messages) => {
      const k = kind(queueUrl);
      add(detail, `send-call ${k}`, Math.ceil(messages.length / 10));
      for (const m of messages) {
        let type = '?';
        try {
          type = String((JSON.parse(m.body) as { type?: unknown }).type);
        } catch {}
        add(detail, `message ${k} ${type}`);
      }
      return inner.send(queueUrl, messages);
    },
  };
}

export function startBenchControlPlane(
  cluster: ClusterConfig,
  dlqs: Partial<Record<QueueName, string>>,
  intervalSeconds: number | undefined,
) {
  const tally: ControlPlaneTally = { lambda: new Map(), detail: new Map() };
  const cp = startLocalControlPlane({
    cluster,
    dlqs,
    sweepIntervalMs: 0,
    ...(intervalSeconds !== undefined ? { config: { allocationIntervalSeconds: intervalSeconds } } : {}),
    log: {
      info: () => {},
      warn: () => {},
      error: (m, e) => console.error('[control]', m, JSON.stringify(e)),
    },
    wrap: {
      store: (s) => countingStore(s, tally.detail),
      bus: (b) => countingBus(b, cluster, tally.detail),
    },
    wrapHandlers: (q: QueueName, h) => async (event, context) => {
      const fn = QUEUES[q].consumer;
      const t0 = performance.now();
      try {
        return await h(event, context);
      } finally {
        const l = tally.lambda.get(fn) ?? { invocations: 0, ms: 0 };
        l.invocations++;
        l.ms += performance.now() - t0;
        tally.lambda.set(fn, l);
      }
    },
  });
  return { cp, tally };
}
