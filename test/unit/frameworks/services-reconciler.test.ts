import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AppRecord, parseAppDefinition } from '../../../lib/frameworks/services/app.ts';
import { backoffDelayMs } from '../../../lib/frameworks/services/backoff.ts';
import { satisfies } from '../../../lib/frameworks/services/constraints.ts';
import { type Instance, isReady } from '../../../lib/frameworks/services/instance.ts';
import { portEnv, takePorts } from '../../../lib/frameworks/services/ports.ts';
import {
  applyStatus,
  appStatus,
  launchBudget,
  minimumHealthy,
  planKills,
  planOffers,
} from '../../../lib/frameworks/services/reconciler.ts';
import type { Offer } from '../../../lib/protocol/scheduler.ts';

const NOW = 1_000_000;

function app(over: Record<string, unknown> = {}, record: Partial<AppRecord> = {}): AppRecord {
  const parsed = parseAppDefinition({ id: 'web', cmd: 'sleep 1000', instances: 3, ...over });
  if (!parsed.ok) throw new Error(parsed.error);
  return {
    def: parsed.def,
    version: 'v2',
    suspended: false,
    backoff: { failures: 0, delayUntil: 0 },
    deployedAt: 0,
    ...record,
  };
}

let seq = 0;
function inst(over: Partial<Instance> = {}): Instance {
  seq += 1;
  return {
    taskId: `web.${seq}`,
    appId: 'web',
    version: 'v2',
    agentId: `a${seq}`,
    hostname: `h${seq}`,
    attributes: {},
    ports: [],
    offerId: `o-old-${seq}`,
    phase: 'running',
    launchedAt: seq,
    ...over,
  };
}

/** A status update from the agent about instance `i`. */
const statusOf = (i: Instance, state: string, extra = {}) =>
  ({
    taskId: i.taskId,
    frameworkId: 'f',
    agentId: i.agentId,
    state,
    source: 'SOURCE_AGENT',
    timestamp: NOW,
    ...extra,
  }) as never;

function offer(i: number, over: Partial<Offer> = {}): Offer {
  return {
    offerId: `o${i}`,
    frameworkId: 'f',
    agentId: `a${i}`,
    hostname: `h${i}`,
    resources: { cpus: 2, mem: 1024, ports: [[31000, 31010]] },
    attributes: {},
    expiresAt: NOW + 60_000,
    ...over,
  };
}

let ids = 0;
const newId = (appId: string) => `${appId}.t${++ids}`;

describe('definitions', () => {
  it('fills in Marathon defaults and rejects what cannot work, with the field named', () => {
    const a = app();
    expect(a.def.upgradeStrategy).toEqual({ minimumHealthCapacity: 1, maximumOverCapacity: 1 });
    expect(a.def.backoffFactor).toBe(1.15);
    const bad = [
      { id: 'Web', cmd: 'x' },
      { id: 'web', cmd: 'x', constraints: [['hostname', 'MAX_PER']] },
      { id: 'web', cmd: 'x', constraints: [['rack', 'LIKE', '(']] },
      { id: 'web', cmd: 'x', upgradeStrategy: { minimumHealthCapacity: 1.5 } },
      { id: 'web', cmd: 'x', healthCheck: { protocol: 'HTTP' } },
      { id: 'web', cmd: 'x', extra: 1 },
    ];
    for (const b of bad) expect(parseAppDefinition(b).ok, JSON.stringify(b)).toBe(false);
    const r = parseAppDefinition({ id: 'web', cmd: 'x', instances: -1 });
    expect(r.ok === false && r.error).toMatch(/instances/);
  });
});

describe('backoff', () => {
  it('is 1 s, then ×1.15 each failure, capped at an hour', () => {
    const p = app().def;
    expect(backoffDelayMs(p, 0)).toBe(0);
    expect(backoffDelayMs(p, 1)).toBe(1000);
    expect(backoffDelayMs(p, 2)).toBe(1150);
    expect(backoffDelayMs(p, 1000)).toBe(3_600_000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (n) => {
        const d = backoffDelayMs(p, n);
        expect(d).toBeLessThanOrEqual(3_600_000);
        expect(backoffDelayMs(p, n + 1)).toBeGreaterThanOrEqual(d);
      }),
    );
  });
});

