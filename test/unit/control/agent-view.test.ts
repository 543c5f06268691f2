/**
 * The allocator's incremental view of the agents (lib/control/agent-view.ts): after any sequence
 * of agent writes — registrations, offers made and taken, tasks released, status changes,
 * heartbeats, in any shard, some landing up to the overlap after their stamp was taken — the
 * allocator's input built from the view is the input a full scan gives, while a cycle reads only
 * the agents that changed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../lib/adapters/memory-store.ts';
import { AgentView } from '../../../lib/control/agent-view.ts';
import { buildAllocationInput, runAllocationCycle } from '../../../lib/control/allocation.ts';
import {
  heartbeatWrite,
  releaseTaskWrite,
  takeAgentOffers,
  updateAgent,
} from '../../../lib/control/records/agents.ts';
import type { AgentRecord, FrameworkRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import type { Item } from '../../../lib/ports/store.ts';
import { putAgent, putFramework, testControl } from './helpers.ts';

const OVERLAP = 500;
const SHARDS = 3;

type Op =
  | { kind: 'register'; agent: number; shard: number }
  | { kind: 'offer'; agent: number; fw: number }
  | { kind: 'take'; agent: number }
  | { kind: 'task'; agent: number; fw: number }
  | { kind: 'release'; agent: number }
  | { kind: 'status'; agent: number; status: 'ACTIVE' | 'UNREACHABLE' | 'GONE' }
  | { kind: 'heartbeat'; agent: number }
  | { kind: 'tick'; ms: number; lag: number }
  | { kind: 'read' };

const agentIx = fc.integer({ min: 0, max: 5 });
const fwIx = fc.integer({ min: 0, max: 2 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('register' as const),
    agent: agentIx,
    shard: fc.integer({ min: 0, max: SHARDS - 1 }),
  }),
  fc.record({ kind: fc.constant('offer' as const), agent: agentIx, fw: fwIx }),
  fc.record({ kind: fc.constant('take' as const), agent: agentIx }),
  fc.record({ kind: fc.constant('task' as const), agent: agentIx, fw: fwIx }),
  fc.record({ kind: fc.constant('release' as const), agent: agentIx }),
  fc.record({
    kind: fc.constant('status' as const),
    agent: agentIx,
    status: fc.constantFrom('ACTIVE' as const, 'UNREACHABLE' as const, 'GONE' as const),
  }),
  fc.record({ kind: fc.constant('heartbeat' as const), agent: agentIx }),
  // Time passes; writes from now on are stamped up to `lag` ms in the past (a write that lands
  // after a read although its stamp was taken before it), never more than the overlap.
  fc.record({
    kind: fc.constant('tick' as const),
    ms: fc.integer({ min: 0, max: 3000 }),
    lag: fc.integer({ min: 0, max: OVERLAP }),
  }),
  fc.record({ kind: fc.constant('read' as const) }),
);

const frameworks = (t: { now: number }): FrameworkRecord[] =>
  [0, 1, 2].map((i) => ({
    frameworkId: `fw${i}`,
    principal: 'p',
    name: `fw${i}`,
    roles: ['*'],
    queueUrl: `q${i}`,
    status: 'ACTIVE',
    failoverTimeoutSeconds: 0,
    partitionAware: false,
    filters: {},
    subscribedAt: t.now,
    lastSeenAt: t.now,
    version: 1,
  }));

/** What the allocator decides from: the same whether the agents came from the view or a scan. */
const inputOf = (
  agents: readonly AgentRecord[],
  fws: readonly FrameworkRecord[],
  now: number,
  shard: number,
) => {
  const sorted = [...agents].sort((a, b) => (a.agentId < b.agentId ? -1 : 1));
  return buildAllocationInput({ agents: sorted, frameworks: fws, roles: [] }, { now, shard, shards: SHARDS });
};

async function apply(store: MemoryStore, clock: { now: number }, o: Op, n: { seq: number }): Promise<void> {
  const agentId = `a${'agent' in o ? o.agent : 0}`;
  const exists = async () => (await store.get<AgentRecord & Item>('agents', { agentId })) !== undefined;
  switch (o.kind) {
    case 'register':
      if (await exists()) return;
      await store.write([
        {
          kind: 'put',
          table: 'agents',
          expect: 'absent',
          item: {
            agentId,
            principal: 'p',
            hostname: agentId,
            queueUrl: agentId,
            total: parse('cpus:4;mem:4096'),
            attributes: {},
            status: 'ACTIVE',
            offers: {},
            tasks: {},
            registeredAt: clock.now,
            lastSeenAt: clock.now,
            shard: o.shard,
            version: 0,
          },
        },
      ]);
      return;
    case 'offer':
    case 'task':
      if (!(await exists())) return;
      await updateAgent(store, agentId, (a) => {
        if (!a) return { result: undefined };
        const id = `${o.kind}${++n.seq}`;
        const resources = parse('cpus:0.5;mem:128');
        const frameworkId = `fw${o.fw}`;
        return o.kind === 'offer'
          ? {
              set: {
                offers: {
                  ...a.offers,
                  [id]: { offerId: id, frameworkId, resources, expiresAt: clock.now + 60_000 },
                },
              },
              result: undefined,
            }
          : {
              set: { tasks: { ...a.tasks, [id]: { taskId: id, frameworkId, resources } } },
              result: undefined,
            };
      });
      return;
    case 'take':
      if (!(await exists())) return;
      await takeAgentOffers(store, agentId, () => true);
      return;
    case 'release': {
      const a = await store.get<AgentRecord & Item>('agents', { agentId });
      const taskId = a ? Object.keys(a.tasks)[0] : undefined;
      if (taskId) await store.write([releaseTaskWrite(agentId, taskId)]);
      return;
    }
    case 'status':
      if (!(await exists())) return;
      await updateAgent(store, agentId, (a) =>
        a ? { set: { status: o.status }, result: undefined } : { result: undefined },
      );
      return;
    case 'heartbeat':
      if (await exists()) await store.write([heartbeatWrite(agentId, clock.now)]);
      return;
    default:
      return;
  }
}

