/**
 * The registry's half for frameworks: every call on the `scheduler-calls` queue. Each call is
 * parsed, authorized against the identity that subscribed the framework, decided, persisted with
 * conditional writes and only then turned into messages; a redelivered call finds its effect
 * already persisted and re-sends the same messages (same dedup ids), so it changes nothing.
 */
import { type AcceptOperation, applyReservations, validateAccept } from '../core/accept.ts';
import type { AgentRecord, FilterRecord, FrameworkRecord, OfferRecord, TaskRecord } from '../core/model.ts';
import { add, EMPTY, fromWire, isEmpty, type Resources, subtract } from '../core/resources.ts';
import { isTerminal } from '../core/task-state.ts';
import { ConditionFailedError, type Item, type WriteOp } from '../ports/store.ts';
import {
  type CallOf,
  parseMessage,
  type SchedulerCall,
  SchedulerCallSchema,
  type SchedulerEvent,
  type TaskInfo,
  type TaskReason,
  type TaskState,
  type TaskStatus,
} from '../protocol/index.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { nudgeAllocator, sendToAgent, sendToFramework, startTimers } from './emit.ts';
import { removeFramework, resendState, touchFramework } from './failover.ts';
import { followUpReordered } from './order.ts';
import { flushOutbox, type OutboxItem, type OutboxMessage, outboxWrites, toFramework } from './outbox.ts';
import {
  agentOfOffer,
  agentRoute,
  forgetRoute,
  frameworkRoute,
  getAgent,
  getFramework,
  getTask,
  withRetry,
} from './records.ts';
import { ownQueueProblem, type Rejection, reject } from './reject.ts';
import { masterStatus, reconciledStatus, type SentUpdate, unknownTaskStatus } from './statuses.ts';

const CALL_TYPES = [
  'SUBSCRIBE',
  'TEARDOWN',
  'ACCEPT',
  'DECLINE',
  'REVIVE',
  'KILL',
  'ACKNOWLEDGE',
  'RECONCILE',
  'HEARTBEAT',
  'SUPPRESS',
] as const;
const isConflict = (e: unknown) => e instanceof ConditionFailedError;
/** The longest interval between an agent's resends of a status update (Mesos: 10 minutes). */
const MAX_STATUS_RETRY_MS = 10 * 60_000;

export async function handleSchedulerCall(deps: ControlDeps, record: InboundRecord): Promise<void> {
  const parsed = parseMessage(SchedulerCallSchema, record.body, CALL_TYPES);
  if (!parsed.ok) {
    const raw = (parsed.raw ?? {}) as Record<string, unknown>;
    const framework = raw.framework as Record<string, unknown> | undefined;
    const fwId =
      typeof raw.frameworkId === 'string' ? raw.frameworkId : (framework?.frameworkId as string | undefined);
    const replyTo = await replyTarget(
      deps,
      record,
      fwId,
      typeof framework?.queueUrl === 'string' ? framework.queueUrl : undefined,
    );
    return reject(deps, 'scheduler-calls', record, {
      code: parsed.code,
      message: parsed.error,
      call: typeof raw.type === 'string' ? raw.type : undefined,
      replyTo,
    });
  }
  const call = parsed.message;
  if (call.type === 'SUBSCRIBE') return subscribe(deps, record, call);
  if (call.type === 'ACKNOWLEDGE') return acknowledge(deps, record, call);

  const fw = await getFramework(deps.store, call.frameworkId);
  const denied = authorize(fw, record, call);
  if (denied) return reject(deps, 'scheduler-calls', record, denied);
  const framework = fw!;
  // A framework Meso considers gone must SUBSCRIBE again (lib/control/failover.ts).
  if (framework.status === 'DISCONNECTED' && call.type !== 'TEARDOWN')
    return disconnectedCall(deps, record, framework, call);
  await touchFramework(deps, framework);
  if (call.type === 'HEARTBEAT') return;
  switch (call.type) {
    case 'TEARDOWN':
      return teardown(deps, record, framework);
    case 'ACCEPT':
      return accept(deps, record, framework, call);
    case 'DECLINE':
      return decline(deps, framework, call);
    case 'REVIVE':
      return revive(deps, framework, call);
    case 'SUPPRESS':
      return suppress(deps, framework, call);
    case 'KILL':
      return kill(deps, record, framework, call);
    case 'RECONCILE':
      return reconcile(deps, record, framework, call);
  }
}

