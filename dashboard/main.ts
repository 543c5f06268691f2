/// <reference lib="dom" />
/**
 * The operator dashboard: polls the operator API (relative URLs, so it works wherever the API is
 * served) and renders the cluster. Everything a framework or a task controls (names, ids, output
 * tails) reaches the page as text nodes only, never as markup. The plot is uPlot.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { OperatorMetrics } from '../lib/control/operator-api.ts';
import type { ClusterState, TaskView } from '../lib/control/operator-state.ts';
import type { CycleEntry, UtilisationSample } from '../lib/control/operator-stats.ts';

type Child = Node | string | number | undefined | null | false;

/** An element with attributes and children; strings become text nodes. */
function h(tag: string, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

const $ = (sel: string) => document.querySelector(sel) as HTMLElement;

function table(
  header: string[],
  rows: Child[][],
  rowAttrs?: (i: number) => Record<string, string>,
): HTMLElement {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, ...header.map((x) => h('th', {}, x)))),
    h('tbody', {}, ...rows.map((r, i) => h('tr', rowAttrs?.(i) ?? {}, ...r.map((c) => h('td', {}, c))))),
  );
}

function put(id: string, content: Node | string): void {
  const body = $(`#${id} .body`);
  body.replaceChildren(content);
}

type Res = { cpus?: number; mem?: number; disk?: number; gpus?: number };
const res = (r: Res) =>
  (['cpus', 'mem', 'disk', 'gpus'] as const)
    .filter((k) => (r[k] ?? 0) > 0)
    .map((k) => `${k}:${+(r[k] ?? 0).toFixed(3)}`)
    .join(' ') || '-';
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const bar = (x: number) =>
  h(
    'span',
    {},
    h('span', { class: 'bar' }, h('span', { style: `width:${Math.min(100, x * 100)}%` })),
    pct(x),
  );
const age = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
};
const frac = (a?: number, t?: number) => (t ? (a ?? 0) / t : 0);

async function get<T>(path: string): Promise<T> {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return (await r.json()) as T;
}

async function post(path: string): Promise<string> {
  const r = await fetch(path, { method: 'POST' });
  const body = (await r.json()) as { error?: string; outcome?: string };
  return r.ok ? (body.outcome ?? 'done') : `refused: ${body.error}`;
}

function renderTotals(s: ClusterState, m: OperatorMetrics): void {
  const t = s.totals;
  const card = (label: string, value: Child, sub?: string) =>
    h('div', { class: 'card' }, label, h('b', {}, value), sub ? h('span', { class: 'muted' }, sub) : null);
  $('#totals .cards').replaceChildren(
    card('total', res(t.total)),
    card(
      'used',
      res(t.used),
      `cpus ${pct(frac(t.used.cpus, t.total.cpus))}, mem ${pct(frac(t.used.mem, t.total.mem))}`,
    ),
    card('offered', res(t.offered), `${s.offers.length} offer(s) outstanding`),
    card('idle', res(t.idle)),
    card('agents', s.agents.length, `${s.agents.filter((a) => a.status === 'ACTIVE').length} active`),
    card('frameworks', s.frameworks.filter((f) => f.status !== 'TORN_DOWN').length),
    card(
      'tasks running',
      s.tasks.filter((x) => x.state === 'TASK_RUNNING').length,
      m.launchLatency.p50Ms !== undefined ? `launch p50 ${Math.round(m.launchLatency.p50Ms)} ms` : undefined,
    ),
  );
}

function renderAgents(s: ClusterState): void {
  if (s.agents.length === 0) {
    put('agents', h('p', { class: 'muted' }, 'no agents have registered'));
    return;
  }
  put(
    'agents',
    table(
      ['agent', 'host', 'status', 'mode', 'used', 'total', 'cpu', 'tasks', 'attributes', 'seen'],
      s.agents.map((a) => [
        a.agentId,
        a.hostname,
        a.status,
        a.mode,
        res(a.used),
        res(a.total),
        bar(frac(a.used.cpus, a.total.cpus)),
        a.tasks,
        Object.entries(a.attributes)
          .map(([k, v]) => `${k}:${v}`)
          .join(' '),
        `${age(s.at - a.lastSeenAt)} ago`,
      ]),
      (i) => ({ 'data-agent-id': s.agents[i]!.agentId }),
    ),
  );
}

