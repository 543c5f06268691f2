/**
 * The registry's half for agents: REGISTER, HEARTBEAT and STATUS_UPDATE on the `agent-calls`
 * queue. An agent id is bound to the identity that registered it. A status update is applied
 * once (its uuid is remembered on the task) and forwarded to the framework at least once; when
 * it is terminal, the task's resources leave the agent record in the same transaction.
 *
 * A REGISTER that lists the tasks the agent runs is reconciled with the registry
 * (lib/control/reregistration.ts): an UNREACHABLE agent's tasks come back RUNNING, tasks that must
 * not run are killed, and tasks the agent did not list are asked about. A GONE agent may not
 * register again. Status updates from an UNREACHABLE agent are applied and forwarded (Mesos drops
 * them and waits for the agent to re-register; the registry has every record, and dropping them
 * would lose them if the agent never comes back).
 */
import { registeredTotal } from '../core/accept.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import { fromWire } from '../core/resources.ts';
import { canTransition, isTerminal } from '../core/task-state.ts';
import { ConditionFailedError, type Item, type WriteOp } from '../ports/store.ts';
import { type AgentCallOf, AgentCallSchema, parseMessage } from '../protocol/index.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { nudgeAllocator, sendToAgent, sendToFramework, shardOf } from './emit.ts';
import { TASK_CHUNK } from './liveness.ts';
import { followUpReordered } from './order.ts';
import { flushOutbox, type OutboxMessage, outboxWrites, toFramework } from './outbox.ts';
import {
  type AgentRoute,
  agentRoute,
  forgetRoute,
  frameworkRoute,
  getAgent,
  getFramework,
  getTask,
  withRetry,
} from './records.ts';
import { ownQueueProblem, type Rejection, reject } from './reject.ts';
import { planReregistration, type ReportedTask, type ReregistrationPlan, taskKey } from './reregistration.ts';
import { masterStatus } from './statuses.ts';

const CALL_TYPES = ['REGISTER', 'HEARTBEAT', 'STATUS_UPDATE'] as const;
const isConflict = (e: unknown) => e instanceof ConditionFailedError;
const SEEN_UUIDS = 16;

export async function handleAgentCall(deps: ControlDeps, record: InboundRecord): Promise<void> {
  const parsed = parseMessage(AgentCallSchema, record.body, CALL_TYPES);
  if (!parsed.ok) {
    const raw = (parsed.raw ?? {}) as Record<string, unknown>;
    const agent =
      typeof raw.agentId === 'string'
        ? await getAgent(deps.store, raw.agentId).catch(() => undefined)
        : undefined;
    const replyTo: Rejection['replyTo'] =
      agent && agent.principal === record.senderId
        ? { kind: 'agent', queueUrl: agent.queueUrl }
        : !agent && raw.type === 'REGISTER' && typeof raw.queueUrl === 'string'
          ? { kind: 'agent', queueUrl: raw.queueUrl }
          : undefined;
    return reject(deps, 'agent-calls', record, {
      code: parsed.code,
      message: parsed.error,
      call: typeof raw.type === 'string' ? raw.type : undefined,
      replyTo,
    });
  }
  const call = parsed.message;
  if (call.type === 'REGISTER') return register(deps, record, call);
  // Authorization needs only who owns the agent and where its queue is: a cached route.
  const agent = await agentRoute(deps.store, call.agentId, deps.clock.now());
  if (!agent) {
    return reject(deps, 'agent-calls', record, {
      code: 'UNKNOWN_AGENT',
      message: `agent ${call.agentId} is not registered`,
      call: call.type,
    });
  }
  if (agent.principal !== record.senderId) {
    return reject(deps, 'agent-calls', record, {
      code: 'FORBIDDEN',
      message: `agent ${call.agentId} belongs to another identity; ${call.type} from ${record.senderId} rejected`,
      call: call.type,
    });
  }
  if (call.type === 'HEARTBEAT') {
    // Heartbeats touch only lastSeenAt and leave the version alone, so they never race with
    // resource changes.
    await deps.store.write([
      {
        kind: 'patch',
        table: 'agents',
        key: { agentId: agent.agentId },
        set: { lastSeenAt: deps.clock.now() },
        expect: 'exists',
      },
    ]);
    return;
  }
  return statusUpdate(deps, record, agent, call);
}