/** Where an ERROR about this record can go: the framework's queue, if the sender owns it. */
async function replyTarget(
  deps: ControlDeps,
  record: InboundRecord,
  frameworkId: string | undefined,
  subscribeQueueUrl: string | undefined,
): Promise<Rejection['replyTo']> {
  const fw = frameworkId ? await getFramework(deps.store, frameworkId).catch(() => undefined) : undefined;
  if (fw && fw.principal === record.senderId) return { kind: 'framework', queueUrl: fw.queueUrl };
  if (!fw && subscribeQueueUrl) return { kind: 'framework', queueUrl: subscribeQueueUrl };
  return undefined;
}

function authorize(
  fw: FrameworkRecord | undefined,
  record: InboundRecord,
  call: SchedulerCall,
): Rejection | undefined {
  if (!fw)
    return {
      code: 'UNKNOWN_FRAMEWORK',
      message: `framework ${callFrameworkId(call)} is not subscribed`,
      call: call.type,
    };
  if (fw.principal !== record.senderId) {
    // The caller is not the framework's owner: tell nobody but the operator (logs, counters).
    return {
      code: 'FORBIDDEN',
      message: `framework ${fw.frameworkId} belongs to another identity; ${call.type} from ${record.senderId} rejected`,
      call: call.type,
    };
  }
  // A TEARDOWN delivered again goes through: it re-sends the kills the first one may not have.
  if (fw.status === 'TORN_DOWN' && call.type !== 'TEARDOWN') {
    return {
      code: 'FRAMEWORK_TORN_DOWN',
      message: `framework ${fw.frameworkId} was torn down`,
      call: call.type,
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    };
  }
  return undefined;
}

const callFrameworkId = (call: SchedulerCall): string =>
  call.type === 'SUBSCRIBE' ? call.framework.frameworkId : call.frameworkId;

async function subscribe(deps: ControlDeps, record: InboundRecord, call: CallOf<'SUBSCRIBE'>): Promise<void> {
  const info = call.framework;
  const badQueue = ownQueueProblem(deps.config.prefix, 'framework', info.queueUrl);
  if (badQueue)
    return reject(deps, 'scheduler-calls', record, { code: 'INVALID', message: badQueue, call: 'SUBSCRIBE' });
  const replyTo = { kind: 'framework' as const, queueUrl: info.queueUrl };
  // A framework Meso knew (failover, or a SUBSCRIBE sent again): what the old process must hear.
  let failover: { items: OutboxItem[]; since: number; newQueue: boolean } | undefined;
  const outcome = await withRetry(async (): Promise<Rejection | FrameworkRecord> => {
    const existing = await getFramework(deps.store, info.frameworkId);
    if (existing && existing.principal !== record.senderId) {
      return {
        code: 'FORBIDDEN',
        message: `framework id ${info.frameworkId} belongs to another identity`,
        call: 'SUBSCRIBE',
        replyTo,
      };
    }
    if (existing?.status === 'TORN_DOWN') {
      return {
        code: 'FRAMEWORK_TORN_DOWN',
        message: `framework ${info.frameworkId} was torn down; subscribe with a new id`,
        call: 'SUBSCRIBE',
        replyTo,
      };
    }
    const now = deps.clock.now();
    const next: FrameworkRecord = {
      frameworkId: info.frameworkId,
      principal: record.senderId,
      name: info.name,
      ...(info.user ? { user: info.user } : {}),
      roles: info.roles,
      ...(info.offerFilters ? { minAllocatable: minAllocatableOf(info.offerFilters) } : {}),
      queueUrl: info.queueUrl,
      status: 'ACTIVE',
      failoverTimeoutSeconds: info.failoverTimeoutSeconds,
      partitionAware: info.partitionAware,
      filters: existing?.filters ?? {},
      subscribedAt: now,
      lastSeenAt: now,
      disconnectedAt: null,
      version: existing?.version ?? 0,
    };
    // Mesos tells the old scheduler "Framework failed over"; its queue gets the ERROR, in the
    // outbox with the change so it is sent even if this handler dies now.
    const oldQueue = existing && existing.queueUrl !== info.queueUrl;
    const outbox = outboxWrites(
      `failedover.${info.frameworkId}.${record.messageId}`,
      oldQueue
        ? [
            toFramework(
              existing.queueUrl,
              {
                v: 1,
                type: 'ERROR',
                code: 'FRAMEWORK_FAILED_OVER',
                message: 'Framework failed over',
                call: 'SUBSCRIBE',
              },
              `failedover.${record.messageId}`,
            ),
          ]
        : [],
      now,
    );
    await deps.store.write([
      {
        kind: 'put',
        table: 'frameworks',
        item: next as unknown as Item,
        expect: existing ? existing.version : 'absent',
      },
      ...outbox.ops,
    ]);
    failover = existing
      ? {
          items: outbox.items,
          since: existing.disconnectedAt ?? now - MAX_STATUS_RETRY_MS,
          newQueue: !!oldQueue,
        }
      : undefined;
    return next;
  }, isConflict);
  if ('code' in outcome) return reject(deps, 'scheduler-calls', record, outcome);
  forgetRoute('framework', info.frameworkId); // its queue may have changed (failover)
  await sendToFramework(deps, info.queueUrl, [
    {
      event: {
        v: 1,
        type: 'SUBSCRIBED',
        frameworkId: info.frameworkId,
        heartbeatIntervalSeconds: deps.config.frameworkHeartbeatSeconds,
      },
      dedupId: `subscribed.${record.messageId}`,
    },
  ]);
  deps.metrics.count('FrameworksSubscribed');
  if (failover) {
    // Its old offers are rescinded (new ones follow), its tasks' latest states sent again.
    await flushOutbox(deps, failover.items);
    const resent = await resendState(deps, outcome, `resubscribed.${record.messageId}`, failover.since, {
      rescindOffers: failover.newQueue,
    });
    deps.log.info('framework re-subscribed', { frameworkId: info.frameworkId, ...resent });
    deps.metrics.count('FrameworksResubscribed');
  }
  await nudgeAllocator(deps, `framework ${info.frameworkId} subscribed`);
}

