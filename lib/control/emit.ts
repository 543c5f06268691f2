/**
 * Sending what the services decided: events to frameworks, commands to agents, nudges to the
 * allocator and timers. Deduplication ids are derived from what caused the message, so a
 * redelivered inbound message re-sends the same ids and FIFO queues drop the copies.
 */

import { type OutboundMessage, QueueGoneError } from '../ports/bus.ts';
import type { Item } from '../ports/store.ts';
import type { AgentCommand, AllocatorMessage, SchedulerEvent, TimerMessage } from '../protocol/index.ts';
import { isBatching } from './batching-bus.ts';
import type { ControlDeps } from './deps.ts';

/**
 * Sends now, or — inside a handler invocation that batches its sends (lib/control/batching-bus.ts)
 * — with the invocation's other sends when it ends. Returns whether it was held.
 */
function held(deps: ControlDeps, queueUrl: string, messages: OutboundMessage[], onceKey?: string): boolean {
  if (!isBatching(deps.bus)) return false;
  deps.bus.defer(queueUrl, messages, onceKey);
  return true;
}

export interface Outgoing<T> {
  readonly message: T;
  readonly groupId: string;
  readonly dedupId: string;
}

/** Group for a framework event: a task's updates stay in order; offers and rescinds share one group. */
export function eventGroup(e: SchedulerEvent): string {
  if (e.type === 'UPDATE') return `task.${e.status.taskId}`;
  if (e.type === 'OFFERS' || e.type === 'RESCIND') return 'offers';
  return 'control';
}

/** Sends events to a framework's queue. A framework whose queue is gone is logged, not retried. */
export async function sendToFramework(
  deps: ControlDeps,
  queueUrl: string,
  events: readonly { event: SchedulerEvent; dedupId: string }[],
): Promise<void> {
  if (events.length === 0) return;
  const messages = events.map(({ event, dedupId }) => ({
    body: JSON.stringify(event),
    groupId: eventGroup(event),
    dedupId,
  }));
  if (held(deps, queueUrl, messages)) return;
  try {
    await deps.bus.send(queueUrl, messages);
  } catch (e) {
    if (!(e instanceof QueueGoneError)) throw e;
    const context = { queueUrl, count: events.length, types: [...new Set(events.map((x) => x.event.type))] };
    // A framework that tore down and deleted its queue (every `meso run` does) may still be sent
    // what was on its way: expected, not a warning. A gone queue of a framework still registered is.
    if (await frameworkLeft(deps, events)) deps.log.info('events to a framework that left dropped', context);
    else deps.log.warn('framework queue is gone; events dropped', context);
    deps.metrics.count('EventsToGoneQueue', { kind: 'framework' }, events.length);
  }
}

/** Whether the framework the events are for is torn down or unknown (undefined: cannot tell). */
async function frameworkLeft(
  deps: ControlDeps,
  events: readonly { event: SchedulerEvent }[],
): Promise<boolean | undefined> {
  const ids = events.map(({ event: e }) =>
    e.type === 'UPDATE' ? e.status.frameworkId : e.type === 'OFFERS' ? e.offers[0]?.frameworkId : undefined,
  );
  const frameworkId = ids.find((id) => id !== undefined);
  if (frameworkId === undefined) return undefined;
  const f = await deps.store.get<{ status: string } & Item>('frameworks', { frameworkId }).catch(() => null);
  if (f === null) return undefined;
  return f === undefined || f.status === 'TORN_DOWN';
}

export function agentGroup(c: AgentCommand): string {
  if (c.type === 'LAUNCH') return `task.${c.task.taskId}`;
  if (c.type === 'KILL') return `task.${c.taskId}`;
  // An ACKNOWLEDGE of several tasks' updates: their own group, apart from LAUNCH and KILL.
  if (c.type === 'ACKNOWLEDGE') return c.taskId !== undefined ? `task.${c.taskId}` : 'ack';
  return 'control';
}

export async function sendToAgent(
  deps: ControlDeps,
  queueUrl: string,
  commands: readonly { command: AgentCommand; dedupId: string }[],
): Promise<void> {
  if (commands.length === 0) return;
  const messages = commands.map(({ command, dedupId }) => ({
    body: JSON.stringify(command),
    groupId: agentGroup(command),
    dedupId,
  }));
  if (held(deps, queueUrl, messages)) return;
  try {
    await deps.bus.send(queueUrl, messages);
  } catch (e) {
    if (!(e instanceof QueueGoneError)) throw e;
    deps.log.warn('agent queue is gone; commands dropped', { queueUrl, count: commands.length });
    deps.metrics.count('EventsToGoneQueue', { kind: 'agent' }, commands.length);
  }
}

/**
 * Asks the allocator shard(s) to run a cycle. A call about resources on known agents nudges only
 * their shards ({@link shardsOf}); only what may change offers anywhere (a SUBSCRIBE, a REVIVE, a
 * role change, the sweep) nudges all. Nudges coalesce: one per shard per invocation that batches
 * its sends, and one cycle per allocation interval (lib/control/allocation-interval.ts).
 */
export async function nudgeAllocator(
  deps: ControlDeps,
  reason: string,
  shards?: readonly number[],
): Promise<void> {
  const list = shards ?? Array.from({ length: deps.config.shards }, (_, i) => i);
  await Promise.all(
    list.map((shard) => {
      const message: AllocatorMessage = { v: 1, type: 'ALLOCATE', shard, reason };
      const out = [{ body: JSON.stringify(message), groupId: `shard-${shard}`, dedupId: deps.ids.next() }];
      if (held(deps, deps.config.queues.allocator, out, `allocate.${shard}`)) return Promise.resolve();
      return deps.bus.send(deps.config.queues.allocator, out);
    }),
  );
}

/** The longest delay SQS gives a message (15 minutes): the longest a timer can wait. */
export const MAX_TIMER_DELAY_SECONDS = 900;

export async function startTimers(
  deps: ControlDeps,
  timers: readonly { message: TimerMessage; delaySeconds: number }[],
): Promise<void> {
  if (timers.length === 0) return;
  const messages = timers.map((t) => ({
    body: JSON.stringify(t.message),
    delaySeconds: Math.min(MAX_TIMER_DELAY_SECONDS, Math.max(0, t.delaySeconds)),
  }));
  if (held(deps, deps.config.queues.timers, messages)) return;
  await deps.bus.send(deps.config.queues.timers, messages);
}

export function shardOf(agentId: string, shards: number): number {
  if (shards <= 1) return 0;
  let h = 2166136261;
  for (let i = 0; i < agentId.length; i++) h = Math.imul(h ^ agentId.charCodeAt(i), 16777619);
  return (h >>> 0) % shards;
}

/** The allocator shards of `agentIds`, each once. */
export function shardsOf(deps: Pick<ControlDeps, 'config'>, agentIds: Iterable<string>): number[] {
  return [...new Set([...agentIds].map((a) => shardOf(a, deps.config.shards)))];
}
