/**
 * Framework failover, as Mesos keeps it. A framework that goes away keeps its tasks for its
 * failover timeout (`failoverTimeoutSeconds`, 0 by default as in Mesos); it may come back with
 * its framework id — from a new process and a new queue — and get its offers and the state of its
 * tasks again; when the timeout ends, it is removed: its tasks are killed and its resources freed.
 *
 * Going away. Mesos sees an HTTP scheduler leave when its connection closes. Over SQS there is no
 * connection, so every framework answers the HEARTBEAT event (sent each sweep, 60 s) with a
 * HEARTBEAT call, and any call it makes counts as well. A framework silent for
 * `frameworkPingTimeouts` heartbeat periods (3 × 60 s), or whose event queue no longer exists, is
 * DISCONNECTED: it gets no offers, its outstanding offers are taken back, status updates for it are
 * applied but not forwarded (the agents keep retrying them until it returns), and its failover
 * timeout starts — watched by the sweep, with a FAILOVER_TIMEOUT timer for deadlines that fall
 * before the next sweep (and for any timeout up to SQS's 15-minute delay).
 *
 * Minutes are too long for a short-lived framework such as `meso run`, whose resources a killed
 * process would hold that long. Such a framework asks for its own heartbeat interval
 * (FrameworkInfo.heartbeatIntervalSeconds, at least 2 s): it then calls HEARTBEAT that often by
 * itself, each counted call starts a FRAMEWORK_CHECK timer for its new deadline, and it is
 * DISCONNECTED `frameworkPingTimeouts` periods after its last call (6 s for `meso run`). The cost
 * is the framework's own calls and one delayed message per half period while it lives; a cluster
 * without such a framework pays nothing.
 *
 * Coming back. SUBSCRIBE with the same id (and the identity that owns it) makes it ACTIVE again;
 * if the queue changed, the old queue gets an ERROR "Framework failed over" (Mesos's message to the
 * old scheduler). Its outstanding offers are rescinded and regenerated (Mesos: "offers are
 * rescinded and regenerated each time the framework (re-)registers"), and the latest status of each
 * of its non-terminal tasks is sent to the new queue, uuid and all, so it can acknowledge what the
 * old process never did and the agents' retries stop; updates that never reached the registry
 * arrive with the agents' next retry.
 */
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import { updateStateOf } from '../core/task-change.ts';
import { isTerminal } from '../core/task-state.ts';
import { QueueGoneError } from '../ports/bus.ts';
import type { Item } from '../ports/store.ts';
import type { SchedulerEvent, TimerMessage } from '../protocol/index.ts';
import type { ControlConfig, ControlDeps } from './deps.ts';
import { eventGroup, nudgeAllocator, sendToFramework, shardsOf, startTimers } from './emit.ts';
import { releaseId } from './id-quota.ts';
import { followUpReordered } from './order.ts';
import {
  flushOutbox,
  type OutboxItem,
  type OutboxMessage,
  outboxWrites,
  sendAll,
  toAgent,
  toFramework,
} from './outbox.ts';
import { getAgent, takeAgentOffers } from './records/agents.ts';
import { getFramework, updateFramework } from './records/frameworks.ts';
import { forgetRoute } from './records/routes.ts';

/**
 * The framework's liveness period: the one it asked for (FrameworkInfo.heartbeatIntervalSeconds)
 * when shorter than the cluster's, else the cluster's.
 */
export const heartbeatSecondsOf = (
  c: Pick<ControlConfig, 'frameworkHeartbeatSeconds'>,
  f?: Pick<FrameworkRecord, 'heartbeatIntervalSeconds'>,
): number => Math.min(c.frameworkHeartbeatSeconds, f?.heartbeatIntervalSeconds ?? Number.POSITIVE_INFINITY);

/** How long a framework may stay silent before it is DISCONNECTED. */
export const frameworkTimeoutMs = (
  c: Pick<ControlConfig, 'frameworkHeartbeatSeconds' | 'frameworkPingTimeouts'>,
  f?: Pick<FrameworkRecord, 'heartbeatIntervalSeconds'>,
) => heartbeatSecondsOf(c, f) * c.frameworkPingTimeouts * 1000;

/** Whether the framework keeps a liveness period shorter than the cluster's (a FRAMEWORK_CHECK timer watches it). */
export const watchedClosely = (
  c: Pick<ControlConfig, 'frameworkHeartbeatSeconds'>,
  f: Pick<FrameworkRecord, 'heartbeatIntervalSeconds'>,
): boolean => heartbeatSecondsOf(c, f) < c.frameworkHeartbeatSeconds;