async function accept(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'ACCEPT'>,
): Promise<void> {
  const tasks: TaskInfo[] = call.operations.flatMap((op) => (op.type === 'LAUNCH' ? op.tasks : []));
  const agentIds = new Set(call.offerIds.map(agentOfOffer));
  const now = () => deps.clock.now();
  const dropAll = async (message: string) => {
    await sendToFramework(
      deps,
      fw.queueUrl,
      tasks.map((t) => ({
        event: {
          v: 1,
          type: 'UPDATE',
          status: masterStatus(
            now(),
            fw.frameworkId,
            t.taskId,
            'TASK_DROPPED',
            'REASON_INVALID_OFFERS',
            message,
            t.agentId,
          ),
        },
        dedupId: `accept.${record.messageId}.${t.taskId}`,
      })),
    );
    deps.metrics.count('TasksRejected', { reason: 'REASON_INVALID_OFFERS' }, tasks.length);
  };
  if (agentIds.size !== 1 || agentIds.has(undefined)) {
    return dropAll('offers in one ACCEPT must all be valid offers on the same agent');
  }
  const agentId = [...agentIds][0]!;

  type Decision = {
    agent: AgentRecord;
    launch: TaskRecord[];
    rejected: AcceptRejection[];
    remaining: Resources;
    alreadyApplied: boolean;
    /** Rejections and dropped operations, in the outbox with the write when something was consumed. */
    notices: OutboxItem[];
  };
  let operationErrors: string[] = [];
  const decision = await withRetry(async (): Promise<Decision | string> => {
    const agent = await getAgent(deps.store, agentId);
    if (!agent) return `agent ${agentId} is unknown`;
    const offers = call.offerIds.map((id) => agent.offers[id]);
    const existing = await Promise.all(tasks.map((t) => getTask(deps.store, fw.frameworkId, t.taskId)));
    // A redelivered ACCEPT: its offers are gone and its tasks are persisted with one of them.
    const applied = existing.filter((t): t is TaskRecord & Item => !!t && call.offerIds.includes(t.offerId));
    if (offers.every((o) => !o) && applied.length > 0) {
      return { agent, launch: applied, rejected: [], remaining: EMPTY, alreadyApplied: true, notices: [] };
    }
    const result = validateAccept({
      frameworkId: fw.frameworkId,
      now: now(),
      offers: call.offerIds.map((id, i) => {
        const o = offers[i];
        return o ? { ...o, agentId } : { offerId: id, missing: 'unknown' as const };
      }),
      operations: acceptOperations(call),
      existingTaskIds: new Set(existing.filter((t) => !!t).map((t) => t!.taskId)),
      ...(agent.dynamicReservations ? { dynamicReservations: agent.dynamicReservations } : {}),
    });
    operationErrors = result.operationErrors;
    const infoById = new Map(tasks.map((t) => [t.taskId, t]));
    const consumed = result.consumedOfferIds;
    const t0 = now();
    const launch: TaskRecord[] = result.launched.map((l) => ({
      frameworkId: fw.frameworkId,
      taskId: l.taskId,
      agentId,
      offerId: consumed[0] ?? call.offerIds[0]!,
      role: result.role,
      info: infoById.get(l.taskId)!,
      resources: l.resources,
      state: 'TASK_STAGING',
      status: masterStatus(t0, fw.frameworkId, l.taskId, 'TASK_STAGING', undefined, 'launching', agentId),
      seenUuids: [],
      createdAt: t0,
      updatedAt: t0,
      version: 0,
    }));
    const rejected = result.rejected.map((r) => ({
      ...r,
      agentId: infoById.get(r.taskId)?.agentId ?? agentId,
    }));
    // What the framework must hear about what was not done goes in the outbox with the write: a
    // redelivered ACCEPT finds its offers consumed and cannot work the rejections out again.
    const notices =
      consumed.length > 0 ? acceptNotices(fw, record, t0, rejected, result.operationErrors) : undefined;
    let noticeItems: OutboxItem[] = [];
    if (consumed.length > 0) {
      // Spend the accepted offers: they leave the agent's offers, launched tasks join its tasks,
      // and whatever was not used becomes free again — one conditional write with the task rows.
      const offersLeft = { ...agent.offers };
      for (const id of consumed) delete offersLeft[id];
      const agentTasks = { ...agent.tasks };
      for (const t of launch)
        agentTasks[t.taskId] = { frameworkId: fw.frameworkId, role: result.role, resources: t.resources };
      // RESERVE / UNRESERVE change the agent's total (and its dynamic reservations) in the same write.
      const reservations =
        isEmpty(result.reserved) && isEmpty(result.unreserved)
          ? {}
          : {
              total: applyReservations(agent.total, result.reserved, result.unreserved),
              dynamicReservations: subtract(
                add(agent.dynamicReservations ?? EMPTY, result.reserved),
                result.unreserved,
              ),
            };
      const ops: WriteOp[] = [
        {
          kind: 'patch',
          table: 'agents',
          key: { agentId },
          set: { offers: offersLeft, tasks: agentTasks, ...reservations },
          expect: agent.version,
        },
        ...launch.map(
          (t): WriteOp => ({ kind: 'put', table: 'tasks', item: t as unknown as Item, expect: 'absent' }),
        ),
      ];
      if (notices && notices.length > 0) {
        const outbox = outboxWrites(`accept.${record.messageId}`, notices, t0);
        ops.push(...outbox.ops);
        noticeItems = outbox.items;
      }
      await deps.store.write(ops);
    }
    return {
      agent,
      launch,
      rejected,
      remaining: consumed.length > 0 ? result.remaining : EMPTY,
      alreadyApplied: false,
      notices: noticeItems,
    };
  }, isConflict);

  if (typeof decision === 'string') return dropAll(decision);
  if (operationErrors.length > 0 && decision.notices.length === 0) {
    // A RESERVE or UNRESERVE that was not allowed is dropped (the rest of the ACCEPT goes on).
    await sendToFramework(deps, fw.queueUrl, [
      { event: invalidOperations(operationErrors), dedupId: `accept-ops.${record.messageId}` },
    ]);
    deps.metrics.count('OperationsDropped', {}, operationErrors.length);
  }

  // Effects, re-sent identically on redelivery.
  await sendToAgent(
    deps,
    decision.agent.queueUrl,
    decision.launch
      .filter((t) => !decision.alreadyApplied || t.state === 'TASK_STAGING')
      .map((t) => ({
        command: { v: 1, type: 'LAUNCH', frameworkId: fw.frameworkId, task: t.info },
        dedupId: `launch.${fw.frameworkId}.${t.taskId}`,
      })),
  );
  if (decision.notices.length > 0) {
    await flushOutbox(deps, decision.notices);
    if (operationErrors.length > 0) deps.metrics.count('OperationsDropped', {}, operationErrors.length);
  } else {
    await sendToFramework(
      deps,
      fw.queueUrl,
      decision.rejected.map((r) => ({
        event: {
          v: 1,
          type: 'UPDATE',
          status: masterStatus(now(), fw.frameworkId, r.taskId, r.state, r.reason, r.message, r.agentId),
        },
        dedupId: `accept.${record.messageId}.${r.taskId}`,
      })),
    );
  }
  // A redelivered ACCEPT (its first attempt died after its write) still nudges: the resources it
  // gave back may not have been offered again yet. Its refusal filter is not set twice.
  if (decision.alreadyApplied) return nudgeAllocator(deps, `accept on ${agentId} (again)`);
  deps.metrics.count('TasksLaunched', {}, decision.launch.length);
  for (const r of decision.rejected) deps.metrics.count('TasksRejected', { reason: r.reason });
  if (!isEmpty(decision.remaining)) {
    await setFilter(deps, fw, agentId, decision.remaining, refuseSeconds(deps, call.filters?.refuseSeconds));
  }
  await nudgeAllocator(deps, `accept on ${agentId}`);
}

