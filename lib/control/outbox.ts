/**
 * The outbox: messages decided together with a state change, written in the same DynamoDB
 * transaction as that change and sent afterwards. A handler that dies between its write and its
 * sends (a crash, a Lambda timeout, a throttled SQS call) leaves the outbox item behind, and the
 * sweep sends it within a minute; an effect is therefore never lost. It is never doubled either:
 * every message keeps the deduplication id it was given when the change was decided, and the
 * sweep re-sends well inside SQS FIFO's five-minute deduplication window, so the copy of a message
 * that did get out before the crash is dropped by SQS.
 *
 * Handlers triggered by a message (SUBSCRIBE, REGISTER, ...) mostly need no outbox: a failure
 * fails the record, SQS redelivers it, and the handler re-derives the same messages from the state
 * it finds. The outbox is for changes whose messages cannot be re-derived from the state they leave
 * behind (an agent that became UNREACHABLE, a task that went back to RUNNING when its agent
 * returned) and for changes the sweep makes, which no message will redeliver.
 *
 * Items live in the `meta` table under `outbox#<id>`; ids name the change (`unreachable.<agent>.<t>`)
 * so that writing the same change twice writes the same item.
 */
import { QueueGoneError } from '../ports/bus.ts';
import type { Item, WriteOp } from '../ports/store.ts';
import type { AgentCommand, SchedulerEvent } from '../protocol/index.ts';
import type { ControlDeps } from './deps.ts';
import { agentGroup, eventGroup } from './emit.ts';
import { followUpReordered } from './order.ts';

/** One message to send: where, its body, and the FIFO group and deduplication ids it was decided with. */
export interface OutboxMessage {
  readonly queueUrl: string;
  readonly body: string;
  readonly groupId?: string;
  readonly dedupId?: string;
  /** Standard queues only. */
  readonly delaySeconds?: number;
  /** A task UPDATE: the row version it reflects, re-checked after sending (lib/control/order.ts). */
  readonly watch?: { readonly frameworkId: string; readonly taskId: string; readonly version: number };
}

export interface OutboxItem {
  readonly key: string;
  readonly messages: readonly OutboxMessage[];
  readonly createdAt: number;
}

export const OUTBOX_PREFIX = 'outbox#';

/** Messages per outbox item: keeps an item far below DynamoDB's 400 KB. */
export const OUTBOX_CHUNK = 100;

/** An outbox item the sweep leaves alone for this long: the handler that wrote it is still sending. */
export const OUTBOX_GRACE_MS = 20_000;

export const toFramework = (
  queueUrl: string,
  event: SchedulerEvent,
  dedupId: string,
  watch?: OutboxMessage['watch'],
): OutboxMessage => ({
  queueUrl,
  body: JSON.stringify(event),
  groupId: eventGroup(event),
  dedupId,
  ...(watch ? { watch } : {}),
});

export const toAgent = (queueUrl: string, command: AgentCommand, dedupId: string): OutboxMessage => ({
  queueUrl,
  body: JSON.stringify(command),
  groupId: agentGroup(command),
  dedupId,
});

/**
 * The writes that put `messages` in the outbox under `id` (one item per {@link OUTBOX_CHUNK}), to
 * go in the same transaction as the change they belong to. Returns the items too, for
 * {@link flushOutbox}.
 */
export function outboxWrites(
  id: string,
  messages: readonly OutboxMessage[],
  now: number,
): { ops: WriteOp[]; items: OutboxItem[] } {
  const items: OutboxItem[] = [];
  for (let i = 0; i < messages.length; i += OUTBOX_CHUNK) {
    items.push({
      key: `${OUTBOX_PREFIX}${id}${i === 0 ? '' : `#${i / OUTBOX_CHUNK}`}`,
      messages: messages.slice(i, i + OUTBOX_CHUNK),
      createdAt: now,
    });
  }
  return {
    items,
    ops: items.map((item) => ({
      kind: 'put',
      table: 'meta',
      item: item as unknown as Item,
      expect: 'any',
    })),
  };
}

