/**
 * A control plane over the in-memory store and a recording bus, with a hand-driven clock: the
 * fault-tolerance logic (lib/control) tested without emulators. The bus can be told to fail, to
 * stand for an SQS outage or a handler that dies before its sends.
 */
import { MemoryStore } from '../../../lib/adapters/memory-store.ts';
import { type ControlDeps, DEFAULT_CONTROL_CONFIG } from '../../../lib/control/deps.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import { countingMetrics, quietLogger } from '../../../lib/local/control-plane.ts';
import type { Bus, OutboundMessage } from '../../../lib/ports/bus.ts';
import type { Item } from '../../../lib/ports/store.ts';
import type { AgentCommand, SchedulerEvent } from '../../../lib/protocol/index.ts';

export interface Sent {
  readonly queueUrl: string;
  readonly message: OutboundMessage;
  readonly body: { type: string } & Record<string, unknown>;
}

export class RecordingBus implements Bus {
  readonly sent: Sent[] = [];
  /** Sends that fail before anything is sent. */
  failNext = 0;
  async send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected SQS failure');
    }
    for (const message of messages) this.sent.push({ queueUrl, message, body: JSON.parse(message.body) });
  }
  to(queueUrl: string): Sent[] {
    return this.sent.filter((s) => s.queueUrl === queueUrl);
  }
  events(queueUrl: string): SchedulerEvent[] {
    return this.to(queueUrl).map((s) => s.body as unknown as SchedulerEvent);
  }
  commands(queueUrl: string): AgentCommand[] {
    return this.to(queueUrl).map((s) => s.body as unknown as AgentCommand);
  }
  /** What a FIFO queue would keep: one message per deduplication id (within the 5-minute window). */
  deduplicated(queueUrl: string): Sent[] {
    const seen = new Set<string>();
    return this.to(queueUrl).filter((s) => {
      const id = s.message.dedupId ?? s.message.body;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }
  clear(): void {
    this.sent.length = 0;
  }
}

export const Q = {
  schedulerCalls: 'http://sqs.local/000/meso-scheduler-calls.fifo',
  agentCalls: 'http://sqs.local/000/meso-agent-calls.fifo',
  allocator: 'http://sqs.local/000/meso-allocator.fifo',
  timers: 'http://sqs.local/000/meso-timers',
} as const;

export const fwQueue = (id: string) => `http://sqs.local/000/meso-fw-${id}.fifo`;
export const agentQueue = (id: string) => `http://sqs.local/000/meso-agent-${id}.fifo`;

export interface TestControl {
  readonly deps: ControlDeps;
  readonly store: MemoryStore;
  readonly bus: RecordingBus;
  readonly counters: Map<string, number>;
  /** The control plane's clock (ms). */
  now: number;
}

export function testControl(config: Partial<ControlDeps['config']> = {}): TestControl {
  const store = new MemoryStore();
  const bus = new RecordingBus();
  const counters = new Map<string, number>();
  let n = 0;
  const t: TestControl = {
    store,
    bus,
    counters,
    now: 1_000_000,
    deps: undefined as unknown as ControlDeps,
  };
  (t as { deps: ControlDeps }).deps = {
    store,
    bus,
    clock: { now: () => t.now },
    ids: { next: () => `id${++n}` },
    metrics: countingMetrics(counters),
    log: quietLogger,
    config: { ...DEFAULT_CONTROL_CONFIG, queues: Q, ...config },
  };
  return t;
}

export async function putAgent(
  t: TestControl,
  agentId: string,
  over: Partial<AgentRecord> = {},
): Promise<void> {
  const a: AgentRecord = {
    agentId,
    principal: 'agent-principal',
    hostname: `${agentId}.local`,
    queueUrl: agentQueue(agentId),
    total: parse('cpus:4;mem:4096'),
    attributes: {},
    status: 'ACTIVE',
    offers: {},
    tasks: {},
    registeredAt: t.now,
    lastSeenAt: t.now,
    shard: 0,
    version: 0,
    ...over,
  };
  await t.store.write([{ kind: 'put', table: 'agents', item: a as unknown as Item, expect: 'absent' }]);
}

/** A subscribed framework's record, as of `t.now`. */
export const frameworkRecord = (
  t: TestControl,
  frameworkId: string,
  over: Partial<FrameworkRecord> = {},
): FrameworkRecord => ({
  frameworkId,
  principal: 'fw-principal',
  name: frameworkId,
  roles: ['*'],
  queueUrl: fwQueue(frameworkId),
  status: 'ACTIVE',
  failoverTimeoutSeconds: 0,
  partitionAware: false,
  filters: {},
  subscribedAt: t.now,
  lastSeenAt: t.now,
  version: 0,
  ...over,
});

export async function putFramework(
  t: TestControl,
  frameworkId: string,
  over: Partial<FrameworkRecord> = {},
): Promise<void> {
  const f = frameworkRecord(t, frameworkId, over);
  await t.store.write([{ kind: 'put', table: 'frameworks', item: f as unknown as Item, expect: 'absent' }]);
}

/** A task row and its place in the agent's accounting, as an ACCEPT leaves them. */
export async function putTask(
  t: TestControl,
  frameworkId: string,
  taskId: string,
  agentId: string,
  state: TaskRecord['state'] = 'TASK_RUNNING',
): Promise<void> {
  const resources = parse('cpus:1;mem:128');
  const row: TaskRecord = {
    frameworkId,
    taskId,
    agentId,
    offerId: `o-${taskId}@${agentId}`,
    info: { taskId, agentId, resources: { cpus: 1, mem: 128 }, command: { shell: true, value: 'sleep 60' } },
    resources,
    state,
    status: {
      taskId,
      frameworkId,
      agentId,
      state,
      source: 'SOURCE_EXECUTOR',
      uuid: `u-${taskId}-${state}`,
      timestamp: t.now,
    },
    seenUuids: [],
    createdAt: t.now,
    updatedAt: t.now,
    version: 0,
  };
  await t.store.write([{ kind: 'put', table: 'tasks', item: row as unknown as Item, expect: 'absent' }]);
  const a = (await t.store.get<AgentRecord & Item>('agents', { agentId }))!;
  await t.store.write([
    {
      kind: 'patch',
      table: 'agents',
      key: { agentId },
      set: { tasks: { ...a.tasks, [ledgerKey(frameworkId, taskId)]: { frameworkId, taskId, resources } } },
      expect: a.version,
    },
  ]);
}

export const agent = (t: TestControl, agentId: string) =>
  t.store.get<AgentRecord & Item>('agents', { agentId }) as Promise<AgentRecord>;
export const framework = (t: TestControl, frameworkId: string) =>
  t.store.get<FrameworkRecord & Item>('frameworks', { frameworkId }) as Promise<FrameworkRecord>;
export const task = (t: TestControl, frameworkId: string, taskId: string) =>
  t.store.get<TaskRecord & Item>('tasks', { frameworkId, taskId }) as Promise<TaskRecord>;

/** An SQS record for a handler, from the given sender. */
export function record(body: object, senderId: string, source?: string, messageId = `m${Math.random()}`) {
  return { messageId, body: JSON.stringify(body), senderId, receiveCount: 1, ...(source ? { source } : {}) };
}