describe('ports', () => {
  it('takes distinct ports from the ranges and hands them out as PORT0..n and PORT', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 60000 }), fc.integer({ min: 0, max: 20 })), {
          maxLength: 5,
        }),
        fc.integer({ min: 0, max: 16 }),
        (raw, count) => {
          // Disjoint ranges, as an offer holds them.
          const ranges: [number, number][] = [];
          let next = 1;
          for (const [gap, len] of raw) {
            const b = next + (gap % 100);
            ranges.push([b, b + len]);
            next = b + len + 2;
          }
          const total = ranges.reduce((n, [b, e]) => n + e - b + 1, 0);
          const r = takePorts(ranges, count);
          if (count > total) {
            expect(r).toBeUndefined();
            return;
          }
          expect(r!.ports).toHaveLength(count);
          expect(new Set(r!.ports).size).toBe(count);
          for (const p of r!.ports) expect(ranges.some(([b, e]) => p >= b && p <= e)).toBe(true);
          for (const p of r!.ports) expect(r!.rest.some(([b, e]) => p >= b && p <= e)).toBe(false);
        },
      ),
    );
    expect(portEnv([31000, 31005])).toEqual({
      PORT0: '31000',
      PORT1: '31005',
      PORT: '31000',
      PORTS: '31000,31005',
    });
  });
});

describe('constraints', () => {
  const p = (hostname: string, attributes: Record<string, string> = {}) => ({ hostname, attributes });
  it('UNIQUE, CLUSTER, LIKE, UNLIKE, MAX_PER and GROUP_BY as Marathon reads them', () => {
    expect(satisfies(['hostname', 'UNIQUE'], p('a'), [p('b')])).toBe(true);
    expect(satisfies(['hostname', 'UNIQUE'], p('a'), [p('a')])).toBe(false);
    expect(satisfies(['rack', 'CLUSTER', 'r1'], p('a', { rack: 'r1' }), [])).toBe(true);
    expect(satisfies(['rack', 'CLUSTER', 'r1'], p('a', { rack: 'r2' }), [])).toBe(false);
    expect(satisfies(['rack', 'CLUSTER'], p('a', { rack: 'r2' }), [p('b', { rack: 'r1' })])).toBe(false);
    expect(satisfies(['hostname', 'LIKE', 'web-[0-9]+'], p('web-12'), [])).toBe(true);
    expect(satisfies(['hostname', 'LIKE', 'web-[0-9]+'], p('xweb-12'), [])).toBe(false);
    expect(satisfies(['rack', 'UNLIKE', 'r1'], p('a'), [])).toBe(true);
    expect(satisfies(['rack', 'UNLIKE', 'r1'], p('a', { rack: 'r1' }), [])).toBe(false);
    expect(satisfies(['rack', 'MAX_PER', '2'], p('a', { rack: 'r1' }), [p('b', { rack: 'r1' })])).toBe(true);
    expect(
      satisfies(['rack', 'MAX_PER', '2'], p('a', { rack: 'r1' }), [
        p('b', { rack: 'r1' }),
        p('c', { rack: 'r1' }),
      ]),
    ).toBe(false);
    expect(satisfies(['rack', 'GROUP_BY', '2'], p('a', { rack: 'r1' }), [p('b', { rack: 'r1' })])).toBe(
      false,
    );
    expect(
      satisfies(['rack', 'GROUP_BY'], p('a', { rack: 'r1' }), [
        p('b', { rack: 'r1' }),
        p('c', { rack: 'r2' }),
        p('d', { rack: 'r2' }),
        p('e', { rack: 'r1' }),
        p('f', { rack: 'r3' }),
      ]),
    ).toBe(false);
    expect(satisfies(['rack', 'GROUP_BY'], p('a', { rack: 'r2' }), [p('b', { rack: 'r1' })])).toBe(true);
  });

  it('placement through offers never breaks UNIQUE or MAX_PER, however offers arrive', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 2 })), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.integer({ min: 1, max: 12 }),
        (offerSpecs, n) => {
          const a = app({
            instances: n,
            cpus: 0.1,
            constraints: [
              ['hostname', 'UNIQUE'],
              ['rack', 'MAX_PER', '2'],
            ],
          });
          let instances: Instance[] = [];
          offerSpecs.forEach(([host, rack], k) => {
            const o = offer(k, {
              hostname: `h${host}`,
              agentId: `a${host}`,
              attributes: { rack: `r${rack}` },
            });
            const plan = planOffers([a], instances, [o], NOW, newId);
            instances = [...instances, ...plan.launches.flatMap((l) => l.instances)];
          });
          const hosts = instances.map((i) => i.hostname);
          expect(new Set(hosts).size).toBe(hosts.length);
          const perRack = new Map<string, number>();
          for (const i of instances)
            perRack.set(i.attributes.rack!, (perRack.get(i.attributes.rack!) ?? 0) + 1);
          for (const c of perRack.values()) expect(c).toBeLessThanOrEqual(2);
          expect(instances.length).toBeLessThanOrEqual(n);
        },
      ),
    );
  });
});