async function register(
  deps: ControlDeps,
  record: InboundRecord,
  call: AgentCallOf<'REGISTER'>,
): Promise<void> {
  const badQueue = ownQueueProblem(deps.config.prefix, 'agent', call.queueUrl);
  if (badQueue)
    return reject(deps, 'agent-calls', record, { code: 'INVALID', message: badQueue, call: 'REGISTER' });
  const replyTo = { kind: 'agent' as const, queueUrl: call.queueUrl };
  type Outcome = Rejection | { agent: AgentRecord; plan?: ReregistrationPlan; wasUnreachable: boolean };
  const outcome = await withRetry(async (): Promise<Outcome> => {
    const existing = await getAgent(deps.store, call.agentId);
    if (existing && existing.principal !== record.senderId) {
      return {
        code: 'FORBIDDEN',
        message: `agent id ${call.agentId} belongs to another identity`,
        call: 'REGISTER',
        replyTo,
      };
    }
    if (existing?.status === 'GONE') {
      return {
        code: 'AGENT_GONE',
        message: `agent ${call.agentId} was marked gone; it cannot register again (start it with a new agent id)`,
        call: 'REGISTER',
        replyTo,
      };
    }
    // An agent that says what it runs is reconciled with what the registry knows on it.
    const plan = call.tasks
      ? await planFor(deps, call.agentId, call.tasks, existing?.tasks ?? {})
      : undefined;
    const now = deps.clock.now();
    const next: AgentRecord = {
      ...existing,
      agentId: call.agentId,
      principal: record.senderId,
      hostname: call.hostname,
      queueUrl: call.queueUrl,
      // Dynamic reservations (RESERVE operations) survive a re-registration.
      ...registeredTotal(fromWire(call.resources), existing?.dynamicReservations),
      attributes: call.attributes,
      status: 'ACTIVE',
      // An UNREACHABLE agent's offers were rescinded; a registered one keeps its own.
      offers: existing?.status === 'ACTIVE' ? existing.offers : {},
      tasks: plan?.tasks ?? existing?.tasks ?? {},
      registeredAt: existing?.registeredAt ?? now,
      lastSeenAt: now,
      unreachableAt: null,
      pending: null,
      shard: shardOf(call.agentId, deps.config.shards),
      version: existing?.version ?? 0,
    };
    // The agent first: a transition to UNREACHABLE still under way sees it ACTIVE and stops.
    await deps.store.write([
      {
        kind: 'put',
        table: 'agents',
        item: next as unknown as Item,
        expect: existing ? existing.version : 'absent',
      },
    ]);
    return { agent: next, plan, wasUnreachable: existing?.status === 'UNREACHABLE' };
  }, isConflict);
  if ('code' in outcome) {
    if (outcome.code === 'AGENT_GONE') {
      // Mesos shuts a gone agent down; Meso tells it so and kills what it still runs.
      await sendToAgent(
        deps,
        call.queueUrl,
        (call.tasks ?? []).map((t) => ({
          command: { v: 1, type: 'KILL', frameworkId: t.frameworkId, taskId: t.taskId },
          dedupId: `gone.${record.messageId}.${t.taskId}`,
        })),
      );
    }
    return reject(deps, 'agent-calls', record, outcome);
  }
  forgetRoute('agent', call.agentId); // its queue may have changed
  const { plan } = outcome;
  if (plan) await reviveTasks(deps, call.agentId, plan.revive);
  await sendToAgent(deps, call.queueUrl, [
    {
      command: {
        v: 1,
        type: 'REGISTERED',
        agentId: call.agentId,
        heartbeatIntervalSeconds: deps.config.heartbeatIntervalSeconds,
      },
      dedupId: `registered.${record.messageId}`,
    },
    ...(plan?.kill ?? []).map((k) => ({
      command: { v: 1 as const, type: 'KILL' as const, frameworkId: k.frameworkId, taskId: k.taskId },
      dedupId: `reregistered.${record.messageId}.kill.${k.taskId}`,
    })),
    ...(plan && plan.reconcile.length > 0
      ? chunk(plan.reconcile, 1000).map((tasks, i) => ({
          command: { v: 1 as const, type: 'RECONCILE' as const, tasks },
          dedupId: `reregistered.${record.messageId}.reconcile.${i}`,
        }))
      : []),
  ]);
  if (plan && (plan.kill.length > 0 || plan.reconcile.length > 0 || plan.revive.length > 0)) {
    deps.log.info('agent re-registered and reconciled', {
      agentId: call.agentId,
      wasUnreachable: outcome.wasUnreachable,
      revived: plan.revive.length,
      killed: plan.kill.map((k) => `${k.taskId}: ${k.why}`),
      askedAbout: plan.reconcile.length,
    });
  }
  deps.metrics.count(outcome.wasUnreachable ? 'AgentsReregistered' : 'AgentsRegistered');
  await nudgeAllocator(deps, `agent ${call.agentId} registered`, [outcome.agent.shard]);
}

