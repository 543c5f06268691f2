/**
 * The operator HTTP API as a pure router: a request (method, path, query, the caller's principal)
 * in, a response (status, headers, body) out, over the control plane's dependencies. No server
 * here: the local stack serves it with node:http on 127.0.0.1 (lib/local/operator-server.ts) and
 * AWS with a Lambda behind a function URL with IAM auth (lib/lambda/operator-api.ts). Routes and
 * their JSON are in docs/operator-api.md.
 *
 * Reads need only reaching the API (IAM decides who can in AWS); KILL and TEARDOWN are checked
 * against the stored ACLs as the caller's principal (lib/control/operator-actions.ts).
 */
import type { Acls } from '../core/acl.ts';
import { formatExplanation } from '../core/explain.ts';
import type { ControlDeps } from './deps.ts';
import { explainNow, isFramework, OperatorError } from './operator.ts';
import {
  ForbiddenError,
  findTasks,
  NotFoundError,
  operatorKill,
  operatorTeardown,
} from './operator-actions.ts';
import {
  type ClusterState,
  filterTasks,
  parseDuration,
  readClusterState,
  type TaskFilter,
  taskView,
} from './operator-state.ts';
import { type RecentStats, readRecentStats } from './operator-stats.ts';

export interface ApiRequest {
  readonly method: string;
  /** The path without the query string, e.g. `/api/tasks`. */
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  /** Who calls: the IAM ARN in AWS, the local user locally. */
  readonly principal: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface StaticAsset {
  readonly contentType: string;
  readonly body: string;
}

export interface OperatorApiDeps {
  readonly control: ControlDeps;
  /** Approximate depth of each dead-letter queue. */
  readonly dlqDepths?: () => Promise<Record<string, number>>;
  /** The control plane's counters (the local stack's; in AWS they are CloudWatch metrics). */
  readonly counters?: () => Readonly<Record<string, number>>;
  /** ACLs when none are stored. */
  readonly fallbackAcls?: Acls;
  /** The dashboard's files by path (`/`, `/dashboard.js`). */
  readonly assets?: Readonly<Record<string, StaticAsset>>;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

const json = (status: number, value: unknown): ApiResponse => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS },
  body: `${JSON.stringify(value)}\n`,
});

const error = (status: number, message: string) => json(status, { error: message });

/** Ids in paths: what task and framework ids may be (lib/protocol), nothing that escapes a path. */
const ID = /^[A-Za-z0-9._:@-]{1,256}$/;

/** The figures the dashboard and `GET /api/metrics` show, from one snapshot and the recent history. */
export interface OperatorMetrics {
  readonly at: number;
  /** Used and offered of the cluster's total, per resource, 0..1. */
  readonly cluster: { readonly used: Record<string, number>; readonly offered: Record<string, number> };
  /** Per agent: used of its total (dominant resource), 0..1. */
  readonly agents: Readonly<Record<string, number>>;
  /** Per role: allocated (used and offered) of the cluster (dominant resource), 0..1. */
  readonly roles: Readonly<Record<string, number>>;
  readonly offersOutstanding: number;
  /** Allocator cycles recorded in the last hour: count and duration (ms). */
  readonly cycles: {
    readonly count: number;
    readonly lastMs?: number;
    readonly maxMs?: number;
    readonly p50Ms?: number;
  };
  /** Tasks whose last update is their TASK_RUNNING: ACCEPT to RUNNING (ms). */
  readonly launchLatency: { readonly count: number; readonly p50Ms?: number; readonly maxMs?: number };
  /** Calls the control plane refused, by counter name (local stack only; CloudWatch in AWS). */
  readonly rejectedCalls?: Readonly<Record<string, number>>;
  readonly deadLetters?: Readonly<Record<string, number>>;
}