describe('the allocator’s incremental view of the agents', () => {
  it('gives the allocator the input a full scan gives, after any sequence of changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        const clock = { now: 1_000_000, lag: 0 };
        const store = new MemoryStore();
        store.now = () => clock.now - clock.lag;
        const view = new AgentView({ overlapMs: OVERLAP, fullReadMs: Number.POSITIVE_INFINITY });
        const fws = frameworks(clock);
        const n = { seq: 0 };
        let fullReads = 0;
        const check = async () => {
          const got = await view.read(store, clock.now, SHARDS);
          if (got.full) fullReads++;
          const all = await store.scan<AgentRecord & Item>('agents');
          for (let shard = 0; shard < SHARDS; shard++)
            expect(inputOf(got.agents, fws, clock.now, shard)).toEqual(inputOf(all, fws, clock.now, shard));
          expect(new Map(got.agents.map((a) => [a.agentId, a.version]))).toEqual(
            new Map(all.map((a) => [a.agentId, a.version])),
          );
        };
        for (const o of ops) {
          if (o.kind === 'tick') {
            clock.now += o.ms;
            clock.lag = o.lag;
          } else if (o.kind === 'read') await check();
          else await apply(store, clock, o, n);
        }
        await check();
        expect(fullReads).toBe(1); // only the first read scanned
      }),
      { numRuns: 150 },
    );
  });

  it('reads only the agents that changed since the last cycle, and makes the offers a full read makes', async () => {
    const t = testControl();
    t.store.now = () => t.now;
    for (let i = 0; i < 10; i++) await putAgent(t, `a${i}`);
    await putFramework(t, 'f1');
    const view = new AgentView({ overlapMs: 100 });
    const first = await runAllocationCycle(t.deps, 0, { view });
    expect(first).toMatchObject({ fullRead: true, agentsRead: 10, offers: 10 });
    t.now += 1000; // past the overlap
    // The next cycle reads back the ten agents the first one wrote its offers on.
    expect(await runAllocationCycle(t.deps, 0, { view })).toMatchObject({
      fullRead: false,
      agentsRead: 10,
      offers: 0,
    });

    t.now += 1000;
    await takeAgentOffers(t.store, 'a3', () => true); // one offer is taken back
    t.now += 1000;
    const third = await runAllocationCycle(t.deps, 0, { view });
    expect(third).toMatchObject({ fullRead: false, agentsRead: 1, offers: 1 });
    const [offered] = (await t.store.scan<AgentRecord & Item>('agents')).filter((a) => a.agentId === 'a3');
    expect(Object.keys(offered!.offers)).toHaveLength(1);

    t.now += 1000;
    // Only the agent the third cycle wrote on comes back, and nothing is left to offer.
    expect(await runAllocationCycle(t.deps, 0, { view })).toMatchObject({ agentsRead: 1, offers: 0 });
    t.now += 1000;
    expect(await runAllocationCycle(t.deps, 0, { view })).toMatchObject({ agentsRead: 0, offers: 0 });
  });

  it('does not read an agent again for a heartbeat', async () => {
    const t = testControl();
    t.store.now = () => t.now;
    await putAgent(t, 'a1');
    t.now += 1000;
    const view = new AgentView({ overlapMs: 100 });
    await view.read(t.store, t.now, 1);
    t.now += 1000;
    await t.store.write([heartbeatWrite('a1', t.now)]);
    t.now += 1000;
    expect(await view.read(t.store, t.now, 1)).toMatchObject({ full: false, read: 0 });
    await updateAgent(t.store, 'a1', () => ({ set: { status: 'UNREACHABLE' }, result: undefined }));
    t.now += 1;
    const after = await view.read(t.store, t.now, 1);
    expect(after).toMatchObject({ full: false, read: 1 });
    expect(after.agents[0]!.status).toBe('UNREACHABLE');
  });

  it('scans when the change index cannot be read, and says so', async () => {
    const t = testControl();
    for (let i = 0; i < 3; i++) await putAgent(t, `a${i}`);
    const errors: unknown[] = [];
    const view = new AgentView({ onIndexError: (e) => errors.push(e) });
    await view.read(t.store, t.now, 1);
    t.store.query = async () => {
      throw new Error('ValidationException: The table does not have the specified index: byChange');
    };
    t.now += 1000;
    const again = await view.read(t.store, t.now, 1);
    expect(again).toMatchObject({ full: true, read: 3 });
    expect(errors).toHaveLength(1);
  });

  it('scans again once the full-read period has passed, and on request', async () => {
    const t = testControl();
    t.store.now = () => t.now;
    await putAgent(t, 'a1');
    const view = new AgentView({ fullReadMs: 10_000 });
    expect((await view.read(t.store, t.now, 1)).full).toBe(true);
    t.now += 5_000;
    expect((await view.read(t.store, t.now, 1)).full).toBe(false);
    expect((await view.read(t.store, t.now, 1, true)).full).toBe(true);
    t.now += 10_000;
    expect((await view.read(t.store, t.now, 1)).full).toBe(true);
  });
});