/** DECLINE's refuse_seconds: invalid values (negative, NaN, not a number) mean the default; capped. */
export function refuseSeconds(deps: Pick<ControlDeps, 'config'>, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    return deps.config.defaultRefuseSeconds;
  return Math.min(value, deps.config.maxRefuseSeconds);
}

async function setFilter(
  deps: ControlDeps,
  fw: FrameworkRecord,
  agentId: string,
  resources: Resources,
  seconds: number,
) {
  if (seconds <= 0) return;
  const now = deps.clock.now();
  const until = now + seconds * 1000;
  // Calls of one framework are serialized by its FIFO group, and only they change its filters,
  // so this write needs no version; expired filters are dropped on the way.
  const current = (await getFramework(deps.store, fw.frameworkId)) ?? fw;
  const filters: Record<string, FilterRecord> = {};
  for (const [a, f] of Object.entries(current.filters)) if (f.until > now) filters[a] = f;
  filters[agentId] = { until, resources };
  boundFilters(filters);
  await deps.store.write([
    {
      kind: 'patch',
      table: 'frameworks',
      key: { frameworkId: fw.frameworkId },
      set: { filters },
      expect: 'exists',
    },
  ]);
  if (seconds <= 900) {
    await startTimers(deps, [
      {
        message: { v: 1, type: 'FILTER_EXPIRED', frameworkId: fw.frameworkId, agentId },
        delaySeconds: seconds,
      },
    ]);
  }
}