function renderRoles(s: ClusterState): void {
  if (s.roles.length === 0) {
    put('roles', h('p', { class: 'muted' }, 'no roles yet'));
    return;
  }
  put(
    'roles',
    table(
      [
        'role',
        'weight',
        'guarantee',
        'limit',
        'allocated',
        'offered',
        'reserved',
        'dominant share',
        'frameworks',
      ],
      s.roles.map((r) => [
        r.role,
        r.weight,
        r.guarantee ?? '-',
        r.limit ?? '-',
        res(r.allocated),
        res(r.offered),
        res(r.reserved),
        bar(r.share),
        r.frameworks,
      ]),
    ),
  );
}

function renderFrameworks(s: ClusterState): void {
  if (s.frameworks.length === 0) {
    put('frameworks', h('p', { class: 'muted' }, 'no frameworks'));
    return;
  }
  put(
    'frameworks',
    table(
      [
        'framework',
        'name',
        'status',
        'roles',
        'suppressed',
        'share',
        'used',
        'offered',
        'tasks',
        'failover',
        '',
      ],
      s.frameworks.map((f) => {
        const btn =
          f.status === 'TORN_DOWN' ? null : h('button', { 'data-teardown': f.frameworkId }, 'teardown');
        btn?.addEventListener('click', async () => {
          if (!confirm(`Tear down framework ${f.frameworkId} (${f.name}) and kill its tasks?`)) return;
          btn.textContent = await post(`api/frameworks/${encodeURIComponent(f.frameworkId)}/teardown`);
        });
        return [
          f.frameworkId,
          f.name,
          f.status,
          f.roles.join(',') || '*',
          f.suppressedRoles.join(',') || '-',
          bar(f.share),
          res(f.used),
          res(f.offered),
          f.activeTasks,
          `${f.failoverTimeoutSeconds}s`,
          btn,
        ];
      }),
      (i) => ({ 'data-framework-id': s.frameworks[i]!.frameworkId }),
    ),
  );
}

function taskDetail(t: TaskView): Child {
  if (!t.message && !t.stdoutTail && !t.stderrTail) return null;
  return h(
    'details',
    {},
    h('summary', {}, t.reason ?? 'output'),
    t.message ? h('pre', {}, t.message) : null,
    t.stdoutTail ? h('pre', { class: 'stdout' }, t.stdoutTail) : null,
    t.stderrTail ? h('pre', { class: 'stderr' }, t.stderrTail) : null,
  );
}

function renderTasks(s: ClusterState): void {
  const tasks = s.tasks.slice(0, 200);
  if (tasks.length === 0) {
    put('tasks', h('p', { class: 'muted' }, 'no tasks'));
    return;
  }
  put(
    'tasks',
    table(
      ['task', 'framework', 'agent', 'state', 'exit', 'resources', 'age', 'detail', ''],
      tasks.map((t) => {
        const btn =
          t.state === 'TASK_RUNNING' || t.state === 'TASK_STAGING' || t.state === 'TASK_STARTING'
            ? h('button', { 'data-kill': t.taskId }, 'kill')
            : null;
        btn?.addEventListener('click', async () => {
          if (!confirm(`Kill task ${t.taskId}?`)) return;
          btn.textContent = await post(
            `api/tasks/${encodeURIComponent(t.taskId)}/kill?framework=${encodeURIComponent(t.frameworkId)}`,
          );
        });
        return [
          t.name ? `${t.taskId} (${t.name})` : t.taskId,
          t.frameworkId,
          t.agentId,
          t.state.replace(/^TASK_/, ''),
          t.exitCode ?? '',
          res(t.resources),
          age(s.at - t.createdAt),
          taskDetail(t),
          btn,
        ];
      }),
      (i) => ({ 'data-task-id': tasks[i]!.taskId, 'data-state': tasks[i]!.state }),
    ),
  );
}

