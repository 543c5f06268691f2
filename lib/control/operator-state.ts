/**
 * The operator's view of the cluster in one snapshot (Mesos's `/state` in spirit): agents,
 * frameworks, tasks, roles and outstanding offers, with cluster totals (used / offered / idle).
 * `meso state`, `meso frameworks`, `meso tasks`, the operator HTTP API and the dashboard all read
 * it. Resources are in the units operators type and read everywhere: cpus as decimals, mem and
 * disk in MB (the protocol's wire form, lib/core/resources.ts `toWire`), never the stored
 * thousandths.
 */
import { type RoleSummary, summarizeRoles } from '../core/explain.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import {
  add,
  EMPTY,
  flatten,
  type Resources,
  SCALARS,
  subtract,
  toWire,
  type WireResources,
} from '../core/resources.ts';
import { formatQuantities, type Quantities } from '../core/roles.ts';
import type { Item } from '../ports/store.ts';
import { buildAllocationInput, readCycleRecords, roleOfRecord } from './allocation.ts';
import type { ControlDeps } from './deps.ts';

export interface AgentView {
  readonly agentId: string;
  readonly hostname: string;
  /** ACTIVE, UNREACHABLE or GONE; `mode` says whether an operator drained or deactivated it. */
  readonly status: string;
  readonly mode: 'ACTIVE' | 'DRAINING' | 'DEACTIVATED';
  readonly attributes: Readonly<Record<string, string | number>>;
  readonly total: WireResources;
  readonly used: WireResources;
  readonly offered: WireResources;
  readonly idle: WireResources;
  readonly tasks: number;
  readonly offers: number;
  readonly registeredAt: number;
  readonly lastSeenAt: number;
}

export interface FrameworkView {
  readonly frameworkId: string;
  readonly name: string;
  readonly principal: string;
  readonly user?: string;
  readonly roles: readonly string[];
  readonly status: string;
  readonly suppressedRoles: readonly string[];
  readonly failoverTimeoutSeconds: number;
  readonly partitionAware: boolean;
  readonly used: WireResources;
  readonly offered: WireResources;
  /** Dominant share of the cluster (used and offered), 0..1. */
  readonly share: number;
  readonly activeTasks: number;
  readonly subscribedAt: number;
  readonly lastSeenAt?: number;
  readonly removedReason?: string;
}

