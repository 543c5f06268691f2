/**
 * REGISTER: binds an agent id to the identity that sends it, or — from that identity again — an
 * agent coming back. An agent that lists the tasks it runs is reconciled with the registry
 * (lib/control/reregistration.ts): an UNREACHABLE agent's tasks come back RUNNING, tasks that must
 * not run are killed, and tasks the agent did not list are asked about. A GONE agent may not
 * register again.
 */
import { registeredTotal } from '../../core/accept.ts';
import { ledgerEntries, ledgerKey } from '../../core/ledger.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../../core/model.ts';
import { fromWire } from '../../core/resources.ts';
import { masterChange } from '../../core/task-change.ts';
import type { Item, WriteOp } from '../../ports/store.ts';
import type { AgentCallOf, AgentCommand } from '../../protocol/index.ts';
import { aclRefusal, forbidden } from '../authorize.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator, sendToAgent, shardOf } from '../emit.ts';
import { claimId } from '../id-quota.ts';
import { identityProblem } from '../identity.ts';
import { TASK_CHUNK } from '../liveness.ts';
import { flushOutbox, type OutboxMessage, outboxWrites } from '../outbox.ts';
import { updateAgent } from '../records/agents.ts';
import { getFramework } from '../records/frameworks.ts';
import { forgetRoute } from '../records/routes.ts';
import { getTask, statusChange } from '../records/tasks.ts';
import { type Change, transact } from '../records/transact.ts';
import { ownQueueUrlProblem, type Rejection, reject } from '../reject.ts';
import {
  planReregistration,
  type ReportedTask,
  type ReregistrationPlan,
  taskKey,
} from '../reregistration.ts';
import { masterStatus } from '../statuses.ts';

type Registered = { agent: AgentRecord; plan?: ReregistrationPlan; wasUnreachable: boolean };