/** When the framework was last heard from. */
export const lastHeard = (f: Pick<FrameworkRecord, 'lastSeenAt' | 'subscribedAt'>): number =>
  Math.max(f.lastSeenAt ?? 0, f.subscribedAt);

/** When a DISCONNECTED framework's failover timeout ends. */
export const failoverDeadline = (
  f: Pick<FrameworkRecord, 'disconnectedAt' | 'failoverTimeoutSeconds'>,
): number => (f.disconnectedAt ?? 0) + f.failoverTimeoutSeconds * 1000;

export interface FailoverPlan {
  /** ACTIVE frameworks silent for too long. */
  readonly disconnect: string[];
  /** DISCONNECTED frameworks whose failover timeout has ended. */
  readonly remove: string[];
  /** Failover deadlines before the next sweep: one FAILOVER_TIMEOUT timer each. */
  readonly timers: { frameworkId: string; disconnectedAt: number; delaySeconds: number }[];
}

/** What is due for each framework at `now` (pure). */
export function planFailover(
  frameworks: readonly FrameworkRecord[],
  now: number,
  config: Pick<ControlConfig, 'frameworkHeartbeatSeconds' | 'frameworkPingTimeouts' | 'sweepIntervalSeconds'>,
): FailoverPlan {
  const plan: FailoverPlan = { disconnect: [], remove: [], timers: [] };
  const horizon = now + config.sweepIntervalSeconds * 1000;
  for (const f of frameworks) {
    if (f.status === 'ACTIVE' && now - lastHeard(f) >= frameworkTimeoutMs(config, f))
      plan.disconnect.push(f.frameworkId);
    if (f.status === 'DISCONNECTED' && typeof f.disconnectedAt === 'number') {
      const deadline = failoverDeadline(f);
      if (now >= deadline) plan.remove.push(f.frameworkId);
      else if (deadline < horizon) {
        plan.timers.push({
          frameworkId: f.frameworkId,
          disconnectedAt: f.disconnectedAt,
          delaySeconds: Math.ceil((deadline - now) / 1000),
        });
      }
    }
  }
  return plan;
}

export interface FailoverReport {
  readonly disconnected: number;
  readonly removed: number;
  readonly heartbeats: number;
}

/**
 * The sweep's part: disconnects silent frameworks, removes those whose failover timeout ended,
 * starts timers for deadlines before the next sweep, and sends every ACTIVE framework its
 * HEARTBEAT event (a framework whose queue is gone is disconnected on the spot).
 */
export async function checkFrameworks(deps: ControlDeps): Promise<FailoverReport> {
  const now = deps.clock.now();
  const frameworks = await deps.store.scan<FrameworkRecord & Item>('frameworks');
  const plan = planFailover(frameworks, now, deps.config);
  const attempt = async (what: string, frameworkId: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      deps.log.error(`failover: ${what} failed; the next sweep retries`, { frameworkId, error: String(e) });
    }
  };
  for (const id of plan.disconnect)
    await attempt('disconnecting', id, () => disconnectFramework(deps, id, 'silent'));
  for (const id of plan.remove)
    await attempt('removing', id, () => removeFramework(deps, id, 'failover timeout', `failover.${id}`));
  await startTimers(
    deps,
    plan.timers.map((t) => failoverTimer(t.frameworkId, t.disconnectedAt, t.delaySeconds)),
  );
  // An allocation cycle that read a framework as ACTIVE just before it went away may still have
  // made it an offer: take such offers back (they would only hold resources until they expire).
  const away = new Set([
    ...frameworks.filter((f) => f.status !== 'ACTIVE').map((f) => f.frameworkId),
    ...plan.disconnect,
    ...plan.remove,
  ]);
  if (away.size > 0) {
    const agents = await deps.store.scan<AgentRecord & Item>('agents');
    const stray = new Set(
      agents.flatMap((a) => Object.values(a.offers).map((o) => o.frameworkId)).filter((id) => away.has(id)),
    );
    for (const id of stray) await attempt('taking back offers', id, () => reclaimOffers(deps, id));
  }
  const tick = Math.floor(now / (deps.config.frameworkHeartbeatSeconds * 1000));
  const active = frameworks.filter((f) => f.status === 'ACTIVE' && !plan.disconnect.includes(f.frameworkId));
  let heartbeats = 0;
  await Promise.all(
    active.map(async (f) => {
      const event: SchedulerEvent = { v: 1, type: 'HEARTBEAT' };
      try {
        await deps.bus.send(f.queueUrl, [
          { body: JSON.stringify(event), groupId: eventGroup(event), dedupId: `heartbeat.${tick}` },
        ]);
        heartbeats++;
      } catch (e) {
        if (!(e instanceof QueueGoneError)) throw e;
        await attempt('disconnecting (queue gone)', f.frameworkId, () =>
          disconnectFramework(deps, f.frameworkId, 'queue gone', { force: true }),
        );
      }
    }),
  );
  return { disconnected: plan.disconnect.length, removed: plan.remove.length, heartbeats };
}

