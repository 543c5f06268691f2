/**
 * Allocator shards: agents partitioned by id, one cycle per shard. Over the in-memory store,
 * shards running at the same time (and a shard racing itself) never spend the same resources —
 * every offer is a conditional write on its agent's version; against the emulators, a cluster
 * with 2 shards offers every agent, each from its own shard's cycle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory-store.ts';
import { buildAllocationInput, readCycleRecords, runAllocationCycle } from '../../lib/control/allocation.ts';
import { type ControlDeps, DEFAULT_CONTROL_CONFIG } from '../../lib/control/deps.ts';
import { shardOf } from '../../lib/control/emit.ts';
import { setRole } from '../../lib/control/roles.ts';
import { agentFree } from '../../lib/core/ledger.ts';
import type { AgentRecord, FrameworkRecord } from '../../lib/core/model.ts';
import { add, contains, EMPTY, parse } from '../../lib/core/resources.ts';
import type { Bus } from '../../lib/ports/bus.ts';
import type { Item } from '../../lib/ports/store.ts';
import { type Harness, startHarness } from './harness.ts';

const QUEUES = { schedulerCalls: 'q-s', agentCalls: 'q-a', allocator: 'q-alloc', timers: 'q-t' };

function memoryDeps(shards: number): {
  deps: ControlDeps;
  store: MemoryStore;
  sent: { url: string; body: string }[];
} {
  const store = new MemoryStore();
  const sent: { url: string; body: string }[] = [];
  const bus: Bus = {
    async send(url, messages) {
      for (const m of messages) sent.push({ url, body: m.body });
    },
  };
  let n = 0;
  return {
    store,
    sent,
    deps: {
      store,
      bus,
      clock: { now: () => 1_000_000 },
      ids: { next: () => `id${n++}` },
      metrics: { count: () => {} },
      log: { info: () => {}, warn: () => {}, error: () => {} },
      config: { ...DEFAULT_CONTROL_CONFIG, queues: QUEUES, shards },
    },
  };
}

const agentRecord = (agentId: string, shards: number): AgentRecord => ({
  agentId,
  principal: 'p',
  hostname: agentId,
  queueUrl: `http://x/meso-agent-${agentId}.fifo`,
  total: parse('cpus:4;mem:4096'),
  attributes: {},
  status: 'ACTIVE',
  offers: {},
  tasks: {},
  registeredAt: 0,
  lastSeenAt: 0,
  shard: shardOf(agentId, shards),
  version: 0,
});

const frameworkRecord = (frameworkId: string, roles: string[]): FrameworkRecord => ({
  frameworkId,
  principal: 'p',
  name: frameworkId,
  roles,
  queueUrl: `http://x/meso-fw-${frameworkId}.fifo`,
  status: 'ACTIVE',
  failoverTimeoutSeconds: 0,
  partitionAware: false,
  filters: {},
  subscribedAt: 0,
  version: 0,
});

describe('allocator shards over the in-memory store', () => {
  it('each shard offers only its own agents, and concurrent cycles never over-commit an agent', async () => {
    const shards = 3;
    const { deps, store } = memoryDeps(shards);
    const ids = Array.from({ length: 30 }, (_, i) => `agent-${i}`);
    for (const id of ids)
      await store.write([
        { kind: 'put', table: 'agents', item: agentRecord(id, shards) as unknown as Item, expect: 'absent' },
      ]);
    for (const f of ['f1', 'f2', 'f3'])
      await store.write([
        {
          kind: 'put',
          table: 'frameworks',
          item: frameworkRecord(f, [f === 'f3' ? 'b' : 'a']) as unknown as Item,
          expect: 'absent',
        },
      ]);
    await setRole(store, 'a', { weight: 2, limit: { cpus: 40_000 } }, 0);

    // Every shard at once (a shard's own cycles are serialized by its FIFO group), twice.
    const reports = [
      ...(await Promise.all([0, 1, 2].map((s) => runAllocationCycle(deps, s)))),
      ...(await Promise.all([0, 1, 2].map((s) => runAllocationCycle(deps, s)))),
    ];
    const agents = await store.scan<AgentRecord & Item>('agents');
    for (const a of agents) {
      // agentFree throws if offers exceed the total.
      expect(contains(a.total, agentFree(a))).toBe(true);
      expect(Object.keys(a.offers).length).toBeGreaterThan(0);
    }
    const offered = reports.reduce((n, r) => n + r.offers, 0);
    expect(offered).toBe(agents.reduce((n, a) => n + Object.keys(a.offers).length, 0));
    // The limit on role `a` holds across shards: each shard counts the others' offers.
    let aCpus = 0;
    for (const a of agents)
      for (const o of Object.values(a.offers)) if (o.role === 'a') aCpus += o.resources.cpus;
    expect(aCpus).toBeLessThanOrEqual(40_000);
    // A shard's input holds only its agents, while shares and totals are cluster-wide.
    const records = await readCycleRecords(deps);
    const input = buildAllocationInput(records, { now: 0, shard: 1, shards });
    expect(input.agents.every((a) => shardOf(a.agentId, shards) === 1)).toBe(true);
    expect(input.total).toEqual(agents.reduce((r, a) => add(r, a.total), EMPTY));
  });
});

describe('allocator shards on the emulators', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 4, control: { shards: 2 } });
  });
  afterAll(async () => h?.stop());

  it('offers every agent, each from its own shard, with exact accounting', async () => {
    const { s, r } = await h.framework({ name: 'sharded' });
    await r.until(() => new Set(r.offers.map((o) => o.agentId)).size === 4);
    const rows = await h.controlPlane.deps.store.scan<AgentRecord & Item>('agents');
    expect(new Set(rows.map((a) => a.shard)).size).toBeGreaterThanOrEqual(1);
    for (const a of rows) expect(a.shard).toBe(shardOf(a.agentId, 2));
    expect(h.violations).toEqual([]);
    await s.teardown();
  });
});