async function decline(deps: ControlDeps, fw: FrameworkRecord, call: CallOf<'DECLINE'>): Promise<void> {
  const byAgent = new Map<string, string[]>();
  for (const id of call.offerIds) {
    const a = agentOfOffer(id);
    if (!a) continue;
    byAgent.set(a, [...(byAgent.get(a) ?? []), id]);
  }
  const seconds = refuseSeconds(deps, call.filters?.refuseSeconds);
  let released = 0;
  for (const [agentId, ids] of byAgent) {
    const declined = await withRetry(async () => {
      const agent = await getAgent(deps.store, agentId);
      if (!agent) return EMPTY;
      const mine = ids
        .map((id) => agent.offers[id])
        .filter((o): o is OfferRecord => !!o && o.frameworkId === fw.frameworkId);
      if (mine.length === 0) return EMPTY;
      const offersLeft = { ...agent.offers };
      for (const o of mine) delete offersLeft[o.offerId];
      await deps.store.write([
        {
          kind: 'patch',
          table: 'agents',
          key: { agentId },
          set: { offers: offersLeft },
          expect: agent.version,
        },
      ]);
      return mine.reduce((acc, o) => add(acc, o.resources), EMPTY);
    }, isConflict);
    if (isEmpty(declined)) continue;
    released++;
    await setFilter(deps, fw, agentId, declined, seconds);
  }
  if (released > 0) await nudgeAllocator(deps, `decline by ${fw.frameworkId}`);
}

/**
 * REVIVE: clears the framework's refusal filters and ends a SUPPRESS, for the roles named
 * (default: all its roles). Filters are per framework and agent, so they are all cleared.
 */