/**
 * Records that the framework was heard from (any call), at most once per half heartbeat period,
 * with a write that does not touch its version (it never races with real changes). A framework
 * with its own short period gets a FRAMEWORK_CHECK timer for its new deadline with each write:
 * the sweep (a minute) is too coarse for it. That is one delayed message per half period, only
 * while such a framework lives; a cluster without one pays nothing.
 */
export async function touchFramework(deps: ControlDeps, f: FrameworkRecord): Promise<void> {
  const now = deps.clock.now();
  if (now - lastHeard(f) < (heartbeatSecondsOf(deps.config, f) * 1000) / 2) return;
  await deps.store.write([
    {
      kind: 'patch',
      table: 'frameworks',
      key: { frameworkId: f.frameworkId },
      set: { lastSeenAt: now },
      expect: 'exists',
    },
  ]);
  if (watchedClosely(deps.config, f)) await startFrameworkCheck(deps, f);
}

/**
 * A FRAMEWORK_CHECK timer at the framework's silence deadline counted from now (SQS delays are
 * whole seconds: rounded up, so the deadline has passed when it fires).
 */
export async function startFrameworkCheck(
  deps: ControlDeps,
  f: Pick<FrameworkRecord, 'frameworkId' | 'heartbeatIntervalSeconds'>,
): Promise<void> {
  await startTimers(deps, [
    {
      message: { v: 1, type: 'FRAMEWORK_CHECK', frameworkId: f.frameworkId },
      delaySeconds: Math.ceil(frameworkTimeoutMs(deps.config, f) / 1000),
    },
  ]);
}

/**
 * The FRAMEWORK_CHECK timer: disconnects the framework if it has stayed silent past its deadline
 * (a framework heard from since changes nothing: its newer timer is on the way).
 */
export async function onFrameworkCheck(deps: ControlDeps, m: { frameworkId: string }): Promise<void> {
  const f = await getFramework(deps.store, m.frameworkId);
  if (f?.status !== 'ACTIVE') return;
  if (deps.clock.now() - lastHeard(f) < frameworkTimeoutMs(deps.config, f)) return;
  await disconnectFramework(deps, m.frameworkId, 'silent');
}

/**
 * ACTIVE → DISCONNECTED: no more offers, outstanding ones taken back, failover timeout started
 * (removed at once when it is 0). `force` skips the silence check (its queue is gone; tests).
 */
export async function disconnectFramework(
  deps: ControlDeps,
  frameworkId: string,
  why: string,
  opts: { force?: boolean } = {},
): Promise<boolean> {
  const done = await updateFramework(deps.store, frameworkId, (f) => {
    const now = deps.clock.now();
    if (f?.status !== 'ACTIVE') return { result: undefined };
    if (!opts.force && now - lastHeard(f) < frameworkTimeoutMs(deps.config, f)) return { result: undefined };
    return {
      set: { status: 'DISCONNECTED', disconnectedAt: now },
      result: { ...f, status: 'DISCONNECTED' as const, disconnectedAt: now },
    };
  });
  if (!done) return false;
  forgetRoute('framework', frameworkId);
  deps.log.warn('framework disconnected', {
    frameworkId,
    why,
    failoverTimeoutSeconds: done.failoverTimeoutSeconds,
  });
  deps.metrics.count('FrameworksDisconnected', { why });
  if (done.failoverTimeoutSeconds === 0) {
    // Removal takes its outstanding offers back too.
    await removeFramework(deps, frameworkId, 'failover timeout', `failover.${frameworkId}`);
    return true;
  }
  const taken = await takeBackOffers(deps, frameworkId);
  if (done.failoverTimeoutSeconds <= 900) {
    await startTimers(deps, [failoverTimer(frameworkId, done.disconnectedAt, done.failoverTimeoutSeconds)]);
  }
  if (taken.count > 0)
    await nudgeAllocator(deps, `framework ${frameworkId} disconnected`, shardsOf(deps, taken.agentIds));
  return true;
}

