/**
 * The dashboard's poll (GET /api/dashboard): one read of the records serves every poll within
 * DASHBOARD_FRESH_MS, from any number of pages and including polls that arrive while the read is
 * under way; an operator's action through the API makes the next poll read again.
 */
import { describe, expect, it } from 'vitest';
import { DASHBOARD_FRESH_MS, handleOperatorApi } from '../../../lib/control/operator-api.ts';
import type { TableName } from '../../../lib/definition/tables-queues.ts';
import { putAgent, putFramework, testControl } from './helpers.ts';

function countingScans(t: ReturnType<typeof testControl>): Map<TableName, number> {
  const scans = new Map<TableName, number>();
  const scan = t.store.scan.bind(t.store);
  t.store.scan = (async (table: TableName) => {
    scans.set(table, (scans.get(table) ?? 0) + 1);
    return scan(table);
  }) as typeof t.store.scan;
  return scans;
}

const poll = (deps: { control: ReturnType<typeof testControl>['deps'] }) =>
  handleOperatorApi({ method: 'GET', path: '/api/dashboard', query: {}, principal: 'op' }, deps);

describe('the dashboard poll', () => {
  it('reads the records once per freshness period, however many polls come', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    await putFramework(t, 'f1');
    const scans = countingScans(t);
    const deps = { control: t.deps };
    const [first, concurrent] = await Promise.all([poll(deps), poll(deps)]);
    expect(first.status).toBe(200);
    expect(concurrent.body).toBe(first.body);
    expect(scans.get('tasks')).toBe(1);
    expect(scans.get('agents')).toBe(1);

    t.now += DASHBOARD_FRESH_MS - 1;
    await putAgent(t, 'a2');
    const cached = await poll(deps);
    expect(cached.body).toBe(first.body);
    expect(scans.get('tasks')).toBe(1);

    t.now += 1;
    const fresh = await poll(deps);
    expect(scans.get('tasks')).toBe(2);
    expect((JSON.parse(fresh.body) as { state: { agents: unknown[] } }).state.agents).toHaveLength(2);
  });

  it('reads again after an operator action through the API', async () => {
    const t = testControl();
    await putAgent(t, 'a1');
    const scans = countingScans(t);
    const deps = { control: t.deps };
    await poll(deps);
    await handleOperatorApi(
      { method: 'POST', path: '/api/frameworks/f1/teardown', query: {}, principal: 'op' },
      deps,
    );
    await poll(deps);
    expect(scans.get('tasks')).toBe(2);
  });
});