/** Reads what re-registration needs (task rows, frameworks) and plans it. */
async function planFor(
  deps: ControlDeps,
  agentId: string,
  reported: readonly ReportedTask[],
  known: AgentRecord['tasks'],
): Promise<ReregistrationPlan> {
  const wanted = new Map<string, { frameworkId: string; taskId: string }>();
  for (const r of reported) wanted.set(taskKey(r.frameworkId, r.taskId), r);
  for (const [taskId, t] of Object.entries(known))
    wanted.set(taskKey(t.frameworkId, taskId), { frameworkId: t.frameworkId, taskId });
  const rows = new Map<string, TaskRecord>();
  await Promise.all(
    [...wanted].map(async ([key, t]) => {
      const row = await getTask(deps.store, t.frameworkId, t.taskId);
      if (row) rows.set(key, row);
    }),
  );
  const frameworks = new Map<string, FrameworkRecord>();
  await Promise.all(
    [...new Set([...wanted.values()].map((t) => t.frameworkId))].map(async (id) => {
      const f = await getFramework(deps.store, id);
      if (f) frameworks.set(id, f);
    }),
  );
  return planReregistration({ agentId, reported, known, rows, frameworks });
}

/**
 * Moves tasks of a returning agent from TASK_UNREACHABLE to what the agent reports, each chunk
 * with its UPDATE events in the outbox (once a row is RUNNING again nothing would tell a retry
 * that its framework has not heard). A row that changed meanwhile is re-read and left if it is no
 * longer TASK_UNREACHABLE.
 */
async function reviveTasks(
  deps: ControlDeps,
  agentId: string,
  revive: ReregistrationPlan['revive'],
): Promise<void> {
  for (const part of chunk(revive, TASK_CHUNK)) {
    await withRetry(async () => {
      const now = deps.clock.now();
      const ops: WriteOp[] = [];
      const messages: OutboxMessage[] = [];
      // A chunk's tasks mostly share a few frameworks: each is read once per attempt.
      const frameworks = new Map<string, Promise<FrameworkRecord | undefined>>();
      for (const r of part) {
        const row = await getTask(deps.store, r.frameworkId, r.taskId);
        if (row?.state !== 'TASK_UNREACHABLE' || row.agentId !== agentId) continue;
        if (!frameworks.has(r.frameworkId))
          frameworks.set(r.frameworkId, getFramework(deps.store, r.frameworkId));
        const fw = await frameworks.get(r.frameworkId);
        const status = masterStatus(
          now,
          r.frameworkId,
          r.taskId,
          r.state,
          'REASON_AGENT_REREGISTERED',
          'its agent came back',
          agentId,
        );
        ops.push({
          kind: 'patch',
          table: 'tasks',
          key: { frameworkId: r.frameworkId, taskId: r.taskId },
          set: { state: r.state, status, updatedAt: now },
          expect: row.version,
        });
        if (fw?.status === 'ACTIVE')
          messages.push(
            toFramework(
              fw.queueUrl,
              { v: 1, type: 'UPDATE', status },
              `reregistered.${agentId}.${row.updatedAt}.${r.taskId}`,
              { frameworkId: r.frameworkId, taskId: r.taskId, version: row.version + 1 },
            ),
          );
      }
      if (ops.length === 0) return;
      const { ops: outbox, items } = outboxWrites(
        `reregistered.${agentId}.${now}.${part[0]!.taskId}`,
        messages,
        now,
      );
      await deps.store.write([...ops, ...outbox]);
      await flushOutbox(deps, items);
      deps.metrics.count('TasksReregistered', {}, ops.length);
    }, isConflict);
  }
}

function chunk<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