/** A FAILOVER_TIMEOUT timer for a framework disconnected at `disconnectedAt`. */
function failoverTimer(
  frameworkId: string,
  disconnectedAt: number,
  delaySeconds: number,
): { message: TimerMessage; delaySeconds: number } {
  return { message: { v: 1, type: 'FAILOVER_TIMEOUT', frameworkId, disconnectedAt }, delaySeconds };
}

/** The FAILOVER_TIMEOUT timer: removes the framework if it is still disconnected since then and its time is up. */
export async function onFailoverTimeout(
  deps: ControlDeps,
  m: { frameworkId: string; disconnectedAt: number },
): Promise<void> {
  const f = await getFramework(deps.store, m.frameworkId);
  if (f?.status !== 'DISCONNECTED' || f.disconnectedAt !== m.disconnectedAt) return;
  const left = failoverDeadline(f) - deps.clock.now();
  if (left > 0) {
    // Early (clock skew, or a timeout longer than one timer can wait): wait again, or leave it to the sweep.
    if (left <= 900_000)
      await startTimers(deps, [failoverTimer(m.frameworkId, m.disconnectedAt, Math.ceil(left / 1000))]);
    return;
  }
  await removeFramework(deps, m.frameworkId, 'failover timeout', `failover.${m.frameworkId}`);
}

/**
 * Removes a framework (TEARDOWN, or its failover timeout ended): TORN_DOWN, filters dropped,
 * outstanding offers taken back, and a KILL for each of its tasks that has not ended; the agents'
 * TASK_KILLED updates free the resources (acknowledged by Meso on its behalf). The KILLs go in the
 * outbox with the status change. Called again for a framework already removed (a redelivered
 * TEARDOWN), it sends the KILLs for whatever still runs, under the same deduplication ids.
 */
export async function removeFramework(
  deps: ControlDeps,
  frameworkId: string,
  reason: string,
  dedupBase: string,
): Promise<'removed' | 'already-removed' | 'unknown'> {
  const tasks = (
    await deps.store.query<TaskRecord & Item>('tasks', { name: 'frameworkId', value: frameworkId })
  ).filter((t) => !isTerminal(t.state));
  const agents = new Map<string, AgentRecord | undefined>();
  for (const t of tasks)
    if (!agents.has(t.agentId)) agents.set(t.agentId, await getAgent(deps.store, t.agentId));
  const kills: OutboxMessage[] = tasks.flatMap((t) => {
    const a = agents.get(t.agentId);
    if (!a || a.status === 'GONE') return [];
    return [
      toAgent(a.queueUrl, { v: 1, type: 'KILL', frameworkId, taskId: t.taskId }, `${dedupBase}.${t.taskId}`),
    ];
  });
  type Removal = 'unknown' | 'already-removed' | { items: OutboxItem[]; rest: OutboxItem[] };
  const outcome = await updateFramework<Removal>(deps.store, frameworkId, async (f) => {
    if (!f) return { result: 'unknown' as const };
    if (f.status === 'TORN_DOWN') return { result: 'already-removed' as const };
    const { ops, items } = outboxWrites(`remove.${frameworkId}`, kills, deps.clock.now());
    // Its id no longer counts against its identity's cap (lib/control/id-quota.ts).
    const released = await releaseId(deps.store, 'framework', f.principal);
    // A transaction holds at most 100 items: the framework, the id count and 98 outbox items
    // (9,800 KILLs). Beyond that the rest is sent directly after the write; a crash then leaves
    // them to the agents' re-registration (which kills tasks of removed frameworks) and to
    // TEARDOWN's retry.
    return {
      set: { status: 'TORN_DOWN', filters: {}, removedReason: reason, disconnectedAt: null },
      also: [...(released ? [released] : []), ...ops.slice(0, 98)],
      result: { items: items.slice(0, 98), rest: items.slice(98) },
    };
  });
  forgetRoute('framework', frameworkId);
  if (outcome === 'unknown') return outcome;
  if (outcome === 'already-removed') await sendAll(deps, kills);
  else {
    await sendAll(
      deps,
      outcome.rest.flatMap((i) => i.messages),
    );
    await flushOutbox(deps, outcome.items);
    deps.log.info('framework removed', { frameworkId, reason, tasksKilled: kills.length });
    deps.metrics.count('FrameworksRemoved', { reason });
  }
  // Its offers' agents have resources again; its tasks' resources come back as they end, each
  // end nudging its own shard (lib/control/agent/status-update.ts).
  const taken = await takeBackOffers(deps, frameworkId);
  if (taken.count > 0)
    await nudgeAllocator(
      deps,
      `framework ${frameworkId} removed (${reason})`,
      shardsOf(deps, taken.agentIds),
    );
  return outcome === 'already-removed' ? outcome : 'removed';
}

