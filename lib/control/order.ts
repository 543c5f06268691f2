/**
 * Keeping each task's updates in order at its framework. A task's updates travel in one FIFO
 * group (`task.<taskId>`), but they are produced by more than one handler: the registry forwards
 * the agent's updates as it applies them, while the liveness sweep, re-registrations and
 * reconciliation send statuses Meso makes itself, some through the outbox (possibly a sweep later).
 * Every change of a task row is serialized by the row's version, but the sends are not: a
 * TASK_UNREACHABLE decided before the agent's TASK_FINISHED could reach the framework after it
 * and leave it believing the task is unreachable. (Mesos's master forwards from one thread, so its
 * order is the order of its decisions.)
 *
 * So whoever sends a status re-reads the row once its send is done: if the row has moved past the
 * version the status reflects, a newer status exists and may have been sent before this one, so
 * the row's current status follows, as a reconciliation answer (no uuid: nothing to acknowledge,
 * and not suppressed by a framework's de-duplication of a uuid it has seen). The last update of
 * each task a framework receives is therefore the registry's: the one who changed the row last
 * either sent after the other's re-read, or is seen by it.
 *
 * Cost: one item read per status Meso makes (rare: partitions, re-registrations, reconciliation) and
 * per non-terminal agent update forwarded (a terminal state is final: nothing can overtake it);
 * the re-reads of one handler invocation go in one BatchGetItem.
 */
import type { TaskRecord } from '../core/model.ts';
import { getEach, type Item } from '../ports/store.ts';
import { type BatchingBus, isBatching } from './batching-bus.ts';
import type { ControlDeps } from './deps.ts';
import { sendToFramework } from './emit.ts';
import { uncached } from './read-cache.ts';
import { reconciledStatus, type SentUpdate } from './statuses.ts';

/** Per invocation (its batching bus): the sent updates whose re-read waits for the flush. */
const waitingFor = new WeakMap<BatchingBus, SentUpdate[]>();

/**
 * After sending `sent`, sends the current status of each task whose row has moved on since.
 * `sentNow`: the updates went out directly (`bus.send`, as the outbox sends), not held by a
 * batching bus, so the re-read is done at once — before, say, the outbox item is deleted.
 */
export async function followUpReordered(
  deps: ControlDeps,
  sent: readonly SentUpdate[],
  opts: { sentNow?: boolean } = {},
): Promise<number> {
  const bus = deps.bus;
  if (isBatching(bus)) {
    // Follow-ups go out at once (after whatever is held), never held themselves.
    const direct: ControlDeps = { ...deps, bus: { send: (q, m) => bus.send(q, m) } };
    // Held sends are not out yet: the re-read waits until they are (lib/control/batching-bus.ts),
    // and the invocation's re-reads wait together, to be read in one call.
    if (sent.length > 0 && !opts.sentNow) {
      const waiting = waitingFor.get(bus);
      if (waiting) waiting.push(...sent);
      else {
        const list = [...sent];
        waitingFor.set(bus, list);
        bus.afterFlush(async () => {
          waitingFor.delete(bus);
          await followUpReordered(direct, list);
        });
      }
      return 0;
    }
    return followUpReordered(direct, sent);
  }
  // Read here rather than through records/tasks.ts, which imports the outbox that imports this;
  // past the invocation's read cache: this read is for what others wrote since.
  const rows = await getEach<TaskRecord & Item>(
    uncached(deps.store),
    'tasks',
    sent.map((s) => ({ frameworkId: s.frameworkId, taskId: s.taskId })),
  );
  let n = 0;
  for (const [i, s] of sent.entries()) {
    const row = rows[i];
    if (!row || row.version === s.version) continue;
    await followUp(deps, s.queueUrl, row);
    n++;
  }
  if (n > 0) deps.metrics.count('UpdatesFollowedUp', {}, n);
  return n;
}

async function followUp(deps: ControlDeps, queueUrl: string, row: TaskRecord & Item): Promise<void> {
  const status = reconciledStatus(deps.clock.now(), row);
  await sendToFramework(deps, queueUrl, [
    {
      event: { v: 1, type: 'UPDATE', status },
      dedupId: `followup.${row.frameworkId}.${row.taskId}.${row.version}`,
    },
  ]);
}
