import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AllocationAgent,
  type AllocationFramework,
  type AllocationInput,
  allocate,
  DEFAULT_MIN_ALLOCATABLE,
  isAllocatable,
  isFiltered,
} from '../../../lib/core/allocator.ts';
import {
  add,
  contains,
  EMPTY,
  equals,
  parse,
  type Resources,
  resources,
  subtract,
} from '../../../lib/core/resources.ts';
import {
  createHierarchicalSorter,
  dominantShare,
  type HierarchicalSorterOptions,
  type Scalars,
} from '../../../lib/core/sorter/index.ts';
import { agent } from './helpers.ts';

const framework = (
  frameworkId: string,
  allocated = '',
  filters: AllocationFramework['filters'] = {},
  active = true,
): AllocationFramework => ({ frameworkId, active, allocated: parse(allocated), filters });

describe('allocate', () => {
  it('offers an agent all of its free resources, once', () => {
    const { offers } = allocate({
      now: 0,
      agents: [agent('a1', 'cpus:4;mem:8192;ports:[31000-32000]', 'cpus:3;mem:1024;ports:[31000-31500]')],
      frameworks: [framework('f1')],
    });
    expect(offers).toEqual([
      {
        frameworkId: 'f1',
        agentId: 'a1',
        role: '*',
        resources: parse('cpus:3;mem:1024;ports:[31000-31500]'),
      },
    ]);
  });

  it('gives each agent to the framework with the lowest dominant share, charging as it goes', () => {
    const { offers } = allocate({
      now: 0,
      agents: [
        agent('a1', 'cpus:4;mem:4096'),
        agent('a2', 'cpus:4;mem:4096'),
        agent('a3', 'cpus:4;mem:4096'),
      ],
      frameworks: [framework('big', 'cpus:4'), framework('small', 'cpus:1'), framework('zero')],
    });
    // zero (0) takes a1 → 1/3; small (1/12) takes a2 → 5/12; big (1/3) and zero (1/3) tie → big by id.
    expect(offers.map((o) => [o.agentId, o.frameworkId])).toEqual([
      ['a1', 'zero'],
      ['a2', 'small'],
      ['a3', 'big'],
    ]);
  });

  it('visits agents in shuffle order', () => {
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:1;mem:64'), agent('a2', 'cpus:8;mem:64')],
      frameworks: [framework('f1'), framework('f2')],
    };
    expect(allocate(input).offers.map((o) => `${o.agentId}:${o.frameworkId}`)).toEqual(['a1:f1', 'a2:f2']);
    expect(
      allocate(input, { shuffle: () => [1, 0] }).offers.map((o) => `${o.agentId}:${o.frameworkId}`),
    ).toEqual(['a2:f1', 'a1:f2']);
    expect(() => allocate(input, { shuffle: () => [0, 0] })).toThrow(/permutation/);
    expect(() => allocate(input, { shuffle: () => [0] })).toThrow(RangeError);
    expect(() => allocate(input, { shuffle: () => [0, 2] })).toThrow(/permutation/);
  });

  it('uses the sorter it is given', () => {
    // A policy that always prefers the biggest allocation: the opposite of DRF.
    const greedy = (total: Scalars, opts: HierarchicalSorterOptions) =>
      createHierarchicalSorter(total, {
        ...opts,
        policy: { share: (a, t, w) => -dominantShare(a, t) / w },
      });
    const { offers } = allocate(
      {
        now: 0,
        agents: [agent('a1', 'cpus:1'), agent('a2', 'cpus:1')],
        frameworks: [framework('f1', 'cpus:1'), framework('f2', 'cpus:2')],
      },
      { sorter: greedy },
    );
    expect(offers.map((o) => o.frameworkId)).toEqual(['f2', 'f2']);
  });

  it('offers nothing to inactive frameworks and nothing on inactive agents', () => {
    const { offers } = allocate({
      now: 0,
      agents: [agent('a1', 'cpus:4;mem:4096', 'cpus:4;mem:4096', false), agent('a2', 'cpus:4;mem:4096')],
      frameworks: [framework('f0', '', {}, false), framework('f1', 'cpus:100')],
    });
    expect(offers).toEqual([
      { frameworkId: 'f1', agentId: 'a2', role: '*', resources: parse('cpus:4;mem:4096') },
    ]);
    expect(
      allocate({ now: 0, agents: [agent('a1', 'cpus:4')], frameworks: [framework('f0', '', {}, false)] })
        .offers,
    ).toEqual([]);
    expect(allocate({ now: 0, agents: [], frameworks: [framework('f1')] }).offers).toEqual([]);
  });

  it('respects minAllocatable: cpus:0.01 OR mem:32 by default', () => {
    const cycle = (free: string, minAllocatable?: Resources) =>
      allocate({
        now: 0,
        agents: [agent('a1', 'cpus:4;mem:4096;disk:100', free)],
        frameworks: [framework('f1')],
        ...(minAllocatable ? { minAllocatable } : {}),
      }).offers.length;
    expect(cycle('cpus:0.009;mem:31.999;disk:100')).toBe(0);
    expect(cycle('ports:[1-100]')).toBe(0);
    expect(cycle('cpus:0.01')).toBe(1);
    expect(cycle('mem:32')).toBe(1);
    expect(cycle('cpus:1', parse('cpus:2;mem:64'))).toBe(0);
    expect(cycle('cpus:1;mem:64', parse('cpus:2;mem:64'))).toBe(1);
    expect(cycle('disk:0.001', EMPTY)).toBe(1);
    expect(cycle('', EMPTY)).toBe(0);
    expect(isAllocatable(parse('cpus:0.01'), DEFAULT_MIN_ALLOCATABLE)).toBe(true);
    expect(isAllocatable(parse('disk:1000;gpus:8'))).toBe(false);
  });

  it('honours a refusal filter until it expires', () => {
    const filters = { a1: { until: 10_000, resources: parse('cpus:4;mem:4096') } };
    const input = (now: number): AllocationInput => ({
      now,
      agents: [agent('a1', 'cpus:4;mem:4096')],
      frameworks: [framework('f1', '', filters)],
    });
    expect(allocate(input(0)).offers).toEqual([]);
    expect(allocate(input(9_999)).offers).toEqual([]);
    expect(allocate(input(10_000)).offers.map((o) => o.frameworkId)).toEqual(['f1']);
  });

  it('passes a filtered agent to the next framework, and back when more than was refused is free', () => {
    // f1 refused cpus:2 on a1; it has the lower share, so without the filter it would win.
    const f1 = framework('f1', '', { a1: { until: 10_000, resources: parse('cpus:2;mem:2048') } });
    const f2 = framework('f2', 'cpus:1');
    const cycle = (free: string) =>
      allocate({ now: 5_000, agents: [agent('a1', 'cpus:4;mem:4096', free)], frameworks: [f1, f2] }).offers;
    expect(cycle('cpus:2;mem:2048').map((o) => o.frameworkId)).toEqual(['f2']);
    expect(cycle('cpus:1;mem:1024').map((o) => o.frameworkId)).toEqual(['f2']);
    // More cpus than refused → the filter no longer applies.
    expect(cycle('cpus:3;mem:2048').map((o) => o.frameworkId)).toEqual(['f1']);
    // Ports that were not refused count as "more" too.
    expect(cycle('cpus:1;ports:[80-80]').map((o) => o.frameworkId)).toEqual(['f1']);
    // A filter for another agent changes nothing here.
    expect(
      allocate({
        now: 5_000,
        agents: [agent('a2', 'cpus:4')],
        frameworks: [f1, f2],
      }).offers.map((o) => o.frameworkId),
    ).toEqual(['f1']);
  });

  it('is not fooled by agent ids that are Object.prototype names', () => {
    const { offers } = allocate({
      now: 0,
      agents: [agent('constructor', 'cpus:1'), agent('__proto__', 'cpus:1')],
      frameworks: [framework('f1', '', { other: { until: 1, resources: EMPTY } })],
    });
    expect(offers.map((o) => o.agentId)).toEqual(['constructor', '__proto__']);
  });

  it('computes shares against the given cluster total when agents are only a shard', () => {
    // cpu-fw holds 4 of 100 cluster cpus (0.04); mem-fw holds 4 GB of 16 GB (0.25).
    // Against this shard's agent alone (4 cpus, 64 GB), cpu-fw would look fuller (1.0 vs 0.0625).
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:4;mem:65536')],
      frameworks: [framework('cpu-fw', 'cpus:4'), framework('mem-fw', 'mem:4096')],
    };
    expect(allocate(input).offers[0]!.frameworkId).toBe('mem-fw');
    expect(allocate({ ...input, total: parse('cpus:100;mem:16384') }).offers[0]!.frameworkId).toBe('cpu-fw');
  });

  it('rejects an agent listed twice', () => {
    expect(() =>
      allocate({
        now: 0,
        agents: [agent('a1', 'cpus:1'), agent('a1', 'cpus:1')],
        frameworks: [framework('f1')],
      }),
    ).toThrow(/twice/);
  });

  it('reproduces the DRF paper example through offer cycles (A: 3 tasks, B: 2 tasks)', () => {
    // Ghodsi et al. 2011: 9 CPUs, 18 GB; A runs <1 CPU, 4 GB> tasks, B runs <3 CPU, 1 GB> tasks.
    // Each cycle a framework launches one task from its offer if it fits and returns the rest;
    // when its task does not fit it declines with a long filter. Shares are what DRF equalizes.
    const total = parse('cpus:9;mem:18432');
    const demand: Record<string, Resources> = { A: parse('cpus:1;mem:4096'), B: parse('cpus:3;mem:1024') };
    const used: Record<string, Resources> = { A: EMPTY, B: EMPTY };
    const filters: Record<string, Record<string, { until: number; resources: Resources }>> = { A: {}, B: {} };
    const tasks: Record<string, number> = { A: 0, B: 0 };
    let free = total;
    for (let now = 0; now < 100; now++) {
      const { offers } = allocate({
        now,
        agents: [{ agentId: 'node', total, free, active: true }],
        frameworks: ['A', 'B'].map((id) => ({
          frameworkId: id,
          active: true,
          allocated: used[id]!,
          filters: filters[id]!,
        })),
      });
      if (offers.length === 0) break;
      expect(offers).toHaveLength(1);
      const { frameworkId: f, resources: offered } = offers[0]!;
      expect(equals(offered, free)).toBe(true);
      if (contains(offered, demand[f]!)) {
        used[f] = add(used[f]!, demand[f]!);
        free = subtract(free, demand[f]!);
        tasks[f]!++;
      } else {
        filters[f]!.node = { until: 1_000_000, resources: offered };
      }
    }
    expect(tasks).toEqual({ A: 3, B: 2 });
    expect(dominantShare(used.A!, total)).toBeCloseTo(2 / 3, 12);
    expect(dominantShare(used.B!, total)).toBeCloseTo(2 / 3, 12);
    expect(free).toEqual(parse('mem:4096'));
  });
});