export async function register(
  deps: ControlDeps,
  record: InboundRecord,
  call: AgentCallOf<'REGISTER'>,
): Promise<void> {
  // Only the queue derived from the id: REGISTER of agent `evil` with a victim's queue would send
  // the victim the KILLs meant for `evil`'s task list.
  const badQueue = ownQueueUrlProblem(deps.config, 'agent', call.queueUrl, call.agentId);
  if (badQueue)
    return reject(deps, 'agent-calls', record, { code: 'INVALID', message: badQueue, call: 'REGISTER' });
  // Whether this principal may register this agent id (ACL register_agents), decided before any write.
  const refused = await aclRefusal(deps, record.senderId, [
    { action: 'register_agents', object: call.agentId },
  ]);
  const outcome = await updateAgent(deps.store, call.agentId, (existing) =>
    registration(deps, record, call, existing, refused),
  );
  if ('code' in outcome) {
    if (outcome.code === 'AGENT_GONE') {
      // Mesos shuts a gone agent down; Meso tells it so and kills what it still runs.
      await sendToAgent(
        deps,
        call.queueUrl,
        (call.tasks ?? []).map((t) => ({
          command: { v: 1, type: 'KILL', frameworkId: t.frameworkId, taskId: t.taskId },
          dedupId: `gone.${record.messageId}.${ledgerKey(t.frameworkId, t.taskId)}`,
        })),
      );
    }
    return reject(deps, 'agent-calls', record, outcome);
  }
  forgetRoute('agent', call.agentId); // its queue may have changed
  const { plan } = outcome;
  if (plan) await reviveTasks(deps, call.agentId, plan.revive);
  await sendToAgent(deps, call.queueUrl, registeredCommands(deps, record, call.agentId, plan));
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

/** The change REGISTER makes to the agent's record as read (undefined: a new agent). */
async function registration(
  deps: ControlDeps,
  record: InboundRecord,
  call: AgentCallOf<'REGISTER'>,
  existing: AgentRecord | undefined,
  refused: string | undefined,
): Promise<Change<Rejection | Registered>> {
  const replyTo = { kind: 'agent' as const, queueUrl: call.queueUrl };
  const denied = identityProblem('agent', call.agentId, existing, record, 'REGISTER', {
    claim: true,
    replyTo,
  });
  if (denied) return { result: denied };
  // After the identity check: the ERROR goes to the queue only of an id the sender may claim.
  if (refused) return { result: forbidden(refused, 'REGISTER', replyTo) };
  if (existing?.status === 'GONE') {
    const gone: Rejection = {
      code: 'AGENT_GONE',
      message: `agent ${call.agentId} was marked gone; it cannot register again (start it with a new agent id)`,
      call: 'REGISTER',
      replyTo,
    };
    return { result: gone };
  }
  // A new id counts against its identity's cap, in the same transaction that creates it.
  const claim = existing ? undefined : await claimId(deps.store, deps.config, 'agent', record.senderId);
  if (claim && 'problem' in claim)
    return { result: { code: 'TOO_MANY_IDS', message: claim.problem, call: 'REGISTER', replyTo } };
  // An agent that says what it runs is reconciled with what the registry knows on it.
  const plan = call.tasks ? await planFor(deps, call.agentId, call.tasks, existing?.tasks ?? {}) : undefined;
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
  const registered: Registered = {
    agent: next,
    ...(plan ? { plan } : {}),
    wasUnreachable: existing?.status === 'UNREACHABLE',
  };
  return { put: next as unknown as Item, ...(claim ? { also: [claim.write] } : {}), result: registered };
}

/** REGISTERED, then a KILL for each task that must not run and RECONCILEs for those to ask about. */
function registeredCommands(
  deps: ControlDeps,
  record: InboundRecord,
  agentId: string,
  plan: ReregistrationPlan | undefined,
): { command: AgentCommand; dedupId: string }[] {
  return [
    {
      command: {
        v: 1,
        type: 'REGISTERED',
        agentId,
        heartbeatIntervalSeconds: deps.config.heartbeatIntervalSeconds,
      },
      dedupId: `registered.${record.messageId}`,
    },
    ...(plan?.kill ?? []).map((k) => ({
      command: { v: 1 as const, type: 'KILL' as const, frameworkId: k.frameworkId, taskId: k.taskId },
      dedupId: `reregistered.${record.messageId}.kill.${ledgerKey(k.frameworkId, k.taskId)}`,
    })),
    ...(plan && plan.reconcile.length > 0
      ? chunk(plan.reconcile, 1000).map((tasks, i) => ({
          command: { v: 1 as const, type: 'RECONCILE' as const, tasks },
          dedupId: `reregistered.${record.messageId}.reconcile.${i}`,
        }))
      : []),
  ];
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
  for (const { frameworkId, taskId } of ledgerEntries(known))
    wanted.set(taskKey(frameworkId, taskId), { frameworkId, taskId });
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
    // A chunk's tasks mostly share a few frameworks: each is read once per attempt.
    const read = async () => {
      const frameworks = new Map<string, Promise<FrameworkRecord | undefined>>();
      return Promise.all(
        part.map(async (r) => {
          const row = await getTask(deps.store, r.frameworkId, r.taskId);
          if (row?.state !== 'TASK_UNREACHABLE' || row.agentId !== agentId) return undefined;
          if (!frameworks.has(r.frameworkId))
            frameworks.set(r.frameworkId, getFramework(deps.store, r.frameworkId));
          return { r, row, fw: await frameworks.get(r.frameworkId) };
        }),
      );
    };
    const items = await transact(deps.store, read, (found) => {
      const now = deps.clock.now();
      const writes: WriteOp[] = [];
      const messages: OutboxMessage[] = [];
      for (const f of found) {
        if (!f) continue;
        const { r, row, fw } = f;
        const status = masterStatus(
          now,
          r.frameworkId,
          r.taskId,
          r.state,
          'REASON_AGENT_REREGISTERED',
          'its agent came back',
          agentId,
        );
        const change = statusChange(
          row,
          masterChange(r.state, status, now),
          fw,
          `reregistered.${agentId}.${row.updatedAt}.${r.taskId}`,
          deps.config.taskRetentionSeconds,
        );
        writes.push(change.write);
        if (change.message) messages.push(change.message);
      }
      if (writes.length === 0) return { writes, result: undefined };
      const outbox = outboxWrites(`reregistered.${agentId}.${now}.${part[0]!.taskId}`, messages, now);
      return { writes: [...writes, ...outbox.ops], result: { items: outbox.items, count: writes.length } };
    });
    if (!items) continue;
    await flushOutbox(deps, items.items);
    deps.metrics.count('TasksReregistered', {}, items.count);
  }
}

function chunk<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
