/**
 * The allocator with roles: hierarchical DRF with weights, reservations, quota guarantees and
 * limits, SUPPRESS and minimum allocatable resources — scenarios first, then properties over
 * random clusters and sequences of cycles (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AllocatedOffer,
  type AllocationInput,
  type AllocationTrace,
  allocate,
  meetsMinimum,
  type TraceSkip,
} from '../../../lib/core/allocator.ts';
import {
  add,
  claim,
  contains,
  EMPTY,
  flatten,
  parse,
  type Resources,
  resources,
  subtract,
  unreserved,
} from '../../../lib/core/resources.ts';
import type { Quantities, RoleConfig } from '../../../lib/core/roles.ts';
import { dominantShare, isWithinRole } from '../../../lib/core/sorter/index.ts';
import { agent, fw } from './helpers.ts';

const q = (cpus: number, mem?: number): Quantities => ({
  cpus: cpus * 1000,
  ...(mem !== undefined ? { mem: mem * 1000 } : {}),
});

const brief = (offers: AllocatedOffer[]) => offers.map((o) => `${o.agentId}:${o.frameworkId}@${o.role}`);

describe('allocate with roles', () => {
  it('offers each agent to the role with the lowest weighted share, then the framework within it', () => {
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:10;mem:10240'), agent('a2', 'cpus:10;mem:10240')],
      frameworks: [
        fw('f1', ['eng/web'], { allocations: { 'eng/web': parse('cpus:30') }, allocated: parse('cpus:30') }),
        fw('f2', ['ads'], { allocations: { ads: parse('cpus:20') }, allocated: parse('cpus:20') }),
      ],
      total: parse('cpus:100;mem:102400'),
      roles: [{ role: 'eng', weight: 3 }],
    };
    // eng: 0.3 / 3 = 0.1 < ads 0.2 → f1 first; then eng 0.4/3 ≈ 0.133 < 0.2 → f1 again.
    expect(brief(allocate(input).offers)).toEqual(['a1:f1@eng/web', 'a2:f1@eng/web']);
    // Without the weight, ads goes first.
    expect(brief(allocate({ ...input, roles: [] }).offers)).toEqual(['a1:f2@ads', 'a2:f2@ads']);
  });

  it('puts a multi-role framework in each of its roles, charging each role what it holds there', () => {
    const { offers } = allocate({
      now: 0,
      agents: [
        agent('a1', 'cpus:1;mem:1024'),
        agent('a2', 'cpus:1;mem:1024'),
        agent('a3', 'cpus:1;mem:1024'),
      ],
      frameworks: [
        fw('multi', ['x', 'y'], {
          allocations: { x: parse('cpus:1') },
          allocated: parse('cpus:1'),
        }),
        fw('other', ['x']),
      ],
    });
    // Roles: x holds 1 cpu, y none → y first (multi@y); then y 1, x 1: tie by name → x: other (0) before multi (1).
    expect(brief(offers)).toEqual(['a1:multi@y', 'a2:other@x', 'a3:multi@y']);
  });

  it('counts allocations of inactive frameworks and of suppressed roles in their roles', () => {
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:1;mem:1024')],
      frameworks: [
        fw('gone', ['busy'], { active: false, allocated: parse('cpus:50') }),
        fw('quiet', ['x', 'busy'], {
          suppressedRoles: ['busy'],
          allocations: { busy: parse('cpus:1') },
          allocated: parse('cpus:1'),
        }),
        fw('b', ['busy']),
        fw('z', ['zzz'], { allocations: { zzz: parse('cpus:10') }, allocated: parse('cpus:10') }),
      ],
      total: parse('cpus:100;mem:102400'),
    };
    // busy holds 51 cpus, zzz 10, x 0 → quiet@x first (busy is suppressed for it anyway).
    expect(brief(allocate(input).offers)).toEqual(['a1:quiet@x']);
    // Suppressed in every role: nothing for quiet; zzz (0.1) before busy (0.51).
    const all = {
      ...input,
      frameworks: input.frameworks.map((f) =>
        f.frameworkId === 'quiet' ? { ...f, suppressedRoles: ['x', 'busy'] } : f,
      ),
    };
    expect(brief(allocate(all).offers)).toEqual(['a1:z@zzz']);
  });

  it('offers reserved resources only to their role and roles below it, unreserved to anyone', () => {
    const { offers } = allocate({
      now: 0,
      agents: [
        agent('r1', 'cpus(eng):4;mem(eng):4096'),
        agent('r2', 'cpus(eng/web):4;mem(eng/web):4096'),
        agent('mix', 'cpus(eng):2;mem(eng):2048;cpus:2;mem:2048'),
      ],
      frameworks: [fw('ads', ['ads']), fw('web', ['eng/web']), fw('eng', ['eng'])],
    });
    // r1 (eng): eng and eng/web may use it; r2 (eng/web): only web; mix: the unreserved half to ads.
    for (const o of offers) {
      for (const role of Object.keys(o.resources.reserved ?? {}))
        expect(isWithinRole(o.role, role)).toBe(true);
    }
    expect(offers.find((o) => o.agentId === 'r2')!.frameworkId).toBe('web');
    expect(offers.find((o) => o.agentId === 'r1')!.frameworkId).not.toBe('ads');
    const mix = offers.filter((o) => o.agentId === 'mix');
    // ads is first (lowest share) but may only take the unreserved part; the rest goes to eng.
    expect(brief(mix)).toEqual(['mix:ads@ads', 'mix:eng@eng']);
    expect(mix[0]!.resources).toEqual(parse('cpus:2;mem:2048'));
    expect(mix[1]!.resources).toEqual(parse('cpus(eng):2;mem(eng):2048'));
  });

  it('never lets an offer take a role (or a parent) past its limit, counting what it holds', () => {
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:8;mem:8192'), agent('a2', 'cpus:8;mem:8192')],
      frameworks: [
        fw('f1', ['eng/web'], {
          allocations: { 'eng/web': parse('cpus:1;mem:1024') },
          allocated: parse('cpus:1;mem:1024'),
        }),
        fw('f2', ['other']),
      ],
      roles: [{ role: 'eng', limit: q(4) }],
    };
    const { offers } = allocate(input);
    const web = offers.filter((o) => o.frameworkId === 'f1');
    // 1 held + 3 offered = 4 cpus; memory is not limited.
    expect(web.reduce((n, o) => n + o.resources.cpus, 0)).toBe(3000);
    expect(web[0]!.resources).toEqual(parse('cpus:3;mem:8192'));
    // What eng may not take goes to others in the same cycle.
    expect(offers.filter((o) => o.frameworkId === 'f2').reduce((n, o) => n + o.resources.cpus, 0)).toBe(
      13_000,
    );
  });

  it('holds back headroom for an unmet guarantee, and lets the guaranteed role take it', () => {
    const agents = [
      agent('a1', 'cpus:4;mem:4096'),
      agent('a2', 'cpus:4;mem:4096'),
      agent('a3', 'cpus:4;mem:4096'),
    ];
    const greedy = fw('greedy', ['batch']);
    // Nobody in `prod` yet: 6 cpus and 6 GB stay unoffered for it.
    const alone = allocate({
      now: 0,
      agents,
      frameworks: [greedy],
      roles: [{ role: 'prod', guarantee: q(6, 6144) }],
    });
    const taken = alone.offers.reduce((r, o) => add(r, o.resources), EMPTY);
    expect(taken).toEqual(parse('cpus:6;mem:6144'));
    // With a prod framework it gets its guarantee first, even though greedy sorts first by name.
    const both = allocate({
      now: 0,
      agents,
      frameworks: [greedy, fw('service', ['prod'])],
      roles: [{ role: 'prod', guarantee: q(6, 6144) }],
    });
    const prod = both.offers.filter((o) => o.role === 'prod').reduce((r, o) => add(r, o.resources), EMPTY);
    expect(contains(prod, parse('cpus:6;mem:6144'))).toBe(true);
    // A guarantee counts reservations as consumed: reserved-for-prod agents mean less is held back.
    const reserved = allocate({
      now: 0,
      agents: [...agents, agent('r', 'cpus(prod):6;mem(prod):6144')],
      frameworks: [greedy],
      roles: [{ role: 'prod', guarantee: q(6, 6144) }],
    });
    expect(reserved.offers.reduce((r, o) => add(r, o.resources), EMPTY)).toEqual(parse('cpus:12;mem:12288'));
  });

  it('meets a parent guarantee from any role below it, but a child guarantee only from that child', () => {
    const agents = [agent('a1', 'cpus:4;mem:4096'), agent('a2', 'cpus:4;mem:4096')];
    const roles: RoleConfig[] = [
      { role: 'eng', guarantee: q(4) },
      { role: 'eng/web', guarantee: q(2) },
    ];
    const { offers } = allocate({
      now: 0,
      agents,
      frameworks: [fw('batch', ['eng/batch']), fw('x', ['aaa'])],
      roles,
    });
    // eng/batch may fill eng's guarantee beyond web's 2 (4 − 2 = 2) plus the surplus (8 − 4 = 4);
    // 2 cpus stay held back for eng/web, which has no framework yet.
    const sum = (f: string) =>
      offers.filter((o) => o.frameworkId === f).reduce((n, o) => n + o.resources.cpus, 0);
    expect(sum('batch') + sum('x')).toBe(6000);
    expect(sum('batch')).toBeGreaterThanOrEqual(2000);
  });

  it('applies per-framework and per-role minimum offers', () => {
    const agents = [agent('small', 'cpus:1;mem:512'), agent('big', 'cpus:8;mem:8192')];
    const { offers } = allocate({
      now: 0,
      agents,
      frameworks: [
        fw('picky', ['a'], { minAllocatable: { a: [parse('cpus:4;mem:4096')] } }),
        fw('easy', ['b']),
      ],
    });
    expect(brief(offers)).toEqual(['small:easy@b', 'big:picky@a']);
    const byRole = allocate({
      now: 0,
      agents,
      frameworks: [fw('r', ['a'])],
      roles: [{ role: 'a', minAllocatable: [parse('cpus:2'), parse('mem:4096')] }],
    });
    expect(brief(byRole.offers)).toEqual(['big:r@a']);
    expect(meetsMinimum(parse('cpus:1;mem:4096'), [parse('cpus:2'), parse('mem:4096')])).toBe(true);
    expect(meetsMinimum(parse('cpus:1'), [])).toBe(true);
  });

  it('reports every decision to a trace', () => {
    const skips: TraceSkip[] = [];
    const made: AllocatedOffer[] = [];
    const trace: AllocationTrace = { skip: (e) => skips.push(e), offer: (o) => made.push(o) };
    allocate(
      {
        now: 5,
        agents: [
          agent('off', 'cpus:1', 'cpus:1', false),
          agent('tiny', 'cpus:1', 'cpus:0.001'),
          agent('a1', 'cpus:4;mem:4096'),
          agent('res', 'cpus(other):4'),
        ],
        frameworks: [
          fw('f', ['r'], { filters: { a1: { until: 10, resources: parse('cpus:4;mem:4096') } } }),
          fw('g', ['s']),
        ],
      },
      { trace },
    );
    expect(skips).toContainEqual({ agentId: 'off', reason: 'agent-inactive' });
    expect(skips).toContainEqual({ agentId: 'tiny', reason: 'agent-too-small' });
    expect(skips).toContainEqual({
      agentId: 'a1',
      reason: 'filtered',
      role: 'r',
      frameworkId: 'f',
      until: 10,
    });
    expect(skips).toContainEqual({
      agentId: 'res',
      reason: 'role-nothing-offerable',
      role: 'r',
      bound: 'reserved-elsewhere',
    });
    expect(brief(made)).toEqual(['a1:g@s']);
  });
});

// ---------------------------------------------------------------------------------------------
// Simulation: cycles of allocate → frameworks launch tasks from their offers and decline the
// rest. The invariants are checked on every cycle's offers.

interface SimFramework {
  readonly id: string;
  readonly roles: string[];
  /** One task's resources (unreserved quantities; launched with `claim`). */
  readonly task: Resources;
  /** Tasks it still wants to launch (Infinity: unlimited). */
  demand: number;
  /** Tasks launched per offer (1 for the fairness properties). */
  readonly perOffer: number;
  suppressed?: string[];
}

