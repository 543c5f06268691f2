/** Bounded input: depth and size before parsing, limits on every list and map, exact scalars. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AgentCallSchema,
  boundedJsonProblem,
  LIMITS,
  parseMessage,
  SchedulerCallSchema,
} from '../../lib/protocol/index.ts';

const SCHED = [
  'SUBSCRIBE',
  'TEARDOWN',
  'ACCEPT',
  'DECLINE',
  'REVIVE',
  'SUPPRESS',
  'KILL',
  'ACKNOWLEDGE',
  'RECONCILE',
  'HEARTBEAT',
];
const AGENT = ['REGISTER', 'HEARTBEAT', 'STATUS_UPDATE'];
const sched = (m: unknown) => parseMessage(SchedulerCallSchema, JSON.stringify(m), SCHED);
const agent = (m: unknown) => parseMessage(AgentCallSchema, JSON.stringify(m), AGENT);

const task = (i: number, extra: Record<string, unknown> = {}) => ({
  taskId: `t${i}`,
  agentId: 'a1',
  resources: { cpus: 0.1, mem: 32 },
  command: { value: 'true' },
  ...extra,
});
const accept = (operations: unknown[]) => ({
  v: 1,
  type: 'ACCEPT',
  frameworkId: 'f',
  offerIds: ['o1'],
  operations,
});
const launch = (n: number, from = 0, extra: Record<string, unknown> = {}) => ({
  type: 'LAUNCH',
  tasks: Array.from({ length: n }, (_, i) => task(from + i, extra)),
});
const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

describe('bounded JSON, before JSON.parse and the schema', () => {
  it('refuses a body nested 5,000 deep in v, in type or anywhere, without recursing', () => {
    for (const body of [
      `{"v":${nested(5000)},"type":"HEARTBEAT","frameworkId":"f"}`,
      `{"v":1,"type":${nested(5000, '{"a":', '}').replace(/\{"a":\}/, '{"a":1}')}}`,
      `{"v":1,"type":"HEARTBEAT","frameworkId":"f","x":${nested(100_000)}}`,
    ]) {
      const r = parseMessage(SchedulerCallSchema, body, SCHED);
      expect(r).toMatchObject({ ok: false, code: 'MALFORMED_JSON' });
      expect(r.ok || r.error).toMatch(/nests deeper than 32/);
    }
  });

  it('counts brackets inside strings (escaped quotes too) as text, not nesting', () => {
    const s = `"${'[{'.repeat(500)}\\"${']}'.repeat(500)}"`;
    expect(boundedJsonProblem(`{"a":${s}}`)).toBeUndefined();
    expect(boundedJsonProblem(nested(32))).toBeUndefined();
    expect(boundedJsonProblem(nested(33))).toMatch(/deeper than 32/);
  });

  it('refuses a body longer than SQS allows', () => {
    const body = JSON.stringify({
      v: 1,
      type: 'HEARTBEAT',
      frameworkId: 'f',
      pad: 'x'.repeat(LIMITS.bodyChars),
    });
    expect(parseMessage(SchedulerCallSchema, body, SCHED)).toMatchObject({
      ok: false,
      code: 'MALFORMED_JSON',
    });
  });

  it('agrees with JSON.parse on the depth of any JSON value (property)', () => {
    const depthOf = (v: unknown): number =>
      v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 40 }), (v) => {
        const body = JSON.stringify(v);
        const problem = boundedJsonProblem(body, Number.MAX_SAFE_INTEGER, 8);
        expect(problem === undefined).toBe(depthOf(JSON.parse(body)) <= 8);
      }),
      { numRuns: 500 },
    );
  });

  it('an error message quotes at most 64 characters of what it was sent', () => {
    const r = parseMessage(
      SchedulerCallSchema,
      JSON.stringify({ v: 'x'.repeat(100_000), type: 'HEARTBEAT' }),
      SCHED,
    );
    expect(r.ok || r.error.length).toBeLessThan(200);
  });
});

describe('scalars are exact multiples of 0.001', () => {
  it.each([1e-10, 0.0001, 1.0005, 5e-324, -1, Number.MAX_VALUE])('cpus: %s is refused', (cpus) => {
    expect(sched(accept([launch(1, 0, { resources: { cpus, mem: 32 } })]))).toMatchObject({
      ok: false,
      code: 'INVALID',
    });
  });
  it.each([0.001, 0.1, 1.005, 2, 1e6])('cpus: %s is accepted', (cpus) => {
    expect(sched(accept([launch(1, 0, { resources: { cpus, mem: 32 } })])).ok).toBe(true);
  });
  it('NaN and Infinity are not JSON numbers: they arrive as null and are refused', () => {
    expect(sched(accept([launch(1, 0, { resources: { cpus: Number.NaN } })])).ok).toBe(false);
  });
  it('every integer count of thousandths round-trips (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e12 }), (k) => {
        expect(sched(accept([launch(1, 0, { resources: { cpus: k / 1000 } })])).ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('every list and map a call carries is bounded', () => {
  const env = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`K${i}`, 'v']));
  const cases: [string, (n: number) => unknown, (m: unknown) => { ok: boolean }, number][] = [
    [
      'environment entries',
      (n) => accept([launch(1, 0, { command: { value: 'x', environment: env(n) } })]),
      sched,
      LIMITS.envEntries,
    ],
    [
      'arguments',
      (n) => accept([launch(1, 0, { command: { value: 'x', shell: false, arguments: Array(n).fill('a') } })]),
      sched,
      LIMITS.arguments,
    ],
    [
      'uris',
      (n) => accept([launch(1, 0, { uris: Array(n).fill({ value: 'http://x/y' }) })]),
      sched,
      LIMITS.uris,
    ],
    ['tasks in one LAUNCH', (n) => accept([launch(n)]), sched, LIMITS.tasksPerAccept],
    [
      'tasks over the LAUNCHes of an ACCEPT',
      (n) => accept([launch(n - 1), launch(1, n)]),
      sched,
      LIMITS.tasksPerAccept,
    ],
    [
      'operations per ACCEPT',
      (n) =>
        accept(
          Array.from({ length: n }, () => ({ type: 'RESERVE', resources: { reserved: { r: { cpus: 1 } } } })),
        ),
      sched,
      LIMITS.operationsPerAccept,
    ],
    [
      'offers per DECLINE',
      (n) => ({
        v: 1,
        type: 'DECLINE',
        frameworkId: 'f',
        offerIds: Array.from({ length: n }, (_, i) => `o${i}`),
      }),
      sched,
      LIMITS.offersPerCall,
    ],
    [
      'RECONCILE tasks',
      (n) => ({
        v: 1,
        type: 'RECONCILE',
        frameworkId: 'f',
        tasks: Array.from({ length: n }, (_, i) => ({ taskId: `t${i}` })),
      }),
      sched,
      LIMITS.reconcileTasks,
    ],
    [
      'SUBSCRIBE roles',
      (n) => subscribe({ roles: Array.from({ length: n }, (_, i) => `r${i}`) }),
      sched,
      LIMITS.roles,
    ],
    [
      'offerFilters roles',
      (n) =>
        subscribe({
          offerFilters: Object.fromEntries(
            Array.from({ length: n }, (_, i) => [`r${i}`, { minAllocatableResources: [{ cpus: 1 }] }]),
          ),
        }),
      sched,
      LIMITS.roles,
    ],
    [
      'reserved roles',
      (n) =>
        register({
          resources: {
            reserved: Object.fromEntries(Array.from({ length: n }, (_, i) => [`r${i}`, { cpus: 1 }])),
          },
        }),
      agent,
      LIMITS.roles,
    ],
    ['attributes', (n) => register({ attributes: env(n) }), agent, LIMITS.attributes],
    [
      'REGISTER tasks',
      (n) =>
        register({ tasks: Array.from({ length: n }, (_, i) => ({ frameworkId: 'f', taskId: `t${i}` })) }),
      agent,
      LIMITS.registerTasks,
    ],
  ];
  it.each(cases)('%s: the limit passes, one more is INVALID', (_name, make, parse, limit) => {
    expect(parse(make(limit)).ok).toBe(true);
    expect(parse(make(limit + 1))).toMatchObject({ ok: false, code: 'INVALID' });
  });

  it('string lengths: environment names and values, attribute names and values', () => {
    const withEnv = (e: Record<string, string>) =>
      accept([launch(1, 0, { command: { value: 'x', environment: e } })]);
    expect(sched(withEnv({ ['K'.repeat(LIMITS.envNameChars)]: 'v' })).ok).toBe(true);
    expect(sched(withEnv({ ['K'.repeat(LIMITS.envNameChars + 1)]: 'v' })).ok).toBe(false);
    expect(sched(withEnv({ K: 'v'.repeat(LIMITS.envValueChars + 1) })).ok).toBe(false);
    expect(sched(withEnv({ '': 'v' })).ok).toBe(false);
    expect(agent(register({ attributes: { ['a'.repeat(LIMITS.attributeNameChars + 1)]: 'v' } })).ok).toBe(
      false,
    );
    expect(agent(register({ attributes: { a: 'v'.repeat(LIMITS.attributeValueChars + 1) } })).ok).toBe(false);
  });

  it('no map takes a __proto__ key', () => {
    const body = `{"v":1,"type":"REGISTER","agentId":"a1","hostname":"h","resources":{},"queueUrl":"http://x/q","attributes":{"__proto__":"x"}}`;
    expect(parseMessage(AgentCallSchema, body, AGENT)).toMatchObject({ ok: false, code: 'INVALID' });
  });
});

function subscribe(framework: Record<string, unknown>) {
  return {
    v: 1,
    type: 'SUBSCRIBE',
    framework: { frameworkId: 'f', name: 'n', queueUrl: 'http://x/000/meso-fw-f.fifo', ...framework },
  };
}
function register(extra: Record<string, unknown>) {
  return {
    v: 1,
    type: 'REGISTER',
    agentId: 'a1',
    hostname: 'h',
    resources: { cpus: 1 },
    queueUrl: 'http://x/000/meso-agent-a1.fifo',
    ...extra,
  };
}
