/**
 * The allocator reads the frameworks and the role settings only when their change markers moved
 * (lib/control/settings-view.ts): the writes the control plane makes of them (through
 * `updateFramework`, `setFilters`, `setRole`) mark them, and the next cycle sees each change —
 * a new framework gets offers, a declining one's filter holds, a role's weight counts.
 */
import { describe, expect, it } from 'vitest';
import { AgentView } from '../../../lib/control/agent-view.ts';
import { readCycleRecords, runAllocationCycle } from '../../../lib/control/allocation.ts';
import { takeAgentOffers } from '../../../lib/control/records/agents.ts';
import { updateFramework } from '../../../lib/control/records/frameworks.ts';
import { setRole } from '../../../lib/control/roles.ts';
import { setFilters } from '../../../lib/control/scheduler/filters.ts';
import { SettingsView } from '../../../lib/control/settings-view.ts';
import type { AgentRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import type { Item } from '../../../lib/ports/store.ts';
import { frameworkRecord, putAgent, testControl } from './helpers.ts';

/** Counts the store's scans by table. */
function countScans(t: ReturnType<typeof testControl>): Map<string, number> {
  const scans = new Map<string, number>();
  const scan = t.store.scan.bind(t.store);
  t.store.scan = (<T extends Item>(table: Parameters<typeof scan>[0]) => {
    scans.set(table, (scans.get(table) ?? 0) + 1);
    return scan<T>(table);
  }) as typeof t.store.scan;
  return scans;
}

const subscribe = (t: ReturnType<typeof testControl>, frameworkId: string) =>
  updateFramework(t.store, frameworkId, () => ({
    put: frameworkRecord(t, frameworkId) as unknown as Item,
    result: undefined,
  }));

async function offersOf(t: ReturnType<typeof testControl>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const a of await t.store.scan<AgentRecord & Item>('agents'))
    for (const o of Object.values(a.offers)) out.set(o.frameworkId, (out.get(o.frameworkId) ?? 0) + 1);
  return out;
}

describe('the allocator’s view of frameworks and roles', () => {
  it('scans them only after a write marked them, and each change counts at the next cycle', async () => {
    const t = testControl();
    t.store.now = () => t.now;
    await putAgent(t, 'sa1', { total: parse('cpus:4;mem:4096') });
    await subscribe(t, 'sf1');
    const scans = countScans(t);
    const view = new AgentView();
    const settings = new SettingsView();
    const cycle = () => runAllocationCycle(t.deps, 0, { view, settings });

    expect(await cycle()).toMatchObject({ frameworks: 1, offers: 1 });
    expect([scans.get('frameworks'), scans.get('meta')]).toEqual([1, 1]);
    // Nothing changed: neither is scanned again.
    t.now += 1000;
    await cycle();
    t.now += 1000;
    await cycle();
    expect([scans.get('frameworks'), scans.get('meta')]).toEqual([1, 1]);

    // The offer is declined with a filter: the frameworks are read again, and the filter holds.
    const [fw] = (await readCycleRecords(t.deps)).frameworks;
    await takeAgentOffers(t.store, 'sa1', () => true);
    await setFilters(t.deps, fw!, [{ agentId: 'sa1', resources: parse('cpus:4;mem:4096') }], 60);
    scans.clear();
    t.now += 1000;
    expect(await cycle()).toMatchObject({ offers: 0 });
    expect([scans.get('frameworks'), scans.get('meta')]).toEqual([1, undefined]);
    expect(await offersOf(t)).toEqual(new Map());

    // A new framework subscribes: the next cycle sees it and offers it the agent.
    await subscribe(t, 'sf2');
    scans.clear();
    t.now += 1000;
    expect(await cycle()).toMatchObject({ frameworks: 2, offers: 1 });
    expect(await offersOf(t)).toEqual(new Map([['sf2', 1]]));
    expect([scans.get('frameworks'), scans.get('meta')]).toEqual([1, undefined]);

    // A role's settings change: only the roles are read again.
    await setRole(t.store, 'eng', { weight: 3 }, t.now);
    scans.clear();
    t.now += 1000;
    await cycle();
    expect([scans.get('frameworks'), scans.get('meta')]).toEqual([undefined, 1]);
  });

  it('reads both in full at its first read, after fullReadMs, when asked, and when the clock went back', async () => {
    const t = testControl();
    const scans = countScans(t);
    const settings = new SettingsView({ fullReadMs: 10_000 });
    const read = async (full = false) => (await settings.read(t.store, t.now, full)).scanned;
    expect(await read()).toEqual({ frameworks: true, roles: true });
    t.now += 5_000;
    expect(await read()).toEqual({ frameworks: false, roles: false });
    expect(await read(true)).toEqual({ frameworks: true, roles: true });
    t.now += 10_000;
    expect(await read()).toEqual({ frameworks: true, roles: true });
    t.now -= 1;
    expect(await read()).toEqual({ frameworks: true, roles: true });
    expect(scans.get('frameworks')).toBe(4);
  });

  it('a change made while a read scans is read again at the next one', async () => {
    const t = testControl();
    const settings = new SettingsView();
    await settings.read(t.store, t.now);
    await subscribe(t, 'late1');
    // The write lands after the markers were read but before the scan saw it.
    const scan = t.store.scan.bind(t.store);
    let first = true;
    t.store.scan = (async <T extends Item>(table: Parameters<typeof scan>[0]) => {
      const out = await scan<T>(table);
      if (table === 'frameworks' && first) {
        first = false;
        await subscribe(t, 'late2');
        return out;
      }
      return out;
    }) as typeof t.store.scan;
    const once = await settings.read(t.store, t.now + 1);
    expect(once.frameworks.map((f) => f.frameworkId)).toEqual(['late1']);
    const again = await settings.read(t.store, t.now + 2);
    expect(again.scanned.frameworks).toBe(true);
    expect(again.frameworks.map((f) => f.frameworkId).sort()).toEqual(['late1', 'late2']);
  });
});