describe('isFiltered', () => {
  it('applies while unexpired and the free resources are within the refused ones', () => {
    const f = { until: 100, resources: parse('cpus:2;mem:10') };
    expect(isFiltered(f, parse('cpus:2;mem:10'), 99)).toBe(true);
    expect(isFiltered(f, parse('cpus:1'), 0)).toBe(true);
    expect(isFiltered(f, parse('cpus:2;mem:10'), 100)).toBe(false);
    expect(isFiltered(f, parse('cpus:2.001'), 0)).toBe(false);
    expect(isFiltered(undefined, parse('cpus:1'), 0)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random clusters, checked against a reference allocator that re-sorts everything.

const NOW = 1_000;

const scalars = (max: number) =>
  fc.record({
    cpus: fc.integer({ min: 0, max }),
    mem: fc.integer({ min: 0, max: max * 8 }),
    disk: fc.integer({ min: 0, max }),
    gpus: fc.integer({ min: 0, max: 2 }),
  });

const agentArb = (i: number): fc.Arbitrary<AllocationAgent> =>
  fc
    .record({
      total: scalars(16_000),
      part: fc.record({
        cpus: fc.double({ min: 0, max: 1, noNaN: true }),
        mem: fc.double({ min: 0, max: 1, noNaN: true }),
        disk: fc.double({ min: 0, max: 1, noNaN: true }),
        gpus: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      tiny: fc.boolean(),
      active: fc.constantFrom(true, true, true, false),
      ports: fc.boolean(),
    })
    .map(({ total, part, tiny, active, ports }) => {
      const t = resources({ ...total, ports: ports ? [[31000, 31100]] : [] });
      const f = tiny
        ? resources({ cpus: Math.min(t.cpus, 9), mem: Math.min(t.mem, 31_999) })
        : resources({
            cpus: Math.floor(t.cpus * part.cpus),
            mem: Math.floor(t.mem * part.mem),
            disk: Math.floor(t.disk * part.disk),
            gpus: Math.floor(t.gpus * part.gpus),
            ports: ports ? [[31000, 31050]] : [],
          });
      return { agentId: `a${i}`, total: t, free: f, active };
    });

const clusterArb = fc
  .record({ nAgents: fc.integer({ min: 0, max: 25 }), nFrameworks: fc.integer({ min: 0, max: 8 }) })
  .chain(({ nAgents, nFrameworks }) => {
    const agents = fc.tuple(...Array.from({ length: nAgents }, (_, i) => agentArb(i)));
    return agents.chain((as) => {
      const filterArb = fc.record({
        agent: fc.integer({ min: 0, max: Math.max(0, as.length - 1) }),
        until: fc.integer({ min: NOW - 10, max: NOW + 10 }),
        mode: fc.constantFrom('same', 'bigger', 'smaller', 'empty'),
      });
      const fwArb = (j: number): fc.Arbitrary<AllocationFramework> =>
        fc
          .record({
            active: fc.boolean(),
            allocated: scalars(40_000),
            filters: fc.array(filterArb, { maxLength: as.length === 0 ? 0 : 6 }),
          })
          .map(({ active, allocated, filters }) => {
            const record: Record<string, { until: number; resources: Resources }> = {};
            for (const { agent: k, until, mode } of filters) {
              const free = as[k]!.free;
              const r =
                mode === 'same'
                  ? free
                  : mode === 'bigger'
                    ? add(free, parse('cpus:1;mem:1'))
                    : mode === 'smaller'
                      ? resources({ cpus: Math.floor(free.cpus / 2), mem: free.mem })
                      : EMPTY;
              record[as[k]!.agentId] = { until, resources: r };
            }
            return { frameworkId: `f${j}`, active, allocated: resources(allocated), filters: record };
          });
      return fc.record({
        agents: fc.constant(as),
        frameworks: fc.tuple(...Array.from({ length: nFrameworks }, (_, j) => fwArb(j))),
        order: fc.shuffledSubarray(
          Array.from({ length: as.length }, (_, i) => i),
          { minLength: as.length, maxLength: as.length },
        ),
      });
    });
  });

function referenceAllocate(input: AllocationInput, order: number[]) {
  const total = input.agents.reduce<Resources>((acc, a) => add(acc, { ...a.total, ports: [] }), EMPTY);
  const alloc = new Map(input.frameworks.filter((f) => f.active).map((f) => [f.frameworkId, f.allocated]));
  const offers: { frameworkId: string; agentId: string; role: string; resources: Resources }[] = [];
  for (const i of order) {
    const a = input.agents[i]!;
    if (!a.active || !isAllocatable(a.free, input.minAllocatable)) continue;
    const candidates = input.frameworks
      .filter((f) => f.active && !isFiltered(f.filters[a.agentId], a.free, input.now))
      .map((f) => ({ id: f.frameworkId, share: dominantShare(alloc.get(f.frameworkId)!, total) }))
      .sort((x, y) => x.share - y.share || (x.id < y.id ? -1 : 1));
    const chosen = candidates[0];
    if (!chosen) continue;
    offers.push({ frameworkId: chosen.id, agentId: a.agentId, role: '*', resources: a.free });
    alloc.set(chosen.id, add(alloc.get(chosen.id)!, { ...a.free, ports: [] }));
  }
  return offers;
}

describe('allocate properties', () => {
  it('never over-offers, offers each agent at most once, and only to eligible frameworks', () => {
    fc.assert(
      fc.property(clusterArb, ({ agents, frameworks, order }) => {
        const input: AllocationInput = { now: NOW, agents, frameworks };
        const { offers } = allocate(input, { shuffle: () => order });
        const byAgent = new Map(agents.map((a) => [a.agentId, a]));
        const byFramework = new Map(frameworks.map((f) => [f.frameworkId, f]));
        const offered = new Map<string, Resources>();
        for (const o of offers) {
          const a = byAgent.get(o.agentId)!;
          const f = byFramework.get(o.frameworkId)!;
          expect(offered.has(o.agentId)).toBe(false);
          offered.set(o.agentId, add(offered.get(o.agentId) ?? EMPTY, o.resources));
          expect(contains(a.free, o.resources)).toBe(true);
          expect(equals(o.resources, a.free)).toBe(true);
          expect(a.active).toBe(true);
          expect(isAllocatable(a.free)).toBe(true);
          expect(f.active).toBe(true);
          expect(isFiltered(f.filters[o.agentId], a.free, NOW)).toBe(false);
        }
        for (const [id, total] of offered) expect(contains(byAgent.get(id)!.free, total)).toBe(true);
        // Work conserving: an offerable agent with any eligible framework is offered.
        for (const a of agents) {
          const anyone = frameworks.some((f) => f.active && !isFiltered(f.filters[a.agentId], a.free, NOW));
          expect(offered.has(a.agentId)).toBe(a.active && isAllocatable(a.free) && anyone);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('makes exactly the offers a re-sort-everything DRF reference makes', () => {
    fc.assert(
      fc.property(clusterArb, ({ agents, frameworks, order }) => {
        const input: AllocationInput = { now: NOW, agents, frameworks };
        expect(allocate(input, { shuffle: () => order }).offers).toEqual(referenceAllocate(input, order));
      }),
      { numRuns: 300 },
    );
  });

  it('handles a large cluster without trouble (5,000 agents x 300 frameworks)', () => {
    const agents = Array.from({ length: 5_000 }, (_, i) => agent(`a${i}`, 'cpus:16;mem:65536'));
    const frameworks = Array.from({ length: 300 }, (_, j) =>
      framework(
        `f${j}`,
        '',
        j % 3 === 0 ? { [`a${j}`]: { until: 2, resources: parse('cpus:16;mem:65536') } } : {},
      ),
    );
    const { offers } = allocate({ now: 1, agents, frameworks });
    expect(offers).toHaveLength(5_000);
    const perFramework = new Map<string, number>();
    for (const o of offers) perFramework.set(o.frameworkId, (perFramework.get(o.frameworkId) ?? 0) + 1);
    // Identical agents are spread evenly: 5,000 / 300 → 16 or 17 each.
    expect(Math.min(...perFramework.values())).toBeGreaterThanOrEqual(16);
    expect(Math.max(...perFramework.values())).toBeLessThanOrEqual(17);
    expect(offers.find((o) => o.agentId === 'a3')!.frameworkId).not.toBe('f3');
  });
});