/**
 * Sends messages, batched per queue. A queue that no longer exists (a framework or agent that
 * deleted its queue and left) drops its messages, as `sendToFramework` does; any other failure
 * throws, so the caller's record fails and is retried (and the outbox item stays).
 */
export async function sendAll(deps: ControlDeps, messages: readonly OutboxMessage[]): Promise<void> {
  const byQueue = new Map<string, OutboxMessage[]>();
  for (const m of messages) {
    const list = byQueue.get(m.queueUrl);
    if (list) list.push(m);
    else byQueue.set(m.queueUrl, [m]);
  }
  await Promise.all(
    [...byQueue].map(async ([queueUrl, list]) => {
      try {
        await deps.bus.send(
          queueUrl,
          list.map((m) => ({
            body: m.body,
            ...(m.groupId !== undefined ? { groupId: m.groupId } : {}),
            ...(m.dedupId !== undefined ? { dedupId: m.dedupId } : {}),
            ...(m.delaySeconds !== undefined ? { delaySeconds: m.delaySeconds } : {}),
          })),
        );
      } catch (e) {
        if (!(e instanceof QueueGoneError)) throw e;
        deps.log.warn('queue is gone; outbox messages dropped', { queueUrl, count: list.length });
        deps.metrics.count('EventsToGoneQueue', { kind: 'outbox' }, list.length);
      }
    }),
  );
}

/** Sends the items' messages (following up task updates a newer change may have overtaken), then deletes the items. */
export async function flushOutbox(deps: ControlDeps, items: readonly OutboxItem[]): Promise<void> {
  if (items.length === 0) return;
  const messages = items.flatMap((i) => i.messages);
  await sendAll(deps, messages);
  await followUpReordered(
    deps,
    messages.flatMap((m) => (m.watch ? [{ queueUrl: m.queueUrl, ...m.watch }] : [])),
    { sentNow: true },
  );
  await Promise.all(
    items.map((i) =>
      deps.store.write([{ kind: 'delete', table: 'meta', key: { key: i.key }, expect: 'any' }]),
    ),
  );
}

/**
 * A call's notices — what a framework or agent must hear about a decision — ready to send: in the
 * outbox when they ride with a write (`items`), else as they are (`unwritten`): a decision that
 * writes nothing leaves nothing a crash could strand, and its redelivery decides them again.
 */
export interface Notices {
  readonly items: readonly OutboxItem[];
  readonly unwritten: readonly OutboxMessage[];
}

/**
 * The notices of a decision under `id`, and the writes that put them in the outbox when the
 * decision writes (`withWrite`): those go in the same transaction as the decision's own writes.
 */
export function noticesOf(
  id: string,
  messages: readonly OutboxMessage[],
  now: number,
  withWrite: boolean,
): { ops: WriteOp[]; notices: Notices } {
  if (!withWrite) return { ops: [], notices: { items: [], unwritten: messages } };
  const { ops, items } = outboxWrites(id, messages, now);
  return { ops, notices: { items, unwritten: [] } };
}

/** Sends a decision's notices, after its write: the outbox items (then deleted), or the messages. */
export async function sendNotices(deps: ControlDeps, notices: Notices): Promise<void> {
  await flushOutbox(deps, notices.items);
  await sendAll(deps, notices.unwritten);
}

/**
 * Sends what handlers left in the outbox (they died after their write): every item older than
 * `graceMs`. Run by the sweep. Returns how many items and messages it sent.
 */
export async function drainOutbox(
  deps: ControlDeps,
  graceMs = OUTBOX_GRACE_MS,
): Promise<{ items: number; messages: number }> {
  const now = deps.clock.now();
  const items = (await deps.store.scan<OutboxItem & Item>('meta')).filter(
    (i) => typeof i.key === 'string' && i.key.startsWith(OUTBOX_PREFIX) && i.createdAt <= now - graceMs,
  );
  let messages = 0;
  for (const item of items) {
    await flushOutbox(deps, [item]);
    messages += item.messages.length;
  }
  if (items.length > 0) {
    deps.log.warn('outbox items sent by the sweep (their handler died after its write)', {
      items: items.length,
      messages,
    });
    deps.metrics.count('OutboxRecovered', {}, messages);
  }
  return { items: items.length, messages };
}
