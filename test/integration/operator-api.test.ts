/**
 * The operator HTTP API as the local stack serves it (127.0.0.1, lib/local/operator-api.ts), over
 * real HTTP against the emulators with a real agent: state and filtered tasks in operator units,
 * explain, metrics and the allocator's recorded cycles, dead-letter depths, kill and teardown
 * under the ACLs, and requests it must refuse (bad ids, unknown paths, a foreign Host, a
 * cross-site POST).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveAcls } from '../../lib/control/acl-store.ts';
import type { OperatorMetrics } from '../../lib/control/operator-api.ts';
import type { ClusterState, TaskView } from '../../lib/control/operator-state.ts';
import type { CycleEntry } from '../../lib/control/operator-stats.ts';
import { OPEN_ACLS, withRule } from '../../lib/core/acl.ts';
import type { FrameworkRecord } from '../../lib/core/model.ts';
import { startLocalOperatorApi } from '../../lib/local/operator-api.ts';
import type { LocalHttpServer } from '../../lib/local/operator-server.ts';
import type { Item } from '../../lib/ports/store.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe('operator HTTP API (local)', () => {
  let h: Harness;
  let api: LocalHttpServer;
  beforeAll(async () => {
    h = await startHarness({ agents: 1, agentResources: 'cpus:2;mem:1024;disk:1024;ports:[31000-31100]' });
    api = await startLocalOperatorApi({
      cluster: h.cluster,
      controlPlane: h.controlPlane,
      assets: { '/': { contentType: 'text/html', body: '<!doctype html><title>Meso</title>' } },
    });
  });
  afterAll(async () => {
    await api?.close();
    await h?.stop();
  });

  const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${api.url}${path}`);
    return { status: r.status, body: (await r.json()) as T };
  };
  const post = async (path: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${api.url}${path}`, { method: 'POST', headers });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it('serves state, tasks, explain, metrics and cycles; kills and tears down under the ACLs', async () => {
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { s, r } = await h.framework({ name: 'api-fw', roles: ['analytics'] });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'server',
          agentId: offer.agentId,
          resources: { cpus: 1, mem: 256 },
          command: { value: 'sleep 300' },
        },
      ],
      { refuseSeconds: 0 },
    );
    await r.update('server', 'TASK_RUNNING');

    const state = await get<ClusterState>('/api/state');
    expect(state.status).toBe(200);
    expect(state.body.totals.total).toMatchObject({ cpus: 2, mem: 1024 });
    expect(state.body.totals.used).toMatchObject({ cpus: 1, mem: 256 });
    expect(state.body.agents[0]).toMatchObject({ used: { cpus: 1, mem: 256 }, tasks: 1 });
    expect(state.body.frameworks.find((f) => f.frameworkId === s.frameworkId)).toMatchObject({
      name: 'api-fw',
      roles: ['analytics'],
    });

    const running = await get<TaskView[]>('/api/tasks?state=RUNNING&role=analytics');
    expect(running.body.map((t) => t.taskId)).toEqual(['server']);
    expect((await get<TaskView[]>('/api/tasks?state=FINISHED')).body).toEqual([]);
    expect((await get<TaskView[]>('/api/tasks/server')).body[0]).toMatchObject({ state: 'TASK_RUNNING' });
    expect((await get('/api/tasks?since=soon')).status).toBe(400);
    expect((await get('/api/tasks/nothing-here')).status).toBe(404);

    const explained = await get<{ text: string[] }>(`/api/explain?framework=${s.frameworkId}`);
    expect(explained.status).toBe(200);
    expect(explained.body.text.join('\n')).toContain(s.frameworkId);
    expect((await get('/api/explain?role=analytics')).status).toBe(200);
    expect((await get('/api/explain')).status).toBe(400);
    expect((await get('/api/explain?framework=nope')).status).toBe(404);

    // The allocator's cycles are recorded where the API reads them.
    const cycles = await eventually(async () => {
      const c = await get<CycleEntry[]>('/api/cycles');
      return c.body.some((x) => x.offers > 0) ? c.body : undefined;
    }, 'a recorded cycle that made offers');
    expect(cycles.at(-1)!.durationMs).toBeGreaterThanOrEqual(0);

    const metrics = await get<OperatorMetrics>('/api/metrics');
    expect(metrics.body.cluster.used.cpus).toBeCloseTo(0.5);
    expect(metrics.body.agents[offer.agentId]).toBeCloseTo(0.5);
    expect(metrics.body.roles.analytics).toBeGreaterThanOrEqual(0.5);
    expect(metrics.body.cycles.count).toBeGreaterThan(0);
    expect(metrics.body.launchLatency.count).toBe(1);
    expect(metrics.body.deadLetters).toMatchObject({ schedulerCalls: 0, agentCalls: 0 });
    expect((await get<Record<string, number>>('/api/dlq')).body).toMatchObject({ allocator: 0 });
    expect((await get<unknown[]>('/api/utilisation')).status).toBe(200);
    // The dashboard's one call: the same snapshot and figures together.
    const board = await get<{ state: ClusterState; metrics: OperatorMetrics; cycles: CycleEntry[] }>(
      '/api/dashboard',
    );
    expect(board.body.state.totals.used).toMatchObject({ cpus: 1, mem: 256 });
    expect(board.body.metrics.offersOutstanding).toBe(board.body.state.offers.length);
    expect(board.body.cycles.length).toBeGreaterThan(0);

    // Refusals: bad ids, unknown paths and methods, a foreign Host, a cross-site POST.
    expect((await post('/api/tasks/a%2Fb/kill')).status).toBe(400);
    expect((await get('/api/nothing')).status).toBe(404);
    expect((await get(`/api/tasks?framework=${'x'.repeat(5000)}`)).status).toBe(400);
    expect((await get('/api/explain?framework=a%00b')).status).toBe(400);
    expect((await fetch(`${api.url}/api/state`, { method: 'DELETE' })).status).toBe(405);
    expect((await post('/api/tasks/server/kill', { origin: 'http://evil.example' })).status).toBe(403);
    const foreignHost = await new Promise<number>((done, fail) => {
      const u = new URL(api.url);
      const req = request(
        { host: u.hostname, port: u.port, path: '/api/state', headers: { host: 'evil.example' } },
        (res) => {
          res.resume();
          done(res.statusCode ?? 0);
        },
      );
      req.on('error', fail);
      req.end();
    });
    expect(foreignHost).toBe(421);
    expect((await fetch(`${api.url}/`)).headers.get('content-security-policy')).toContain(
      "default-src 'self'",
    );

    // The stored ACLs refuse the local principal: 403 and nothing changes.
    await saveAcls(
      h.controlPlane.deps.store,
      withRule(OPEN_ACLS, 'teardown_frameworks', {
        principals: { values: ['operator'] },
        object: { type: 'ANY' },
        deny: true,
      }),
      undefined,
      Date.now(),
    );
    const refused = await post('/api/tasks/server/kill');
    expect(refused.status).toBe(403);
    expect(String(refused.body.error)).toMatch(/teardown_frameworks\[0\]/);
    expect((await post(`/api/frameworks/${s.frameworkId}/teardown`)).status).toBe(403);
    expect((await get<TaskView[]>('/api/tasks?state=RUNNING')).body).toHaveLength(1);
    await saveAcls(h.controlPlane.deps.store, OPEN_ACLS, 1, Date.now());

    const killed = await post(`/api/tasks/server/kill?framework=${s.frameworkId}`);
    expect(killed).toMatchObject({ status: 200, body: { outcome: 'kill-sent' } });
    expect((await r.terminal('server')).state).toBe('TASK_KILLED');
    const down = await post(`/api/frameworks/${s.frameworkId}/teardown`);
    expect(down).toMatchObject({ status: 200, body: { outcome: 'removed' } });
    const fw = await h.controlPlane.deps.store.get<FrameworkRecord & Item>('frameworks', {
      frameworkId: s.frameworkId,
    });
    expect(fw?.status).toBe('TORN_DOWN');
    expect((await post('/api/frameworks/unknown/teardown')).status).toBe(404);
    // Rejected operator calls are counted and shown.
    const after = await get<OperatorMetrics>('/api/metrics');
    expect(after.body.rejectedCalls?.OperatorCallsRejected).toBe(2);
  });
});