describe('offers', () => {
  it('launches what is missing, as many as fit, with ports in resources and environment', () => {
    const a = app({ instances: 3, cpus: 0.5, mem: 64, ports: 2 });
    const plan = planOffers(
      [a],
      [],
      [offer(1, { resources: { cpus: 1, mem: 1024, ports: [[31000, 31010]] } })],
      NOW,
      newId,
    );
    expect(plan.launches).toHaveLength(1);
    const [l] = plan.launches;
    expect(l!.tasks).toHaveLength(2); // cpus allow two
    expect(l!.tasks[0]!.resources.ports).toEqual([
      [31000, 31000],
      [31001, 31001],
    ]);
    expect(l!.tasks[1]!.command.environment.PORT0).toBe('31002');
    expect(l!.tasks[0]!.command.environment.PORT).toBe('31000');
    expect(plan.declines).toEqual([]);
  });

  it('declines an offer seen before, offers of another role, and everything during backoff', () => {
    const a = app({ instances: 3 });
    const i = inst({ offerId: 'o1' });
    expect(planOffers([a], [i], [offer(1)], NOW, newId)).toEqual({ launches: [], declines: ['o1'] });
    expect(planOffers([a], [], [offer(2, { role: 'eng' })], NOW, newId).declines).toEqual(['o2']);
    const backedOff = app({}, { backoff: { failures: 2, delayUntil: NOW + 1 } });
    expect(planOffers([backedOff], [], [offer(3)], NOW, newId).declines).toEqual(['o3']);
  });

  it('a redelivered event launches nothing, even on its offers the first delivery declined', () => {
    // First delivery: o1 used, o2 declined (budget spent). Then a restart makes a new version
    // that wants an instance: o2 is gone at Meso, so the second delivery must not launch on it.
    const a = app({ instances: 3 }, { version: 'v2' });
    const old = [1, 2, 3].map((k) => inst({ taskId: `web.old${k}`, version: 'v1', offerId: 'o1' }));
    const plan = planOffers([a], old, [offer(1), offer(2)], NOW, newId);
    expect(plan).toEqual({ launches: [], declines: ['o1', 'o2'] });
    // The same offers in a fresh event are used.
    expect(planOffers([a], old, [offer(2)], NOW, newId).launches).toHaveLength(1);
  });

  it('never has more than instances × (1 + maximumOverCapacity) live, nor more than instances of the new version', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.constantFrom(0, 0.25, 0.5, 1),
        fc.integer({ min: 1, max: 6 }),
        (n, oldCount, over, offers) => {
          const a = app({
            instances: n,
            cpus: 0.1,
            upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: over },
          });
          const old = Array.from({ length: oldCount }, () => inst({ version: 'v1' }));
          const plan = planOffers(
            [a],
            old,
            Array.from({ length: offers }, (_, k) => offer(100 + k)),
            NOW,
            newId,
          );
          const launched = plan.launches.flatMap((l) => l.instances).length;
          expect(launched).toBeLessThanOrEqual(n);
          // Over-capacity, or one above the minimum when that leaves no room (else no upgrade could start).
          const cap = Math.max(n + Math.floor(n * over + 1e-9), oldCount > 0 ? minimumHealthy(a) + 1 : 0);
          expect(launched + oldCount).toBeLessThanOrEqual(Math.max(oldCount, cap));
        },
      ),
    );
  });
});

