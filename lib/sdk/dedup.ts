/**
 * De-duplication of events. SQS delivers at least once and agents re-send a status update until
 * it is acknowledged, so the same update can arrive several times; the SDK hands each to the
 * framework once. Updates are keyed by their uuid (a re-sent update is a new SQS message with
 * the same uuid), every other event by its SQS message id (a redelivery keeps the id).
 */
import type { SchedulerEvent } from '../protocol/scheduler.ts';

/** A map that forgets its oldest entries beyond `capacity` (insertion order). */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  get size(): number {
    return this.map.size;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): this {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }
}

/** The de-duplication key of a status update with this uuid. */
export function updateKey(uuid: string): string {
  return `update:${uuid}`;
}

/** The de-duplication key of an event received as SQS message `messageId`. */
export function dedupKey(event: SchedulerEvent, messageId: string): string {
  if (event.type === 'UPDATE' && event.status.uuid !== undefined) return updateKey(event.status.uuid);
  return `message:${messageId}`;
}