interface SimTask {
  readonly fw: string;
  readonly role: string;
  readonly agentId: string;
  readonly resources: Resources;
}

interface Sim {
  readonly agents: { id: string; total: Resources; active: boolean }[];
  readonly frameworks: SimFramework[];
  readonly roles: RoleConfig[];
  tasks: SimTask[];
}

function consumptionOf(
  sim: Sim,
  role: string,
  extra: readonly { role: string; resources: Resources }[] = [],
): Resources {
  let c = EMPTY;
  for (const t of [...sim.tasks, ...extra])
    if (isWithinRole(t.role, role)) c = add(c, unreserved(t.resources));
  for (const a of sim.agents) {
    for (const [r, part] of Object.entries(a.total.reserved ?? {}))
      if (isWithinRole(r, role)) c = add(c, part);
  }
  return flatten(c);
}

function inputOf(sim: Sim, now: number): AllocationInput {
  const used = new Map<string, Resources>();
  for (const t of sim.tasks) used.set(t.agentId, add(used.get(t.agentId) ?? EMPTY, t.resources));
  return {
    now,
    agents: sim.agents.map((a) => ({
      agentId: a.id,
      total: a.total,
      free: subtract(a.total, used.get(a.id) ?? EMPTY),
      active: a.active,
    })),
    frameworks: sim.frameworks.map((f) => {
      const allocations: Record<string, Resources> = {};
      for (const t of sim.tasks)
        if (t.fw === f.id) allocations[t.role] = add(allocations[t.role] ?? EMPTY, t.resources);
      return {
        frameworkId: f.id,
        active: f.demand > 0,
        roles: f.roles,
        allocations,
        allocated: Object.values(allocations).reduce(add, EMPTY),
        ...(f.suppressed ? { suppressedRoles: f.suppressed } : {}),
        filters: {},
      };
    }),
    roles: sim.roles,
  };
}