describe('rolling upgrade', () => {
  it('kills never take the ready count below minimumHealthCapacity × instances, and finish the upgrade', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom(0, 0.25, 0.5, 0.75, 1),
        fc.constantFrom(0.25, 0.5, 1),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (n, minHealth, over, coin) => {
          const a = app({
            instances: n,
            cpus: 0.1,
            upgradeStrategy: { minimumHealthCapacity: minHealth, maximumOverCapacity: over },
          });
          let instances: Instance[] = Array.from({ length: n }, () => inst({ version: 'v1' }));
          const ready = () => instances.filter((i) => i.phase !== 'killing' && isReady(i, false)).length;
          let k = 0;
          // Steps: offers launch, launched instances come up (in any order), kills happen.
          for (let step = 0; step < 60; step++) {
            const before = ready();
            const kills = planKills([a], instances);
            const killed = new Set(kills.map((x) => x.taskId));
            instances = instances.filter((i) => !killed.has(i.taskId));
            expect(ready()).toBeGreaterThanOrEqual(Math.min(before, minimumHealthy(a)));
            const plan = planOffers([a], instances, [offer(1000 + step)], NOW, newId);
            instances = [...instances, ...plan.launches.flatMap((l) => l.instances)];
            instances = instances.map((i) =>
              i.phase === 'staging' && (coin[k++ % Math.max(1, coin.length)] ?? true)
                ? { ...i, phase: 'running' }
                : i,
            );
            if (coin.length === 0) instances = instances.map((i) => ({ ...i, phase: 'running' }));
          }
          instances = instances.map((i) => ({ ...i, phase: 'running' }));
          instances = instances.filter((i) => !planKills([a], instances).some((x) => x.taskId === i.taskId));
          if (coin.includes(true) || coin.length === 0) {
            expect(instances.filter((i) => i.version === 'v2')).toHaveLength(n);
            expect(instances.filter((i) => i.version === 'v1')).toHaveLength(0);
          }
        },
      ),
    );
  });

  it('scales down by killing the not-ready and newest first, and kills everything of a suspended or deleted app', () => {
    const a = app({ instances: 1 });
    const oldest = inst({ launchedAt: 1 });
    const newer = inst({ launchedAt: 5 });
    const staging = inst({ launchedAt: 2, phase: 'staging' });
    const kills = planKills([a], [oldest, newer, staging]).map((k) => k.taskId);
    expect(kills.sort()).toEqual([newer.taskId, staging.taskId].sort());
    expect(planKills([{ ...a, suspended: true }], [oldest]).map((k) => k.taskId)).toEqual([oldest.taskId]);
    expect(planKills([], [oldest]).map((k) => k.why)).toEqual(['app deleted']);
    expect(launchBudget({ ...a, suspended: true }, [])).toBe(0);
  });
});

describe('status updates', () => {
  it('a crash grows the backoff, a kill or a lost agent does not, and a healthy instance resets it', () => {
    const a = app();
    const i = inst();
    const st = (state: string, extra = {}) => statusOf(i, state, extra);
    const crashed = applyStatus(a, i, st('TASK_FAILED'), NOW);
    expect(crashed.instance).toBeNull();
    expect(crashed.app?.backoff).toEqual({ failures: 1, delayUntil: NOW + 1000 });
    const again = applyStatus(crashed.app, i, st('TASK_FAILED'), NOW);
    expect(again.app?.backoff).toEqual({ failures: 2, delayUntil: NOW + 1150 });
    expect(applyStatus(a, { ...i, phase: 'killing' }, st('TASK_KILLED'), NOW).app).toBeUndefined();
    expect(
      applyStatus(a, i, st('TASK_LOST', { reason: 'REASON_AGENT_REMOVED_BY_OPERATOR' }), NOW).app,
    ).toBeUndefined();
    // Launched on an offer Meso no longer had: the app is not at fault.
    const dropped = applyStatus(a, i, st('TASK_DROPPED', { reason: 'REASON_INVALID_OFFERS' }), NOW);
    expect(dropped.instance).toBeNull();
    expect(dropped.app).toBeUndefined();
    const staged = { ...i, phase: 'staging' as const };
    const up = applyStatus(again.app, staged, st('TASK_RUNNING'), NOW);
    expect(up.instance?.phase).toBe('running');
    expect(up.app?.backoff).toEqual({ failures: 0, delayUntil: 0 });
    expect(applyStatus(a, undefined, st('TASK_RUNNING'), NOW).kill?.why).toBe('unknown task');
    expect(applyStatus(a, undefined, st('TASK_FINISHED'), NOW).kill).toBeUndefined();
  });

  it('reports healthy/wanted and the deployment state', () => {
    const a = app({ instances: 2 }, { deployedAt: NOW });
    expect(appStatus(a, [inst(), inst()], NOW)).toMatchObject({ wanted: 2, ready: 2, state: 'stable' });
    expect(appStatus(a, [inst(), inst({ version: 'v1' })], NOW).state).toBe('deploying');
    expect(appStatus(a, [inst()], NOW).state).toBe('scaling');
    expect(appStatus({ ...a, suspended: true }, [], NOW)).toMatchObject({ wanted: 0, state: 'suspended' });
  });
});