const frac = (a: number | undefined, t: number | undefined): number => (t && t > 0 ? (a ?? 0) / t : 0);
const p50 = (xs: number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

/** Pure: the metrics from a snapshot, the recent history and the counters. */
export function operatorMetrics(
  s: ClusterState,
  recent: RecentStats,
  counters?: Readonly<Record<string, number>>,
  deadLetters?: Readonly<Record<string, number>>,
): OperatorMetrics {
  const t = s.totals.total;
  const dom = (r: { cpus?: number; mem?: number }, total: { cpus?: number; mem?: number }) =>
    Math.max(frac(r.cpus, total.cpus), frac(r.mem, total.mem));
  const cycleMs = recent.cycles.filter((c) => c.at > s.at - 3_600_000).map((c) => c.durationMs);
  const launch = s.tasks
    .filter((x) => x.state === 'TASK_RUNNING')
    .map((x) => x.updatedAt - x.createdAt)
    .filter((ms) => ms >= 0);
  const rejected = counters
    ? Object.fromEntries(
        Object.entries(counters).filter(
          ([k]) => k.startsWith('RejectedCalls') || k.startsWith('OperatorCallsRejected'),
        ),
      )
    : undefined;
  return {
    at: s.at,
    cluster: {
      used: {
        cpus: frac(s.totals.used.cpus, t.cpus),
        mem: frac(s.totals.used.mem, t.mem),
        disk: frac(s.totals.used.disk, t.disk),
      },
      offered: {
        cpus: frac(s.totals.offered.cpus, t.cpus),
        mem: frac(s.totals.offered.mem, t.mem),
        disk: frac(s.totals.offered.disk, t.disk),
      },
    },
    agents: Object.fromEntries(s.agents.map((a) => [a.agentId, dom(a.used, a.total)])),
    roles: Object.fromEntries(s.roles.map((r) => [r.role, dom(r.allocated, t)])),
    offersOutstanding: s.offers.length,
    cycles: {
      count: cycleMs.length,
      ...(cycleMs.length ? { lastMs: cycleMs.at(-1), maxMs: Math.max(...cycleMs), p50Ms: p50(cycleMs) } : {}),
    },
    launchLatency: {
      count: launch.length,
      ...(launch.length ? { p50Ms: p50(launch), maxMs: Math.max(...launch) } : {}),
    },
    ...(rejected ? { rejectedCalls: rejected } : {}),
    ...(deadLetters ? { deadLetters } : {}),
  };
}

function taskFilter(q: ApiRequest['query'], now: number): TaskFilter | string {
  let since: number | undefined;
  if (q.since) {
    const ms = parseDuration(q.since);
    if (ms === undefined) return `since wants a duration like 90s, 15m, 1h or 2d, got "${q.since}"`;
    since = now - ms;
  }
  return {
    ...(q.state ? { state: q.state } : {}),
    ...(q.framework ? { framework: q.framework } : {}),
    ...(q.agent ? { agent: q.agent } : {}),
    ...(q.role ? { role: q.role } : {}),
    ...(since !== undefined ? { since } : {}),
  };
}

/**
 * Answers one request. Never throws: bad input is a 4xx with `{"error": ...}`, a failure a 500
 * (its message logged, not sent).
 *
 * @example
 * const res = await handleOperatorApi({ method: 'GET', path: '/api/state', query: {}, principal: 'ops' }, { control });
 */
/** How long a dashboard snapshot is served again (ms): the page polls every 2 s. */
export const DASHBOARD_FRESH_MS = 5_000;

interface Snapshot {
  readonly at: number;
  readonly value: Promise<unknown>;
}
/** The last dashboard snapshot per control plane (one per API process or Lambda instance). */
const snapshots = new WeakMap<ControlDeps, Snapshot>();

/**
 * Everything the dashboard shows, from one read of the records — shared by every poll within
 * {@link DASHBOARD_FRESH_MS}, from any number of open pages, including polls that arrive while
 * the read is under way. The read scans the agents, frameworks, meta and tasks tables, so a page
 * polling every 2 s read them all every 2 s; now one read serves the polls of 5 s. A failed read
 * is not kept.
 */
function dashboardSnapshot(deps: OperatorApiDeps): Promise<unknown> {
  const c = deps.control;
  const now = c.clock.now();
  const last = snapshots.get(c);
  if (last && now >= last.at && now - last.at < DASHBOARD_FRESH_MS) return last.value;
  const value = (async () => {
    const [state, recent, dl] = await Promise.all([
      readClusterState(c),
      readRecentStats(c),
      deps.dlqDepths ? deps.dlqDepths() : Promise.resolve(undefined),
    ]);
    return {
      state,
      metrics: operatorMetrics(state, recent, deps.counters?.(), dl),
      cycles: recent.cycles,
      utilisation: recent.utilisation,
      dlq: dl ?? {},
    };
  })();
  snapshots.set(c, { at: now, value });
  value.catch(() => {
    if (snapshots.get(c)?.value === value) snapshots.delete(c);
  });
  return value;
}

export async function handleOperatorApi(req: ApiRequest, deps: OperatorApiDeps): Promise<ApiResponse> {
  const c = deps.control;
  try {
    const parts = req.path.split('/').filter(Boolean);
    if (parts[0] !== 'api') {
      const asset = req.method === 'GET' ? deps.assets?.[req.path === '' ? '/' : req.path] : undefined;
      if (!asset) return error(404, `no such path: ${req.path.slice(0, 200)}`);
      return {
        status: 200,
        headers: {
          'content-type': asset.contentType,
          ...SECURITY_HEADERS,
          'content-security-policy':
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        },
        body: asset.body,
      };
    }
    const [, a, id, action] = parts;
    if (id !== undefined && !ID.test(id)) return error(400, 'bad id in path');
    for (const k of ['framework', 'agent'] as const) {
      const v = req.query[k];
      if (v !== undefined && !ID.test(v)) return error(400, `bad ${k} id`);
    }
    for (const k of ['role', 'state', 'since'] as const) {
      if ((req.query[k]?.length ?? 0) > 512) return error(400, `${k} is too long`);
    }
    if (req.method === 'POST') {
      // An operator's action shows on the next poll, not after the snapshot's freshness period.
      snapshots.delete(c);
      if (a === 'tasks' && id && action === 'kill' && parts.length === 4) {
        const r = await operatorKill(
          c,
          { principal: req.principal, ...(deps.fallbackAcls ? { fallbackAcls: deps.fallbackAcls } : {}) },
          id,
          req.query.framework,
        );
        return json(200, { taskId: id, frameworkId: r.task.frameworkId, outcome: r.outcome });
      }
      if (a === 'frameworks' && id && action === 'teardown' && parts.length === 4) {
        const r = await operatorTeardown(
          c,
          { principal: req.principal, ...(deps.fallbackAcls ? { fallbackAcls: deps.fallbackAcls } : {}) },
          id,
        );
        return json(200, { frameworkId: id, ...r });
      }
      return error(404, 'no such action');
    }
    if (req.method !== 'GET') return error(405, 'only GET and POST');
    if (parts.length === 2 || (parts.length === 3 && a === 'tasks')) {
      switch (a) {
        case 'state':
          return json(200, await readClusterState(c));
        case 'agents':
          return json(200, (await readClusterState(c)).agents);
        case 'frameworks':
          return json(200, (await readClusterState(c)).frameworks);
        case 'roles':
          return json(200, (await readClusterState(c)).roles);
        case 'offers':
          return json(200, (await readClusterState(c)).offers);
        case 'tasks': {
          if (id) {
            const found = await findTasks(c, id, req.query.framework);
            if (found.length === 0) return error(404, `no task ${id} is recorded`);
            return json(200, found.map(taskView));
          }
          const f = taskFilter(req.query, c.clock.now());
          if (typeof f === 'string') return error(400, f);
          return json(200, filterTasks((await readClusterState(c)).tasks, f));
        }
        case 'cycles':
          return json(200, (await readRecentStats(c)).cycles);
        case 'utilisation':
          return json(200, (await readRecentStats(c)).utilisation);
        case 'dlq':
          return json(200, deps.dlqDepths ? await deps.dlqDepths() : {});
        case 'dashboard':
          return json(200, await dashboardSnapshot(deps));
        case 'metrics': {
          const [s, recent, dl] = await Promise.all([
            readClusterState(c),
            readRecentStats(c),
            deps.dlqDepths ? deps.dlqDepths() : Promise.resolve(undefined),
          ]);
          return json(200, operatorMetrics(s, recent, deps.counters?.(), dl));
        }
        case 'explain': {
          const { framework, role } = req.query;
          if ((framework ? 1 : 0) + (role ? 1 : 0) !== 1)
            return error(400, 'give framework=<id> or role=<role>');
          if (framework && !(await isFramework(c, framework))) return error(404, `no framework ${framework}`);
          const r = await explainNow(c, framework ? { framework } : { role: role! });
          return json(200, { ...r, text: formatExplanation(r.explanation) });
        }
      }
    }
    return error(404, `no such path: ${req.path.slice(0, 200)}`);
  } catch (e) {
    if (e instanceof ForbiddenError) return error(403, e.message);
    if (e instanceof NotFoundError) return error(404, e.message);
    if (e instanceof OperatorError) return error(400, e.message);
    c.log.error('operator API failed', { path: req.path.slice(0, 200), error: String(e) });
    return error(500, 'internal error');
  }
}