/** Runs one cycle, checks the invariants on its offers, launches tasks; returns tasks launched. */
function cycle(sim: Sim, now: number, order?: number[]): number {
  const input = inputOf(sim, now);
  const { offers } = allocate(input, order ? { shuffle: () => order } : {});
  const free = new Map(input.agents.map((a) => [a.agentId, a.free]));
  const fws = new Map(sim.frameworks.map((f) => [f.id, f]));
  // No over-commit: the offers on an agent fit in what it has free.
  for (const o of offers) {
    const left = free.get(o.agentId)!;
    expect(contains(left, o.resources)).toBe(true);
    free.set(o.agentId, subtract(left, o.resources));
    const f = fws.get(o.frameworkId)!;
    expect(f.roles).toContain(o.role);
    expect(f.suppressed ?? []).not.toContain(o.role);
    // Reserved resources only to their role and below.
    for (const r of Object.keys(o.resources.reserved ?? {})) expect(isWithinRole(o.role, r)).toBe(true);
    expect(sim.agents.find((a) => a.id === o.agentId)!.active).toBe(true);
  }
  // Limits hold counting what is used and what is offered. (Reservations count as consumed, so
  // a role reserved beyond its limit is over it before any offer: offers must add nothing then.)
  for (const rc of sim.roles) {
    if (!rc.limit) continue;
    const before = consumptionOf(sim, rc.role);
    const after = consumptionOf(sim, rc.role, offers);
    for (const [name, limit] of Object.entries(rc.limit)) {
      const n = name as 'cpus' | 'mem';
      expect(after[n]).toBeLessThanOrEqual(Math.max(limit!, before[n]));
    }
  }
  // Frameworks launch from their offers; the rest is declined without a filter.
  let launched = 0;
  for (const o of offers) {
    const f = fws.get(o.frameworkId)!;
    let left = o.resources;
    for (let i = 0; i < f.perOffer && f.demand > 0; i++) {
      const got = claim(left, f.task);
      if (!got) break;
      sim.tasks.push({ fw: f.id, role: o.role, agentId: o.agentId, resources: got });
      left = subtract(left, got);
      f.demand--;
      launched++;
    }
  }
  return launched;
}