export interface TaskView {
  readonly taskId: string;
  readonly frameworkId: string;
  readonly agentId: string;
  readonly name?: string;
  readonly role?: string;
  readonly state: string;
  readonly reason?: string;
  readonly message?: string;
  readonly exitCode?: number;
  readonly stdoutTail?: string;
  readonly stderrTail?: string;
  readonly resources: WireResources;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface RoleView {
  readonly role: string;
  readonly weight: number;
  readonly guarantee?: string;
  readonly limit?: string;
  readonly allocated: WireResources;
  readonly offered: WireResources;
  readonly reserved: WireResources;
  readonly consumed: WireResources;
  /** Weighted dominant share, 0..1. */
  readonly share: number;
  readonly frameworks: number;
}

export interface OfferView {
  readonly offerId: string;
  readonly frameworkId: string;
  readonly agentId: string;
  readonly role: string;
  readonly resources: WireResources;
  readonly expiresAt: number;
}

export interface ClusterTotals {
  readonly total: WireResources;
  readonly used: WireResources;
  readonly offered: WireResources;
  readonly idle: WireResources;
}

export interface ClusterState {
  /** When it was read (ms since epoch). */
  readonly at: number;
  readonly totals: ClusterTotals;
  readonly agents: readonly AgentView[];
  readonly frameworks: readonly FrameworkView[];
  readonly tasks: readonly TaskView[];
  readonly roles: readonly RoleView[];
  readonly offers: readonly OfferView[];
}

/** Plain scalars (reservations folded in) in operator units: what tables and plots show. */
export const wire = (r: Resources): WireResources => {
  const { reserved: _r, ...plain } = toWire(flatten(r));
  return plain;
};

const sumOf = (list: Iterable<Resources>): Resources => {
  let s = EMPTY;
  for (const r of list) s = add(s, r);
  return s;
};

/** The largest fraction of `total` that `r` takes in any scalar (0 when the cluster is empty). */
export function dominantShare(r: Resources, total: Resources): number {
  const f = flatten(r);
  const t = flatten(total);
  let share = 0;
  for (const s of SCALARS) if (t[s] > 0) share = Math.max(share, f[s] / t[s]);
  return share;
}

export function agentView(a: AgentRecord): AgentView {
  const used = sumOf(Object.values(a.tasks).map((t) => t.resources));
  const offered = sumOf(Object.values(a.offers).map((o) => o.resources));
  return {
    agentId: a.agentId,
    hostname: a.hostname,
    status: a.status,
    mode: a.operatorStatus ?? 'ACTIVE',
    attributes: a.attributes ?? {},
    total: wire(a.total),
    used: wire(used),
    offered: wire(offered),
    idle: wire(subtract(subtract(a.total, used), offered)),
    tasks: Object.keys(a.tasks).length,
    offers: Object.keys(a.offers).length,
    registeredAt: a.registeredAt,
    lastSeenAt: a.lastSeenAt,
  };
}

export function taskView(t: TaskRecord): TaskView {
  // The latest state its agent reported, even while an earlier update waits for its framework.
  const s = t.latest ?? t.status;
  return {
    taskId: t.taskId,
    frameworkId: t.frameworkId,
    agentId: t.agentId,
    ...(t.info?.name ? { name: t.info.name } : {}),
    ...(t.role ? { role: t.role } : {}),
    state: s?.state ?? t.state,
    ...(s?.reason ? { reason: s.reason } : {}),
    ...(s?.message ? { message: s.message } : {}),
    ...(s?.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
    ...(s?.stdoutTail ? { stdoutTail: s.stdoutTail } : {}),
    ...(s?.stderrTail ? { stderrTail: s.stderrTail } : {}),
    resources: wire(t.resources),
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

const quantities = (q: Quantities | undefined): string | undefined => (q ? formatQuantities(q) : undefined);

export function roleView(r: RoleSummary): RoleView {
  const guarantee = quantities(r.guarantee);
  const limit = quantities(r.limit);
  return {
    role: r.role,
    weight: r.weight,
    ...(guarantee ? { guarantee } : {}),
    ...(limit ? { limit } : {}),
    allocated: wire(r.allocated),
    offered: wire(r.offered),
    reserved: wire(r.reserved),
    consumed: wire(r.consumed),
    share: r.share,
    frameworks: r.frameworks,
  };
}

/** Builds the snapshot from the records (pure: the caller reads them). */
export function buildClusterState(input: {
  readonly at: number;
  readonly agents: readonly AgentRecord[];
  readonly frameworks: readonly FrameworkRecord[];
  readonly tasks: readonly TaskRecord[];
  readonly roles: readonly RoleSummary[];
}): ClusterState {
  const fwById = new Map(input.frameworks.map((f) => [f.frameworkId, f]));
  const live = input.agents.filter((a) => a.status !== 'GONE');
  const total = sumOf(live.map((a) => a.total));
  const used = sumOf(live.flatMap((a) => Object.values(a.tasks).map((t) => t.resources)));
  const offered = sumOf(live.flatMap((a) => Object.values(a.offers).map((o) => o.resources)));
  const fwUsed = new Map<string, Resources>();
  const fwOffered = new Map<string, Resources>();
  const offers: OfferView[] = [];
  for (const a of input.agents) {
    for (const t of Object.values(a.tasks))
      fwUsed.set(t.frameworkId, add(fwUsed.get(t.frameworkId) ?? EMPTY, t.resources));
    for (const o of Object.values(a.offers)) {
      fwOffered.set(o.frameworkId, add(fwOffered.get(o.frameworkId) ?? EMPTY, o.resources));
      offers.push({
        offerId: o.offerId,
        frameworkId: o.frameworkId,
        agentId: a.agentId,
        role: roleOfRecord(o.role, fwById.get(o.frameworkId)),
        resources: wire(o.resources),
        expiresAt: o.expiresAt,
      });
    }
  }
  const activeTasks = new Map<string, number>();
  for (const a of input.agents)
    for (const t of Object.values(a.tasks))
      activeTasks.set(t.frameworkId, (activeTasks.get(t.frameworkId) ?? 0) + 1);
  const frameworks = input.frameworks.map((f): FrameworkView => {
    const u = fwUsed.get(f.frameworkId) ?? EMPTY;
    const o = fwOffered.get(f.frameworkId) ?? EMPTY;
    return {
      frameworkId: f.frameworkId,
      name: f.name,
      principal: f.principal,
      ...(f.user ? { user: f.user } : {}),
      roles: f.roles,
      status: f.status,
      suppressedRoles: f.suppressedRoles ?? [],
      failoverTimeoutSeconds: f.failoverTimeoutSeconds,
      partitionAware: f.partitionAware,
      used: wire(u),
      offered: wire(o),
      share: dominantShare(add(u, o), total),
      activeTasks: activeTasks.get(f.frameworkId) ?? 0,
      subscribedAt: f.subscribedAt,
      ...(f.lastSeenAt !== undefined ? { lastSeenAt: f.lastSeenAt } : {}),
      ...(f.removedReason ? { removedReason: f.removedReason } : {}),
    };
  });
  return {
    at: input.at,
    totals: {
      total: wire(total),
      used: wire(used),
      offered: wire(offered),
      idle: wire(subtract(subtract(total, used), offered)),
    },
    agents: [...input.agents]
      .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.agentId.localeCompare(b.agentId))
      .map(agentView),
    frameworks: frameworks.sort((a, b) => b.subscribedAt - a.subscribedAt),
    tasks: [...input.tasks].sort((a, b) => b.updatedAt - a.updatedAt).map(taskView),
    roles: input.roles.map(roleView),
    offers,
  };
}

/** Reads every record once and builds the snapshot. Tasks: all the table holds (finished ones expire). */
export async function readClusterState(deps: ControlDeps): Promise<ClusterState> {
  const [records, tasks] = await Promise.all([
    readCycleRecords(deps),
    deps.store.scan<TaskRecord & Item>('tasks'),
  ]);
  const at = deps.clock.now();
  // The roles report of `meso roles` (lib/control/operator.ts), from the same records.
  const fwById = new Map(records.frameworks.map((f) => [f.frameworkId, f]));
  const offered = new Map<string, Resources>();
  for (const a of records.agents)
    for (const o of Object.values(a.offers)) {
      const role = roleOfRecord(o.role, fwById.get(o.frameworkId));
      offered.set(role, add(offered.get(role) ?? EMPTY, o.resources));
    }
  const roles = summarizeRoles(buildAllocationInput(records, { now: at }), Object.fromEntries(offered));
  return buildClusterState({ at, agents: records.agents, frameworks: records.frameworks, tasks, roles });
}

export interface TaskFilter {
  readonly state?: string;
  readonly framework?: string;
  readonly agent?: string;
  readonly role?: string;
  /** Only tasks updated at or after this time (ms since epoch). */
  readonly since?: number;
}

/** `TASK_RUNNING`, `running` and `RUNNING` all name the same state. */
export const normalizeState = (s: string): string => {
  const u = s.trim().toUpperCase();
  return u.startsWith('TASK_') ? u : `TASK_${u}`;
};

export function filterTasks(tasks: readonly TaskView[], f: TaskFilter): TaskView[] {
  const state = f.state ? normalizeState(f.state) : undefined;
  return tasks.filter(
    (t) =>
      (!state || t.state === state) &&
      (!f.framework || t.frameworkId === f.framework) &&
      (!f.agent || t.agentId === f.agent) &&
      (!f.role || t.role === f.role) &&
      (f.since === undefined || t.updatedAt >= f.since),
  );
}

/** `90s`, `15m`, `1h`, `2d` as milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}
