/**
 * ACCEPT, read one way like an allocation cycle: read the agent its offers name and the task rows
 * it would create → decide in lib/core (`planAccept`: the agent's next ledger, the tasks, what is
 * refused, the refusal filter) → one conditional write of the agent, with the new task rows and
 * the framework's notices in its outbox → LAUNCH commands to the agent, the notices sent, the
 * filter written on the framework it already holds. (An ACCEPT that spends nothing writes
 * nothing; its notices are sent as they are, `sendNotices`.) A redelivered ACCEPT finds its offers spent
 * and its tasks persisted, and re-sends the same LAUNCH commands (same deduplication ids).
 */
import type { AcceptOperation } from '../../core/accept.ts';
import { type AcceptPlan, type AcceptRejection, planAccept } from '../../core/accept-plan.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../../core/model.ts';
import { agentOfOffer } from '../../core/offer-id.ts';
import { fromWire } from '../../core/resources.ts';
import { rowTaskInfo, taskInfoOf } from '../../core/task-row.ts';
import type { Item, WriteOp } from '../../ports/store.ts';
import type { CallOf, SchedulerEvent, TaskInfo } from '../../protocol/index.ts';
import { type AclAsk, aclRefusal, forbidden } from '../authorize.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator, sendToAgent, shardsOf } from '../emit.ts';
import { type Notices, noticesOf, type OutboxMessage, sendNotices, toFramework } from '../outbox.ts';
import { updateAgent } from '../records/agents.ts';
import { getTask } from '../records/tasks.ts';
import type { Change } from '../records/transact.ts';
import { reject } from '../reject.ts';
import { masterStatus } from '../statuses.ts';
import { refuseSeconds, setFilters } from './filters.ts';

type Accepted = { agentQueueUrl: string } & (
  | { kind: 'again'; tasks: readonly TaskRecord[] }
  | {
      kind: 'decided';
      plan: Extract<AcceptPlan, { kind: 'decided' }>;
      tasks: TaskRecord[];
      notices: Notices;
    }
);

/** What the ACCEPT asks, in the core's form. */
interface Asked {
  readonly infos: ReadonlyMap<string, TaskInfo>;
  readonly offerIds: readonly string[];
  readonly operations: readonly AcceptOperation[];
  readonly refuseSeconds: number;
}

export async function accept(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'ACCEPT'>,
): Promise<void> {
  const infos = new Map<string, TaskInfo>();
  for (const op of call.operations)
    if (op.type === 'LAUNCH') for (const t of op.tasks) infos.set(t.taskId, t);
  // ACLs first: an ACCEPT with one operation its principal may not make changes nothing.
  const refused = await aclRefusal(deps, record.senderId, aclAsks(fw, call));
  if (refused)
    return reject(
      deps,
      'scheduler-calls',
      record,
      forbidden(refused, 'ACCEPT', { kind: 'framework', queueUrl: fw.queueUrl }),
    );
  const agentIds = new Set(call.offerIds.map(agentOfOffer));
  const agentId = agentIds.size === 1 ? [...agentIds][0] : undefined;
  if (agentId === undefined) {
    const why = 'offers in one ACCEPT must all be valid offers on the same agent';
    return dropAll(deps, record, fw, infos, why);
  }
  const asked: Asked = {
    infos,
    offerIds: call.offerIds,
    operations: acceptOperations(call),
    refuseSeconds: refuseSeconds(deps, call.filters?.refuseSeconds),
  };
  // Read, decide, one conditional write of the agent with the task rows and the notices.
  let attempt = 0;
  const outcome = await updateAgent(deps.store, agentId, (agent) =>
    agent ? acceptance(deps, record, fw, asked, agent, attempt++ === 0) : { result: undefined },
  );
  if (!outcome) return dropAll(deps, record, fw, infos, `agent ${agentId} is unknown`);

  // Effects, re-sent identically on redelivery.
  await sendToAgent(
    deps,
    outcome.agentQueueUrl,
    outcome.tasks
      .filter((t) => outcome.kind === 'decided' || t.state === 'TASK_STAGING')
      .map((t) => ({
        command: { v: 1, type: 'LAUNCH', frameworkId: fw.frameworkId, task: taskInfoOf(t) },
        dedupId: `launch.${fw.frameworkId}.${t.taskId}`,
      })),
  );
  // A redelivered ACCEPT (its first attempt died after its write) still nudges: the resources it
  // gave back may not have been offered again yet. Its refusal filter is not set twice.
  const shards = shardsOf(deps, [agentId]);
  if (outcome.kind === 'again') return nudgeAllocator(deps, `accept on ${agentId} (again)`, shards);
  const { plan } = outcome;
  await sendNotices(deps, outcome.notices);
  deps.metrics.count('TasksLaunched', {}, outcome.tasks.length);
  for (const r of plan.rejected) deps.metrics.count('TasksRejected', { reason: r.reason });
  if (plan.operationErrors.length > 0)
    deps.metrics.count('OperationsDropped', {}, plan.operationErrors.length);
  if (plan.filter) await setFilters(deps, fw, [plan.filter], plan.filter.seconds);
  await nudgeAllocator(deps, `accept on ${agentId}`, shards);
}