describe('a stuck deployment', () => {
  const S = 1000;
  const st = statusOf;

  it('is stuck after the progress deadline without a new instance ready, and names why', () => {
    // A new version whose instances never pass their health check, on a test clock.
    const a = app(
      {
        instances: 2,
        ports: 1,
        healthCheck: { protocol: 'TCP' },
        upgradeStrategy: { minimumHealthCapacity: 1, progressDeadlineSeconds: 120 },
      },
      { deployedAt: NOW },
    );
    const instances = [
      inst({ version: 'v1', healthy: true }),
      inst({ version: 'v1', healthy: true }),
      inst({ healthy: false }),
    ];
    expect(appStatus(a, instances, NOW + 120 * S)).toMatchObject({ state: 'deploying' });
    expect(appStatus(a, instances, NOW + 120 * S).reason).toBeUndefined();
    const stuck = appStatus(a, instances, NOW + 121 * S);
    expect(stuck.state).toBe('stuck');
    expect(stuck.reason).toContain('no progress for 121 s (deadline 120 s): 0/2 of version v2 ready');
    expect(stuck.reason).toContain('2 old instance(s) still running');
    expect(stuck.reason).toContain('failing health checks');
    expect(stuck.reason).toContain('meso app rollback web');
  });

  it('defaults to ten minutes, and counts a crash loop of the new version as no progress', () => {
    const a = app({ instances: 1 }, { deployedAt: NOW, backoff: { failures: 4, delayUntil: NOW + 900 * S } });
    expect(appStatus(a, [], NOW + 600 * S).state).toBe('backoff');
    const stuck = appStatus(a, [], NOW + 601 * S);
    expect(stuck.state).toBe('stuck');
    expect(stuck.reason).toContain('4 launch(es) failed in a row');
    // A crash of an instance that never became ready is no progress.
    const never = inst({ phase: 'staging' });
    expect(applyStatus(a, never, st(never, 'TASK_FAILED'), NOW).progress).toBeUndefined();
  });

  it('restarts its deadline at each instance that becomes ready, and when a ready one ends', () => {
    const a = app({ instances: 3, upgradeStrategy: { progressDeadlineSeconds: 60 } }, { deployedAt: NOW });
    const staging = inst({ phase: 'staging' });
    const up = applyStatus(a, staging, st(staging, 'TASK_RUNNING'), NOW + 50 * S);
    expect(up.progress).toBe(true);
    expect(applyStatus(a, up.instance!, st(staging, 'TASK_RUNNING'), NOW + 51 * S).progress).toBeUndefined();
    const progressed = { ...a, progressAt: NOW + 50 * S };
    const three = [up.instance!, inst({ phase: 'staging' }), inst({ phase: 'staging' })];
    expect(appStatus(a, three, NOW + 100 * S).state).toBe('stuck');
    expect(appStatus(progressed, three, NOW + 100 * S).state).toBe('scaling');
    expect(appStatus(progressed, three, NOW + 111 * S).reason).toContain('2 not started');
    // A ready instance that dies begins a new deployment (its replacement), with a new deadline.
    const died = applyStatus(a, up.instance!, st(staging, 'TASK_FAILED'), NOW + 500 * S);
    expect(died.progress).toBe(true);
    // An old version's instance, killed by the rollout, is not the new version's progress.
    const old = inst({ version: 'v1', phase: 'killing' });
    expect(applyStatus(a, old, st(old, 'TASK_KILLED'), NOW).progress).toBeUndefined();
  });

  it('is never stuck when stable or suspended, and a rollback (a new deploy) starts a new deadline', () => {
    const a = app({ instances: 1 }, { deployedAt: NOW });
    expect(appStatus(a, [inst()], NOW + 10_000 * S).state).toBe('stable');
    expect(appStatus({ ...a, suspended: true }, [inst()], NOW + 10_000 * S).state).toBe('suspended');
    const stuckOne = [inst({ phase: 'staging' })];
    expect(appStatus(a, stuckOne, NOW + 700 * S).state).toBe('stuck');
    const rolledBack = { ...a, version: 'v3', deployedAt: NOW + 700 * S };
    expect(
      appStatus(rolledBack, [...stuckOne, inst({ version: 'v3', phase: 'staging' })], NOW + 701 * S).state,
    ).toBe('deploying');
  });

  it('refuses a progress deadline that is not a whole number of seconds from 1 s to a week', () => {
    for (const bad of [0, -5, 1.5, 7 * 86400 + 1, '600'])
      expect(
        parseAppDefinition({ id: 'web', cmd: 'x', upgradeStrategy: { progressDeadlineSeconds: bad } }).ok,
      ).toBe(false);
    expect(
      parseAppDefinition({ id: 'web', cmd: 'x', upgradeStrategy: { progressDeadlineSeconds: 30 } }).ok,
    ).toBe(true);
  });
});
