/**
 * The registry's half for agents: REGISTER, HEARTBEAT and STATUS_UPDATE on the `agent-calls`
 * queue. An agent id is bound to the identity that registered it. A status update is applied
 * once (its uuid is remembered on the task) and forwarded to the framework at least once; when
 * it is terminal, the task's resources leave the agent record in the same transaction.
 */
import type { AgentRecord, TaskRecord } from '../core/model.ts';
import { fromWire } from '../core/resources.ts';
import { canTransition, isTerminal } from '../core/task-state.ts';
import { ConditionFailedError, type Item, type WriteOp } from '../ports/store.ts';
import { type AgentCallOf, AgentCallSchema, parseMessage } from '../protocol/index.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { nudgeAllocator, sendToAgent, sendToFramework, shardOf } from './emit.ts';
import { getAgent, getFramework, getTask, withRetry } from './records.ts';
import { ownQueueProblem, type Rejection, reject } from './reject.ts';

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
  const agent = await getAgent(deps.store, call.agentId);
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
  const outcome = await withRetry(async (): Promise<Rejection | AgentRecord> => {
    const existing = await getAgent(deps.store, call.agentId);
    if (existing && existing.principal !== record.senderId) {
      return {
        code: 'FORBIDDEN',
        message: `agent id ${call.agentId} belongs to another identity`,
        call: 'REGISTER',
        replyTo,
      };
    }
    const now = deps.clock.now();
    const next: AgentRecord = {
      agentId: call.agentId,
      principal: record.senderId,
      hostname: call.hostname,
      queueUrl: call.queueUrl,
      total: fromWire(call.resources),
      attributes: call.attributes,
      status: 'ACTIVE',
      offers: existing?.offers ?? {},
      tasks: existing?.tasks ?? {},
      registeredAt: existing?.registeredAt ?? now,
      lastSeenAt: now,
      shard: shardOf(call.agentId, deps.config.shards),
      version: existing?.version ?? 0,
    };
    await deps.store.write([
      {
        kind: 'put',
        table: 'agents',
        item: next as unknown as Item,
        expect: existing ? existing.version : 'absent',
      },
    ]);
    return next;
  }, isConflict);
  if ('code' in outcome) return reject(deps, 'agent-calls', record, outcome);
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
  ]);
  deps.metrics.count('AgentsRegistered');
  await nudgeAllocator(deps, `agent ${call.agentId} registered`, [outcome.shard]);
}

async function statusUpdate(
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRecord,
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
  type Outcome = { kind: 'forward' | 'ack-only'; task?: TaskRecord; freed: boolean } | Rejection;
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
    if (task.seenUuids.includes(uuid)) return { kind: 'forward', task, freed: false }; // redelivered: re-send only
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
      const a = (await getAgent(deps.store, agent.agentId)) ?? agent;
      if (a.tasks[task.taskId]) {
        const tasksLeft = { ...a.tasks };
        delete tasksLeft[task.taskId];
        ops.push({
          kind: 'patch',
          table: 'agents',
          key: { agentId: a.agentId },
          set: { tasks: tasksLeft },
          expect: a.version,
        });
        freed = true;
      }
    }
    await deps.store.write(ops);
    return { kind: 'forward', task, freed };
  }, isConflict);

  if ('code' in outcome) return reject(deps, 'agent-calls', record, outcome);
  const fw = await getFramework(deps.store, status.frameworkId);
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
  } else {
    // The dedup id names the inbound message: a redelivery of it is dropped by SQS, while an
    // agent's resend (a new message) reaches the framework again, as at-least-once requires.
    await sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'UPDATE', status }, dedupId: `update.${uuid}.${record.messageId}` },
    ]);
  }
  if (outcome.kind === 'forward' && outcome.freed) {
    deps.metrics.count('TasksTerminal', { state: status.state });
    await nudgeAllocator(deps, `task ${status.taskId} ${status.state}`, [agent.shard]);
  }
}