async function revive(deps: ControlDeps, fw: FrameworkRecord, call: CallOf<'REVIVE'>): Promise<void> {
  await withRetry(async () => {
    const cur = (await getFramework(deps.store, fw.frameworkId)) ?? fw;
    const roles = call.roles ?? cur.roles;
    const suppressedRoles = (cur.suppressedRoles ?? []).filter((r) => !roles.includes(r));
    await deps.store.write([
      {
        kind: 'patch',
        table: 'frameworks',
        key: { frameworkId: fw.frameworkId },
        set: { filters: {}, suppressedRoles },
        expect: cur.version,
      },
    ]);
  }, isConflict);
  await nudgeAllocator(deps, `revive by ${fw.frameworkId}`);
}

/**
 * KILL. A task Meso does not know (or that has ended) is answered as reconciliation answers it
 * (Mesos: "performing reconciliation"). A task on an UNREACHABLE agent is marked so that the agent
 * kills it when it comes back (Mesos's `killedTasks`); the KILL also waits in the agent's queue.
 */
async function kill(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'KILL'>,
): Promise<void> {
  const now = deps.clock.now();
  const task = await getTask(deps.store, fw.frameworkId, call.taskId);
  if (!task || isTerminal(task.state)) {
    const agentId = task?.agentId ?? call.agentId;
    const status = task
      ? reconciledStatus(now, task)
      : unknownTaskStatus(
          now,
          fw,
          call.taskId,
          agentId,
          agentId ? await getAgent(deps.store, agentId) : undefined,
        );
    return sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'UPDATE', status }, dedupId: `kill.${record.messageId}` },
    ]);
  }
  if (call.agentId && call.agentId !== task.agentId) {
    return reject(deps, 'scheduler-calls', record, {
      code: 'UNKNOWN_TASK',
      message: `task ${call.taskId} runs on agent ${task.agentId}, not ${call.agentId}`,
      call: 'KILL',
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    });
  }
  const agent = await getAgent(deps.store, task.agentId);
  if (!agent || agent.status === 'GONE') return;
  if (agent.status === 'UNREACHABLE' && !task.killRequested) {
    await withRetry(async () => {
      const t = await getTask(deps.store, fw.frameworkId, call.taskId);
      if (!t || isTerminal(t.state) || t.killRequested) return;
      await deps.store.write([
        {
          kind: 'patch',
          table: 'tasks',
          key: { frameworkId: t.frameworkId, taskId: t.taskId },
          set: { killRequested: true },
          expect: t.version,
        },
      ]);
    }, isConflict);
  }
  await sendToAgent(deps, agent.queueUrl, [
    {
      command: {
        v: 1,
        type: 'KILL',
        frameworkId: fw.frameworkId,
        taskId: task.taskId,
        ...(task.info.killGracePeriodSeconds !== undefined
          ? { gracePeriodSeconds: task.info.killGracePeriodSeconds }
          : {}),
      },
      dedupId: `kill.${record.messageId}`,
    },
  ]);
}

async function acknowledge(
  deps: ControlDeps,
  record: InboundRecord,
  call: CallOf<'ACKNOWLEDGE'>,
): Promise<void> {
  // The hottest call there is (one per status update), and it changes nothing in Meso: it is
  // forwarded to the agent, which matches it against the update it sent. So it is authorized
  // and routed from cached routes, with no reads of the task.
  const now = deps.clock.now();
  const fw = await frameworkRoute(deps.store, call.frameworkId, now);
  if (!fw || fw.principal !== record.senderId) {
    return reject(deps, 'scheduler-calls', record, {
      code: fw ? 'FORBIDDEN' : 'UNKNOWN_FRAMEWORK',
      message: fw
        ? `framework ${call.frameworkId} belongs to another identity; ACKNOWLEDGE from ${record.senderId} rejected`
        : `framework ${call.frameworkId} is not subscribed`,
      call: 'ACKNOWLEDGE',
    });
  }
  const agent = await agentRoute(deps.store, call.agentId, now);
  if (!agent) {
    return reject(deps, 'scheduler-calls', record, {
      code: 'UNKNOWN_AGENT',
      message: `agent ${call.agentId} is unknown`,
      call: 'ACKNOWLEDGE',
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    });
  }
  await sendToAgent(deps, agent.queueUrl, [
    {
      command: {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: fw.frameworkId,
        taskId: call.taskId,
        uuid: call.uuid,
      },
      dedupId: `ack.${call.uuid}`,
    },
  ]);
}

