/**
 * Cluster shapes for the allocator benchmark (`bench/allocator.ts`): pure builders of
 * `AllocationInput`s, deterministic (a seeded generator), so every run measures the same cycle.
 */
import type { AllocationAgent, AllocationFramework, AllocationInput } from '../lib/core/allocator.ts';
import type { FilterRecord } from '../lib/core/model.ts';
import { EMPTY, parse, type Resources, resources } from '../lib/core/resources.ts';
import type { RoleConfig } from '../lib/core/roles.ts';
import { mulberry32 } from './common.ts';

/** Mesos's benchmark agents are small servers; ours: 16 cpus, 64 GB, 100 GB disk, 1,001 ports. */
export const AGENT = parse('cpus:16;mem:65536;disk:102400;ports:[31000-32000]');
/** Half an agent (what the "50 % allocated" shape runs on every agent). */
export const HALF = parse('cpus:8;mem:32768;disk:51200;ports:[31000-31500]');
export const HALF_FREE = parse('cpus:8;mem:32768;disk:51200;ports:[31501-32000]');

/** A Fisher-Yates permutation of 0..n-1 (the allocator's agent shuffle). */
export function shuffler(seed: number): (n: number) => number[] {
  return (n) => {
    const r = mulberry32(seed);
    const out = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };
}

export interface ShapeOptions {
  readonly agents: number;
  readonly frameworks: number;
  /** Share of every agent already running tasks (0 or 0.5). */
  readonly allocated?: 0 | 0.5;
  /**
   * Roles the frameworks are spread over: √frameworks top-level roles, every third with two
   * child roles (so the hierarchy is exercised), weights 1-3. Default true.
   */
  readonly roles?: boolean;
}

/** Role names for a shape: `team<i>` and, for every third, `team<i>/web` and `team<i>/batch`. */
export function shapeRoles(frameworks: number): { roles: string[]; configs: RoleConfig[] } {
  const top = Math.max(1, Math.round(Math.sqrt(frameworks)));
  const roles: string[] = [];
  const configs: RoleConfig[] = [];
  for (let i = 0; i < top; i++) {
    const name = `team${i}`;
    if (i % 3 === 0) roles.push(`${name}/web`, `${name}/batch`);
    else roles.push(name);
    configs.push({ role: name, weight: 1 + (i % 3) });
  }
  return { roles, configs };
}

export function buildShape(o: ShapeOptions): AllocationInput {
  const { roles, configs } = o.roles === false ? { roles: ['*'], configs: [] } : shapeRoles(o.frameworks);
  const agents: AllocationAgent[] = [];
  const cpusPer = Array.from({ length: o.frameworks }, () => 0);
  for (let i = 0; i < o.agents; i++) {
    const agentId = `agent-${i.toString().padStart(6, '0')}`;
    if (o.allocated === 0.5) {
      agents.push({ agentId, total: AGENT, free: HALF_FREE, active: true });
      cpusPer[i % o.frameworks]! += 1;
    } else {
      agents.push({ agentId, total: AGENT, free: AGENT, active: true });
    }
  }
  const frameworks: AllocationFramework[] = cpusPer.map((n, j) => ({
    frameworkId: `fw-${j.toString().padStart(5, '0')}`,
    active: true,
    roles: [roles[j % roles.length]!],
    allocated: n === 0 ? EMPTY : resources({ cpus: HALF.cpus * n, mem: HALF.mem * n, disk: HALF.disk * n }),
    filters: {},
  }));
  return { now: 1_000_000, agents, frameworks, roles: configs };
}

/**
 * The cycle after every framework has declined with filters: each framework refused, for a
 * long time, every offer it got in the previous cycle (one filter per agent, Mesos's
 * DeclineOffers benchmark), so the same agents must now go to someone else.
 */
export function withDeclines(
  input: AllocationInput,
  previous: readonly { frameworkId: string; agentId: string; resources: Resources }[],
): AllocationInput {
  const filters = new Map<string, Record<string, FilterRecord>>();
  for (const o of previous) {
    const f = filters.get(o.frameworkId) ?? {};
    f[o.agentId] = { until: input.now + 365 * 86_400_000, resources: o.resources };
    filters.set(o.frameworkId, f);
  }
  return {
    ...input,
    frameworks: input.frameworks.map((f) => ({ ...f, filters: filters.get(f.frameworkId) ?? {} })),
  };
}

/**
 * Quota-heavy (Mesos's quota benchmark shape): `agents` agents, one role per framework, every
 * role guaranteed an equal part of half the cluster (so guarantees are satisfiable and headroom
 * matters), every fourth role also limited.
 */
export function buildQuotaShape(agents: number, roles: number): AllocationInput {
  const base = buildShape({ agents, frameworks: roles, roles: false });
  const per = (AGENT.cpus * agents) / 2 / roles;
  const perMem = (AGENT.mem * agents) / 2 / roles;
  const configs: RoleConfig[] = [];
  const frameworks: AllocationFramework[] = base.frameworks.map((f, j) => {
    const role = `quota${j}`;
    configs.push({
      role,
      guarantee: { cpus: Math.floor(per), mem: Math.floor(perMem) },
      ...(j % 4 === 0 ? { limit: { cpus: Math.floor(per * 2), mem: Math.floor(perMem * 2) } } : {}),
    });
    return { ...f, roles: [role] };
  });
  return { ...base, frameworks, roles: configs };
}