function renderCycles(cycles: readonly CycleEntry[], m: OperatorMetrics): void {
  const recent = [...cycles].reverse().slice(0, 15);
  if (recent.length === 0) {
    put('cycles', h('p', { class: 'muted' }, 'no cycles recorded yet'));
    return;
  }
  put(
    'cycles',
    h(
      'div',
      {},
      h(
        'p',
        { class: 'muted' },
        `last hour: ${m.cycles.count} cycles, p50 ${Math.round(m.cycles.p50Ms ?? 0)} ms, max ${Math.round(m.cycles.maxMs ?? 0)} ms`,
      ),
      table(
        ['when', 'shard', 'duration', 'decide', 'offers', 'conflicts', 'expired', 'agents', 'frameworks'],
        recent.map((c) => [
          new Date(c.at).toLocaleTimeString(),
          c.shard,
          `${Math.round(c.durationMs)} ms`,
          `${c.decideMs.toFixed(1)} ms`,
          c.offers,
          c.conflicts,
          c.expired,
          c.agents,
          c.frameworks,
        ]),
      ),
    ),
  );
}

function renderDlq(depths: Record<string, number>, m: OperatorMetrics): void {
  const rejected = Object.entries(m.rejectedCalls ?? {});
  put(
    'dlq',
    h(
      'div',
      {},
      table(
        ['queue', 'messages'],
        Object.entries(depths).map(([q, n]) => [q, n]),
        (i) => ({ 'data-dlq': Object.keys(depths)[i]! }),
      ),
      rejected.length ? h('h3', {}, 'rejected calls') : null,
      rejected.length
        ? table(
            ['counter', 'count'],
            rejected.map(([k, v]) => [k, v]),
          )
        : null,
    ),
  );
}

let plot: uPlot | undefined;
function renderPlot(samples: readonly UtilisationSample[], s: ClusterState): void {
  const points = [...samples];
  // The current figures end the line, so the plot is never a minute behind.
  points.push({
    at: s.at,
    total: { cpus: s.totals.total.cpus ?? 0, mem: s.totals.total.mem ?? 0 },
    used: { cpus: s.totals.used.cpus ?? 0, mem: s.totals.used.mem ?? 0 },
    offered: { cpus: s.totals.offered.cpus ?? 0, mem: s.totals.offered.mem ?? 0 },
  });
  const data: uPlot.AlignedData = [
    points.map((p) => p.at / 1000),
    points.map((p) => 100 * frac(p.used.cpus, p.total.cpus)),
    points.map((p) => 100 * frac(p.used.mem, p.total.mem)),
    points.map((p) => 100 * frac(p.offered.cpus, p.total.cpus)),
  ];
  if (plot) {
    plot.setData(data);
    return;
  }
  const el = $('#plot');
  plot = new uPlot(
    {
      width: Math.max(400, el.clientWidth || 520),
      height: 220,
      scales: { y: { range: [0, 100] } },
      axes: [{}, { label: '% of cluster' }],
      series: [
        {},
        { label: 'cpus used', stroke: '#3d7be0', width: 2 },
        { label: 'mem used', stroke: '#1a7f37', width: 2 },
        { label: 'cpus offered', stroke: '#c9891a', width: 1, dash: [4, 4] },
      ],
    },
    data,
    el,
  );
}

async function refresh(): Promise<void> {
  try {
    const {
      state: s,
      metrics: m,
      cycles,
      utilisation,
      dlq,
    } = await get<{
      state: ClusterState;
      metrics: OperatorMetrics;
      cycles: CycleEntry[];
      utilisation: UtilisationSample[];
      dlq: Record<string, number>;
    }>('api/dashboard');
    renderTotals(s, m);
    renderAgents(s);
    renderRoles(s);
    renderFrameworks(s);
    renderTasks(s);
    renderCycles(cycles, m);
    renderDlq(dlq, m);
    renderPlot(utilisation, s);
    $('#status').textContent = `updated ${new Date(s.at).toLocaleTimeString()}`;
  } catch (e) {
    $('#status').textContent = `cannot reach the API: ${(e as Error).message}`;
  }
}

function start(): void {
  $('#explain-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = ($('#explain-name') as HTMLInputElement).value.trim();
    const asRole = ($('#explain-role') as HTMLInputElement).checked;
    const r = await fetch(`api/explain?${asRole ? 'role' : 'framework'}=${encodeURIComponent(name)}`);
    const body = (await r.json()) as { text?: string[]; error?: string };
    $('#explain-out').textContent = r.ok ? (body.text ?? []).join('\n') : (body.error ?? String(r.status));
  });
  void refresh();
  const every = Number(new URLSearchParams(location.search).get('refresh') ?? '2000');
  setInterval(() => void refresh(), Number.isFinite(every) && every >= 250 ? every : 2000);
}

start();