/** The change an ACCEPT makes on the agent its offers name, with the rows it reads besides. */
async function acceptance(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  asked: Asked,
  agent: AgentRecord,
  first: boolean,
): Promise<Change<Accepted>> {
  const { frameworkId } = fw;
  const { agentId } = agent;
  // The task rows are read to tell a redelivered ACCEPT (its offers spent, its rows written) and
  // task ids already in use. While one of its offers is still on the agent it cannot have been
  // applied, so the first attempt decides without them: the new rows are written only if absent,
  // and an id in use fails that condition, after which the retry reads the rows and refuses it.
  const unread = first && asked.offerIds.some((id) => agent.offers[id] !== undefined);
  const existing = unread
    ? [...asked.infos.keys()].map(() => undefined)
    : await Promise.all([...asked.infos.keys()].map((id) => getTask(deps.store, frameworkId, id)));
  const now = deps.clock.now();
  const plan = planAccept({ frameworkId, agent, existing, now, ...asked });
  if (plan.kind === 'again')
    return { result: { kind: 'again', tasks: plan.tasks, agentQueueUrl: agent.queueUrl } };
  const tasks = plan.launched.map(
    (l): TaskRecord => ({
      frameworkId,
      taskId: l.taskId,
      agentId,
      offerId: plan.offerId,
      role: plan.role,
      info: rowTaskInfo(asked.infos.get(l.taskId)!),
      resources: l.resources,
      state: 'TASK_STAGING',
      status: masterStatus(now, frameworkId, l.taskId, 'TASK_STAGING', undefined, 'launching', agentId),
      seenUuids: [],
      createdAt: now,
      updatedAt: now,
      version: 0,
    }),
  );
  // What the framework must hear about what was not done goes in the outbox with the write: a
  // redelivered ACCEPT finds its offers consumed and cannot work the refusals out again.
  const { ops, notices } = noticesOf(
    `accept.${record.messageId}`,
    noticeMessages(fw, record, now, plan),
    now,
    plan.ledger !== undefined,
  );
  const rows = tasks.map(
    (t): WriteOp => ({ kind: 'put', table: 'tasks', item: t as unknown as Item, expect: 'absent' }),
  );
  return {
    ...(plan.ledger ? { set: plan.ledger as unknown as Item } : {}),
    also: [...rows, ...ops],
    result: { kind: 'decided', plan, tasks, notices, agentQueueUrl: agent.queueUrl },
  };
}

/** The UPDATEs for refused tasks and the ERROR for dropped operations, as outbox messages. */
function noticeMessages(
  fw: FrameworkRecord,
  record: InboundRecord,
  now: number,
  plan: { readonly rejected: readonly AcceptRejection[]; readonly operationErrors: readonly string[] },
): OutboxMessage[] {
  const out: OutboxMessage[] = plan.rejected.map((r) =>
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
  if (plan.operationErrors.length > 0) {
    const error: SchedulerEvent = {
      v: 1,
      type: 'ERROR',
      code: 'INVALID_OPERATION',
      message: plan.operationErrors.join('; '),
      call: 'ACCEPT',
    };
    out.push(toFramework(fw.queueUrl, error, `accept-ops.${record.messageId}`));
  }
  return out;
}

/** An ACCEPT whose offers name no single known agent: every task is TASK_DROPPED. */
async function dropAll(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  infos: ReadonlyMap<string, TaskInfo>,
  message: string,
): Promise<void> {
  const rejected: AcceptRejection[] = [...infos.values()].map((t) => ({
    taskId: t.taskId,
    agentId: t.agentId,
    state: 'TASK_DROPPED',
    reason: 'REASON_INVALID_OFFERS',
    message,
  }));
  const now = deps.clock.now();
  const messages = noticeMessages(fw, record, now, { rejected, operationErrors: [] });
  await sendNotices(deps, noticesOf(`accept.${record.messageId}`, messages, now, false).notices);
  deps.metrics.count('TasksRejected', { reason: 'REASON_INVALID_OFFERS' }, rejected.length);
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

/**
 * What an ACCEPT asks the ACLs: each role it reserves or unreserves in, and each user a task runs
 * as (its command's user, else its framework's; a task naming neither runs as the agent's default
 * task user, `nobody`).
 */
function aclAsks(fw: FrameworkRecord, call: CallOf<'ACCEPT'>): AclAsk[] {
  const asks = new Map<string, AclAsk>();
  const ask = (a: AclAsk) => asks.set(`${a.action}\u0000${a.object}`, a);
  for (const op of call.operations) {
    if (op.type === 'LAUNCH') {
      for (const t of op.tasks) ask({ action: 'run_tasks', object: t.command?.user ?? fw.user ?? 'nobody' });
      continue;
    }
    const action = op.type === 'RESERVE' ? 'reserve_resources' : 'unreserve_resources';
    for (const role of Object.keys(op.resources.reserved ?? {})) ask({ action, object: role });
  }
  return [...asks.values()];
}