/**
 * RECONCILE, as Mesos answers it. Implicit (no tasks named): the latest state of every task of the
 * framework that has not ended, except those on unreachable agents (Mesos keeps them apart). Explicit:
 * for each task named, its latest state if Meso knows it (including a terminal one — Mesos forgets
 * tasks once their terminal update is acknowledged and would answer as for an unknown task; the
 * registry keeps them, so the answer is exact), else the unknown-task answer by what is known of the
 * agent named (lib/control/statuses.ts). Answers carry REASON_RECONCILIATION and no uuid.
 */
async function reconcile(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'RECONCILE'>,
): Promise<void> {
  const now = deps.clock.now();
  let statuses: TaskStatus[];
  // The rows answered from: a newer change may overtake an answer (lib/control/order.ts).
  const answered: SentUpdate[] = [];
  const from = (t: TaskRecord) => {
    answered.push({
      queueUrl: fw.queueUrl,
      frameworkId: t.frameworkId,
      taskId: t.taskId,
      version: t.version,
    });
    return reconciledStatus(now, t);
  };
  if (call.tasks.length === 0) {
    const all = await deps.store.query<TaskRecord & Item>('tasks', {
      name: 'frameworkId',
      value: fw.frameworkId,
    });
    statuses = all.filter((t) => !isTerminal(t.state) && t.state !== 'TASK_UNREACHABLE').map(from);
  } else {
    const agents = new Map<string, Promise<AgentRecord | undefined>>();
    const agent = (id: string) => {
      if (!agents.has(id)) agents.set(id, getAgent(deps.store, id));
      return agents.get(id)!;
    };
    statuses = await Promise.all(
      call.tasks.map(async ({ taskId, agentId }) => {
        const t = await getTask(deps.store, fw.frameworkId, taskId);
        if (t) return from(t);
        return unknownTaskStatus(now, fw, taskId, agentId, agentId ? await agent(agentId) : undefined);
      }),
    );
  }
  await sendToFramework(
    deps,
    fw.queueUrl,
    statuses.map((status) => ({
      event: { v: 1, type: 'UPDATE', status } satisfies SchedulerEvent,
      dedupId: `reconcile.${record.messageId}.${status.taskId}`,
    })),
  );
  await followUpReordered(deps, answered);
  deps.metrics.count(
    'TasksReconciled',
    { kind: call.tasks.length === 0 ? 'implicit' : 'explicit' },
    statuses.length,
  );
}

/** TEARDOWN: the framework is removed at once, its tasks killed (lib/control/failover.ts). */
async function teardown(deps: ControlDeps, record: InboundRecord, fw: FrameworkRecord): Promise<void> {
  const outcome = await removeFramework(deps, fw.frameworkId, 'teardown', `teardown.${record.messageId}`);
  if (outcome === 'removed') deps.metrics.count('FrameworksTornDown');
}

/**
 * A call from a DISCONNECTED framework: it is told to SUBSCRIBE again (the SDK does so on this
 * error). The tasks of an ACCEPT are answered TASK_DROPPED (partition-aware) or TASK_LOST, with
 * REASON_MASTER_DISCONNECTED, as Mesos's driver answers a launch while disconnected
 * (DisconnectedSchedulerLaunchLost / Dropped); its offers were taken back when it disconnected.
 */
async function disconnectedCall(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: SchedulerCall,
): Promise<void> {
  if (call.type === 'ACCEPT') {
    const now = deps.clock.now();
    const tasks = call.operations.flatMap((op) => (op.type === 'LAUNCH' ? op.tasks : []));
    await sendToFramework(
      deps,
      fw.queueUrl,
      tasks.map((t) => ({
        event: {
          v: 1,
          type: 'UPDATE',
          status: masterStatus(
            now,
            fw.frameworkId,
            t.taskId,
            fw.partitionAware ? 'TASK_DROPPED' : 'TASK_LOST',
            'REASON_MASTER_DISCONNECTED',
            'the framework is disconnected; SUBSCRIBE again',
            t.agentId,
          ),
        },
        dedupId: `accept.${record.messageId}.${t.taskId}`,
      })),
    );
  }
  return reject(deps, 'scheduler-calls', record, {
    code: 'FRAMEWORK_DISCONNECTED',
    message: `framework ${fw.frameworkId} is disconnected (silent for too long); SUBSCRIBE again`,
    call: call.type,
    replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
  });
}