function runToQuiescence(sim: Sim, maxCycles = 400): void {
  for (let c = 0; c < maxCycles; c++) if (cycle(sim, c) === 0) return;
  throw new Error('no quiescence');
}

const shareOf = (sim: Sim, pred: (t: SimTask) => boolean, total: Resources): number =>
  dominantShare(flatten(sim.tasks.filter(pred).reduce((r, t) => add(r, t.resources), EMPTY)), flatten(total));

describe('allocator properties over cycles', () => {
  const ROLES = ['a', 'a/x', 'a/y', 'b', 'c/z'];
  const taskArb = fc
    .record({ cpus: fc.integer({ min: 1, max: 4 }), mem: fc.integer({ min: 1, max: 4 }) })
    .map(({ cpus, mem }) => resources({ cpus: cpus * 500, mem: mem * 512_000 }));
  const quantArb = fc.option(
    fc
      .record({ cpus: fc.integer({ min: 0, max: 12 }), mem: fc.integer({ min: 0, max: 12 }) })
      .map(({ cpus, mem }) => ({ cpus: cpus * 1000, mem: mem * 1_024_000 })),
    { nil: undefined },
  );
  const simArb = fc
    .record({
      agents: fc.array(
        fc.record({
          cpus: fc.integer({ min: 1, max: 8 }),
          mem: fc.integer({ min: 1, max: 8 }),
          reserveFor: fc.option(fc.constantFrom(...ROLES), { nil: undefined }),
          active: fc.constantFrom(true, true, true, false),
        }),
        { minLength: 1, maxLength: 8 },
      ),
      frameworks: fc.array(
        fc.record({
          roles: fc.uniqueArray(fc.constantFrom(...ROLES), { minLength: 1, maxLength: 2 }),
          task: taskArb,
          demand: fc.integer({ min: 0, max: 30 }),
          perOffer: fc.integer({ min: 1, max: 4 }),
          suppress: fc.boolean(),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      roles: fc.array(
        fc.record({
          role: fc.constantFrom(...ROLES),
          weight: fc.integer({ min: 1, max: 3 }),
          guarantee: quantArb,
          limit: quantArb,
        }),
        { maxLength: 4 },
      ),
      order: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
    })
    .map(({ agents, frameworks, roles, order }): { sim: Sim; order: number[] } => {
      const byRole = new Map<string, RoleConfig>();
      for (const r of roles) {
        // A guarantee within its limit, as the operator command enforces.
        const guarantee =
          r.guarantee && r.limit
            ? { cpus: Math.min(r.guarantee.cpus, r.limit.cpus), mem: Math.min(r.guarantee.mem, r.limit.mem) }
            : r.guarantee;
        byRole.set(r.role, {
          role: r.role,
          weight: r.weight,
          ...(guarantee ? { guarantee } : {}),
          ...(r.limit ? { limit: r.limit } : {}),
        });
      }
      const perm = Array.from({ length: agents.length }, (_, i) => i).sort(
        (x, y) => order[x]! - order[y]! || x - y,
      );
      return {
        order: perm,
        sim: {
          agents: agents.map((a, i) => {
            const half = resources({ cpus: (a.cpus * 1000) / 2, mem: (a.mem * 1_024_000) / 2 });
            const total = a.reserveFor
              ? add(half, resources({ reserved: { [a.reserveFor]: half } }))
              : resources({ cpus: a.cpus * 1000, mem: a.mem * 1_024_000 });
            return { id: `ag${i}`, total, active: a.active };
          }),
          frameworks: frameworks.map((f, j) => ({
            id: `f${j}`,
            roles: f.roles,
            task: f.task,
            demand: f.demand,
            perOffer: f.perOffer,
            ...(f.suppress && f.roles.length > 1 ? { suppressed: [f.roles[0]!] } : {}),
          })),
          roles: [...byRole.values()],
          tasks: [],
        },
      };
    });

  it('never over-commits an agent, never exceeds a limit, and gives reserved resources only to their role subtree', () => {
    fc.assert(
      fc.property(simArb, ({ sim, order }) => {
        for (let c = 0; c < 12; c++) {
          cycle(sim, c, order);
          // Some tasks end, freeing resources for the next cycle.
          if (c % 3 === 2) sim.tasks = sim.tasks.filter((_, i) => i % 2 === 0);
        }
      }),
      { numRuns: 250 },
    );
  });

  it('meets every guarantee whenever its role has the demand and the cluster has the resources', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 3, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        (guarantees, agentsN, greedyN) => {
          // Agents of 4 cpus / 4 GB; tasks of 1 cpu / 1 GB; guarantees in whole tasks, within the cluster.
          const cap = agentsN * 4;
          const gs = guarantees.map((g, i) =>
            guarantees.slice(0, i + 1).reduce((s, x) => s + x, 0) <= cap ? g : 0,
          );
          const task = parse('cpus:1;mem:1024');
          const sim: Sim = {
            agents: Array.from({ length: agentsN }, (_, i) => ({
              id: `ag${i}`,
              total: parse('cpus:4;mem:4096'),
              active: true,
            })),
            frameworks: [
              ...gs.map((g, i) => ({ id: `q${i}`, roles: [`q${i}`], task, demand: g + 2, perOffer: 1 })),
              ...Array.from({ length: greedyN }, (_, i) => ({
                id: `g${i}`,
                roles: ['greedy'],
                task,
                demand: Number.POSITIVE_INFINITY,
                perOffer: 4,
              })),
            ],
            roles: gs.map((g, i) => ({ role: `q${i}`, guarantee: { cpus: g * 1000, mem: g * 1_024_000 } })),
            tasks: [],
          };
          runToQuiescence(sim);
          for (let i = 0; i < gs.length; i++) {
            const c = consumptionOf(sim, `q${i}`);
            expect(c.cpus).toBeGreaterThanOrEqual(gs[i]! * 1000);
          }
          // And the cluster is not left idle: everything is used.
          expect(sim.tasks.length).toBe(cap);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('with equal demand and equal weights, ends with dominant shares within one task of each other', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 1, max: 12 }),
        fc.record({ cpus: fc.integer({ min: 1, max: 4 }), mem: fc.integer({ min: 1, max: 4 }) }),
        fc.boolean(),
        (nFw, nAgents, t, sameRole) => {
          const task = resources({ cpus: t.cpus * 500, mem: t.mem * 512_000 });
          const total = parse('cpus:8;mem:8192');
          const sim: Sim = {
            agents: Array.from({ length: nAgents }, (_, i) => ({ id: `ag${i}`, total, active: true })),
            frameworks: Array.from({ length: nFw }, (_, j) => ({
              id: `f${j}`,
              roles: [sameRole ? 'shared' : `r${j}`],
              task,
              demand: Number.POSITIVE_INFINITY,
              perOffer: 1,
            })),
            roles: [],
            tasks: [],
          };
          runToQuiescence(sim);
          const cluster = resources({ cpus: 8000 * nAgents, mem: 8_192_000 * nAgents });
          const shares = sim.frameworks.map((f) => shareOf(sim, (x) => x.fw === f.id, cluster));
          const one = dominantShare(task, cluster);
          expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(one + 1e-9);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('with weights w1:w2, ends with shares in that ratio within one task', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 10 }),
        (w1, w2, nAgents) => {
          const task = parse('cpus:0.5;mem:256');
          const total = parse('cpus:8;mem:4096');
          const sim: Sim = {
            agents: Array.from({ length: nAgents }, (_, i) => ({ id: `ag${i}`, total, active: true })),
            frameworks: [
              { id: 'f1', roles: ['one'], task, demand: Number.POSITIVE_INFINITY, perOffer: 1 },
              { id: 'f2', roles: ['two'], task, demand: Number.POSITIVE_INFINITY, perOffer: 1 },
            ],
            roles: [
              { role: 'one', weight: w1 },
              { role: 'two', weight: w2 },
            ],
            tasks: [],
          };
          runToQuiescence(sim);
          const cluster = resources({ cpus: 8000 * nAgents, mem: 4_096_000 * nAgents });
          const s1 = shareOf(sim, (x) => x.fw === 'f1', cluster);
          const s2 = shareOf(sim, (x) => x.fw === 'f2', cluster);
          const one = dominantShare(task, cluster);
          expect(Math.abs(s1 / w1 - s2 / w2)).toBeLessThanOrEqual(one / Math.min(w1, w2) + 1e-9);
        },
      ),
      { numRuns: 200 },
    );
  });
});