async function statusUpdate(
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRoute,
  call: AgentCallOf<'STATUS_UPDATE'>,
): Promise<void> {
  const status = { ...call.status, agentId: agent.agentId };
  const uuid = status.uuid;
  if (!uuid) {
    return reject(deps, 'agent-calls', record, {
      code: 'INVALID',
      message: 'a STATUS_UPDATE from an agent carries a uuid',
      call: 'STATUS_UPDATE',
      replyTo: { kind: 'agent', queueUrl: agent.queueUrl },
    });
  }
  type Outcome =
    | { kind: 'forward' | 'ack-only'; task?: TaskRecord; freed: boolean; again?: boolean }
    | Rejection;
  const outcome = await withRetry(async (): Promise<Outcome> => {
    const task = await getTask(deps.store, status.frameworkId, status.taskId);
    if (!task) {
      // Not a task Meso launched on this agent: acknowledge it so the agent stops resending, but
      // forward nothing — an agent must not be able to speak to frameworks about other tasks.
      deps.log.warn('status update for an unknown task; acknowledged, not forwarded', {
        taskId: status.taskId,
        agentId: agent.agentId,
      });
      deps.metrics.count('StatusUpdatesIgnored', { from: 'unknown', to: status.state });
      return { kind: 'ack-only', freed: false };
    }
    if (task.agentId !== agent.agentId) {
      return {
        code: 'FORBIDDEN',
        message: `task ${status.taskId} does not run on agent ${agent.agentId}`,
        call: 'STATUS_UPDATE',
        replyTo: { kind: 'agent', queueUrl: agent.queueUrl },
      };
    }
    if (task.seenUuids.includes(uuid)) return { kind: 'forward', task, freed: false, again: true }; // redelivered: re-send only
    if (!canTransition(task.state, status.state)) {
      deps.log.warn('status update out of order; acknowledged, not applied', {
        taskId: task.taskId,
        from: task.state,
        to: status.state,
      });
      deps.metrics.count('StatusUpdatesIgnored', { from: task.state, to: status.state });
      return { kind: 'ack-only', task, freed: false };
    }
    const now = deps.clock.now();
    const terminal = isTerminal(status.state);
    const ops: WriteOp[] = [
      {
        kind: 'patch',
        table: 'tasks',
        key: { frameworkId: task.frameworkId, taskId: task.taskId },
        set: {
          state: status.state,
          status,
          seenUuids: [...task.seenUuids, uuid].slice(-SEEN_UUIDS),
          updatedAt: now,
        },
        expect: task.version,
      },
    ];
    let freed = false;
    if (terminal) {
      // Freeing commutes with other frees: remove just this task's key, so many tasks of one
      // agent ending at once do not fight over the agent's version.
      const a = await getAgent(deps.store, agent.agentId);
      if (a?.tasks[task.taskId]) {
        ops.push({
          kind: 'removeKey',
          table: 'agents',
          key: { agentId: a.agentId },
          attribute: 'tasks',
          mapKey: task.taskId,
        });
        freed = true;
      }
    }
    await deps.store.write(ops);
    return { kind: 'forward', task, freed };
  }, isConflict);

  if ('code' in outcome) return reject(deps, 'agent-calls', record, outcome);
  const fw = await frameworkRoute(deps.store, status.frameworkId, deps.clock.now());
  const ack = () =>
    sendToAgent(deps, agent.queueUrl, [
      {
        command: { v: 1, type: 'ACKNOWLEDGE', frameworkId: status.frameworkId, taskId: status.taskId, uuid },
        dedupId: `ack.${uuid}`,
      },
    ]);
  if (outcome.kind === 'ack-only' || !fw || fw.status === 'TORN_DOWN') {
    // Nobody will acknowledge it: do so on the framework's behalf so the agent stops resending.
    await ack();
  } else if (fw.status === 'DISCONNECTED') {
    // Applied, not forwarded and not acknowledged (Mesos drops updates for a disconnected
    // framework): the agent keeps retrying it, and a re-subscription gets the latest state.
    deps.metrics.count('UpdatesHeldForDisconnected');
  } else {
    // The dedup id names the inbound message: a redelivery of it is dropped by SQS, while an
    // agent's resend (a new message) reaches the framework again, as at-least-once requires.
    await sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'UPDATE', status }, dedupId: `update.${uuid}.${record.messageId}` },
    ]);
    // A non-terminal state can be overtaken by a status Meso makes (UNREACHABLE) whose send
    // raced this one: if the row moved on, its current status follows (lib/control/order.ts).
    if (outcome.task && !outcome.again && !isTerminal(status.state)) {
      await followUpReordered(deps, [
        {
          queueUrl: fw.queueUrl,
          frameworkId: status.frameworkId,
          taskId: status.taskId,
          version: outcome.task.version + 1,
        },
      ]);
    }
  }
  // A redelivered terminal update nudges again: the first attempt may have died before its nudge.
  if (outcome.kind === 'forward' && (outcome.freed || (outcome.again && isTerminal(status.state)))) {
    deps.metrics.count('TasksTerminal', { state: status.state });
    await nudgeAllocator(deps, `task ${status.taskId} ${status.state}`, [agent.shard]);
  }
}