/** The operations of an ACCEPT in the core's form (resources in thousandths). */
function acceptOperations(call: CallOf<'ACCEPT'>): AcceptOperation[] {
  return call.operations.map((op): AcceptOperation => {
    if (op.type === 'LAUNCH') {
      return {
        type: 'LAUNCH',
        tasks: op.tasks.map((t) => ({
          taskId: t.taskId,
          agentId: t.agentId,
          resources: fromWire(t.resources),
        })),
      };
    }
    return { type: op.type, resources: fromWire(op.resources) };
  });
}

/** FrameworkInfo.offerFilters → per-role minimum offers in the core's form. */
function minAllocatableOf(
  filters: NonNullable<CallOf<'SUBSCRIBE'>['framework']['offerFilters']>,
): Record<string, Resources[]> {
  return Object.fromEntries(
    Object.entries(filters).map(([role, f]) => [role, f.minAllocatableResources.map((w) => fromWire(w))]),
  );
}

/**
 * SUPPRESS: no offers to the framework in the roles named (default: all its roles) until REVIVE.
 * Outstanding offers stay (as in Mesos); the framework declines them if it wants none.
 */
async function suppress(deps: ControlDeps, fw: FrameworkRecord, call: CallOf<'SUPPRESS'>): Promise<void> {
  await withRetry(async () => {
    const cur = (await getFramework(deps.store, fw.frameworkId)) ?? fw;
    const roles = call.roles ?? cur.roles;
    const next = [
      ...new Set([...(cur.suppressedRoles ?? []), ...roles.filter((r) => cur.roles.includes(r))]),
    ].sort();
    await deps.store.write([
      {
        kind: 'patch',
        table: 'frameworks',
        key: { frameworkId: fw.frameworkId },
        set: { suppressedRoles: next },
        expect: cur.version,
      },
    ]);
  }, isConflict);
  deps.metrics.count('FrameworksSuppressed');
}

/**
 * Refusal filters live in the framework's record, which DynamoDB caps at 400 KB: past
 * MAX_FILTERS (≈ 150 bytes each) the filters ending soonest are dropped. A dropped filter only
 * means that agent is offered again sooner (and declined again): the safe direction. A framework
 * that wants nothing for long should SUPPRESS instead of declining every agent forever.
 */
export const MAX_FILTERS = 1_000;

function boundFilters(filters: Record<string, FilterRecord>): void {
  const keys = Object.keys(filters);
  if (keys.length <= MAX_FILTERS) return;
  keys.sort((a, b) => filters[a]!.until - filters[b]!.until);
  for (const k of keys.slice(0, keys.length - MAX_FILTERS)) delete filters[k];
}

/** A task of an ACCEPT that was not launched, and why. */
interface AcceptRejection {
  taskId: string;
  agentId: string;
  state: TaskState;
  reason: TaskReason;
  message: string;
}

/** The ERROR for the RESERVE / UNRESERVE operations of an ACCEPT that were dropped. */
const invalidOperations = (errors: readonly string[]): SchedulerEvent => ({
  v: 1,
  type: 'ERROR',
  code: 'INVALID_OPERATION',
  message: errors.join('; '),
  call: 'ACCEPT',
});

/** The UPDATEs for rejected tasks and the ERROR for dropped operations of an ACCEPT, as outbox messages. */
function acceptNotices(
  fw: FrameworkRecord,
  record: InboundRecord,
  now: number,
  rejected: readonly AcceptRejection[],
  operationErrors: readonly string[],
): OutboxMessage[] {
  const out: OutboxMessage[] = rejected.map((r) =>
    toFramework(
      fw.queueUrl,
      {
        v: 1,
        type: 'UPDATE',
        status: masterStatus(now, fw.frameworkId, r.taskId, r.state, r.reason, r.message, r.agentId),
      },
      `accept.${record.messageId}.${r.taskId}`,
    ),
  );
  if (operationErrors.length > 0) {
    out.push(toFramework(fw.queueUrl, invalidOperations(operationErrors), `accept-ops.${record.messageId}`));
  }
  return out;
}