/**
 * Takes back every outstanding offer of a framework (removes them from their agents), telling the
 * framework at `notifyQueueUrl` if given. Returns how many it took.
 */
export async function reclaimOffers(
  deps: ControlDeps,
  frameworkId: string,
  notifyQueueUrl?: string,
): Promise<number> {
  return (await takeBackOffers(deps, frameworkId, notifyQueueUrl)).count;
}

/** {@link reclaimOffers}, with the agents the offers were on (whose shards have resources again). */
async function takeBackOffers(
  deps: ControlDeps,
  frameworkId: string,
  notifyQueueUrl?: string,
): Promise<{ count: number; agentIds: string[] }> {
  const agents = await deps.store.scan<AgentRecord & Item>('agents');
  const taken: string[] = [];
  const agentIds: string[] = [];
  for (const a of agents) {
    if (!Object.values(a.offers).some((o) => o.frameworkId === frameworkId)) continue;
    const ids = (await takeAgentOffers(deps.store, a.agentId, (o) => o.frameworkId === frameworkId)).map(
      (o) => o.offerId,
    );
    taken.push(...ids);
    if (ids.length > 0) agentIds.push(a.agentId);
  }
  if (notifyQueueUrl && taken.length > 0) {
    await sendToFramework(
      deps,
      notifyQueueUrl,
      taken.map((offerId) => ({ event: { v: 1, type: 'RESCIND', offerId }, dedupId: `rescind.${offerId}` })),
    );
  }
  if (taken.length > 0) deps.metrics.count('OffersRescinded', {}, taken.length);
  return { count: taken.length, agentIds };
}

/**
 * After a SUBSCRIBE of a framework Meso already knew (failover, or the SDK's retry): its old
 * offers are rescinded when asked (SUBSCRIBE asks only when the stored queue differs from the
 * one derived from its id; new ones follow from the cycle the SUBSCRIBE nudges), and the
 * latest status of each of its tasks that has not ended is sent to its (new) queue — with the
 * agent's uuid, so that acknowledging it lets the agent's next update through. Terminal updates
 * from agents since `since` (when it disconnected: they were applied but never forwarded; for a
 * failover while connected, the agents' longest retry interval, 10 minutes) are sent too, so the
 * new process need not wait for the agents' next retry; a copy of one already acknowledged is
 * harmless (updates are at-least-once, and the agent ignores an acknowledgement it does not wait
 * for). Derived from the state, so a redelivered SUBSCRIBE sends the same messages under the same
 * deduplication ids.
 */
export async function resendState(
  deps: ControlDeps,
  f: Pick<FrameworkRecord, 'frameworkId' | 'queueUrl'>,
  dedupBase: string,
  since: number,
  opts: { rescindOffers: boolean },
): Promise<{ offers: number; statuses: number }> {
  const offers = opts.rescindOffers ? await reclaimOffers(deps, f.frameworkId, f.queueUrl) : 0;
  // By the stream's state: a task whose latest state is terminal may still owe its framework updates.
  const tasks = (
    await deps.store.query<TaskRecord & Item>('tasks', { name: 'frameworkId', value: f.frameworkId })
  ).filter((t) => !isTerminal(updateStateOf(t)) || (t.status.uuid !== undefined && t.updatedAt >= since));
  await sendAll(
    deps,
    tasks.map((t) =>
      toFramework(f.queueUrl, { v: 1, type: 'UPDATE', status: t.status }, `${dedupBase}.${t.taskId}`),
    ),
  );
  await followUpReordered(
    deps,
    tasks.map((t) => ({
      queueUrl: f.queueUrl,
      frameworkId: t.frameworkId,
      taskId: t.taskId,
      version: t.version,
    })),
    { sentNow: true },
  );
  return { offers, statuses: tasks.length };
}
