/**
 * Agent liveness, as Mesos's master keeps it: an agent that misses `agentPingTimeouts` heartbeats
 * (5 × 15 s = 75 s) is UNREACHABLE; its offers are rescinded, every subscribed framework gets a
 * FAILURE event, and its tasks become TASK_UNREACHABLE (partition-aware frameworks) or TASK_LOST
 * (the rest). It keeps its tasks and their resources (it gets no offers) so that, if it comes back
 * and registers again, they are reconciled (lib/control/agent/register.ts). An agent UNREACHABLE for
 * `agentUnreachableTimeoutSeconds` (Mesos's registry GC age, two weeks) is GONE and its tasks
 * TASK_GONE; an operator can mark an agent GONE at once (TASK_GONE_BY_OPERATOR).
 *
 * How the deadline is watched — the cost argument. Each heartbeat already writes `lastSeenAt`. A
 * delayed SQS message per heartbeat (to check that agent 75 s later) would double an agent's
 * running cost (≈ 175,000 more SQS requests and Lambda records per agent-month). The minute sweep
 * alone is nearly free (one Scan of the agents table per minute for the whole cluster) but coarse:
 * an agent would be noticed between 75 s and 135 s after its last heartbeat. So the sweep reads
 * every agent's deadline and, for the few whose deadline falls before the next sweep — in a
 * healthy cluster only agents whose heartbeat is already late — starts one delayed AGENT_CHECK
 * timer for that exact deadline. A dead agent is therefore noticed within a second or two of its
 * 75 s, and healthy agents cost nothing beyond the Scan.
 *
 * Crash safety. Marking an agent unreachable writes the agent record with its RESCIND and FAILURE
 * messages in the outbox (one transaction), then updates its tasks in chunks, each chunk a
 * transaction of the task rows, their UPDATE events (outbox) and a version bump of the agent (so a
 * concurrent re-registration of the agent and this transition never interleave). The agent record
 * carries `pending` until the last chunk is written; if the handler dies, the next sweep finishes
 * the transition.
 */
import { ledgerEntries, ledgerKey } from '../core/ledger.ts';
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import { masterChange, updateStateOf } from '../core/task-change.ts';
import { isTerminal } from '../core/task-state.ts';
import { getEach, type Item, type WriteOp } from '../ports/store.ts';
import type { TaskReason, TaskState, TimerMessage } from '../protocol/index.ts';
import type { ControlConfig, ControlDeps } from './deps.ts';
import { startTimers } from './emit.ts';
import { releaseId } from './id-quota.ts';
import {
  flushOutbox,
  type OutboxItem,
  type OutboxMessage,
  outboxWrites,
  toAgent,
  toFramework,
} from './outbox.ts';
import { getAgent, updateAgent } from './records/agents.ts';
import { getFramework } from './records/frameworks.ts';
import { getTask, statusChange } from './records/tasks.ts';
import type { Change } from './records/transact.ts';
import { forFramework, masterStatus } from './statuses.ts';

/** Task rows per transaction when an agent's tasks change state (plus the agent and one outbox item). */
export const TASK_CHUNK = 40;

/** How long an agent may stay silent before it is UNREACHABLE: ping interval × allowed misses. */
export const pingTimeoutMs = (c: Pick<ControlConfig, 'heartbeatIntervalSeconds' | 'agentPingTimeouts'>) =>
  c.heartbeatIntervalSeconds * c.agentPingTimeouts * 1000;

export interface LivenessPlan {
  /** ACTIVE agents past their ping deadline. */
  readonly unreachable: string[];
  /** UNREACHABLE agents past the unreachable timeout. */
  readonly gone: string[];
  /** Agents with a transition whose tasks are not all updated (its handler died). */
  readonly unfinished: string[];
  /** Deadlines that fall before the next sweep: one AGENT_CHECK timer each. */
  readonly checks: { agentId: string; delaySeconds: number }[];
}

/**
 * What is due for each agent at `now` (pure): the sweep and the AGENT_CHECK timer both act on it.
 *
 * @example
 * const plan = planLiveness(await store.scan('agents'), clock.now(), config);
 * for (const id of plan.unreachable) await markUnreachable(deps, id);
 */
export function planLiveness(
  agents: readonly AgentRecord[],
  now: number,
  config: Pick<
    ControlConfig,
    | 'heartbeatIntervalSeconds'
    | 'agentPingTimeouts'
    | 'agentUnreachableTimeoutSeconds'
    | 'sweepIntervalSeconds'
  >,
): LivenessPlan {
  const plan: LivenessPlan = { unreachable: [], gone: [], unfinished: [], checks: [] };
  const horizon = now + config.sweepIntervalSeconds * 1000;
  const due = (agentId: string, deadline: number, list: string[]) => {
    if (now >= deadline) list.push(agentId);
    else if (deadline < horizon) {
      // SQS delays are whole seconds; round up so the deadline has passed when the timer fires.
      plan.checks.push({ agentId, delaySeconds: Math.min(900, Math.ceil((deadline - now) / 1000)) });
    }
  };
  for (const a of agents) {
    if (a.pending) plan.unfinished.push(a.agentId);
    if (a.status === 'ACTIVE') due(a.agentId, a.lastSeenAt + pingTimeoutMs(config), plan.unreachable);
    else if (a.status === 'UNREACHABLE' && typeof a.unreachableAt === 'number') {
      due(a.agentId, a.unreachableAt + config.agentUnreachableTimeoutSeconds * 1000, plan.gone);
    }
  }
  return plan;
}

export interface LivenessReport {
  readonly unreachable: number;
  readonly gone: number;
  readonly finished: number;
  readonly timers: number;
}

/** The sweep's part: acts on every agent's plan; one agent's failure does not stop the others. */
export async function checkAgents(deps: ControlDeps): Promise<LivenessReport> {
  const agents = await deps.store.scan<AgentRecord & Item>('agents');
  const plan = planLiveness(agents, deps.clock.now(), deps.config);
  const attempt = async (what: string, agentId: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      deps.log.error(`liveness: ${what} failed; the next sweep retries`, { agentId, error: String(e) });
    }
  };
  for (const id of plan.unfinished)
    await attempt('finishing a transition', id, () => finishTransition(deps, id));
  for (const id of plan.unreachable)
    await attempt('marking unreachable', id, () => markUnreachable(deps, id, 'missed heartbeats'));
  for (const id of plan.gone)
    await attempt('marking gone', id, () => markGone(deps, id, { byOperator: false }));
  await startTimers(
    deps,
    plan.checks.map((c) => ({
      message: { v: 1, type: 'AGENT_CHECK', agentId: c.agentId } satisfies TimerMessage,
      delaySeconds: c.delaySeconds,
    })),
  );
  return {
    unreachable: plan.unreachable.length,
    gone: plan.gone.length,
    finished: plan.unfinished.length,
    timers: plan.checks.length,
  };
}

/** The AGENT_CHECK timer: does what is due for one agent (nothing if it has been heard from). */
export async function checkAgent(deps: ControlDeps, agentId: string): Promise<void> {
  const a = await getAgent(deps.store, agentId);
  if (!a) return;
  const plan = planLiveness([a], deps.clock.now(), deps.config);
  if (plan.unfinished.length > 0) await finishTransition(deps, agentId);
  if (plan.unreachable.length > 0) await markUnreachable(deps, agentId, 'missed heartbeats');
  if (plan.gone.length > 0) await markGone(deps, agentId, { byOperator: false });
}

/**
 * ACTIVE → UNREACHABLE, if the agent is still silent past its deadline (`force` skips that check:
 * tests and operators). Returns whether this call made the transition.
 */
export async function markUnreachable(
  deps: ControlDeps,
  agentId: string,
  why: string,
  opts: { force?: boolean } = {},
): Promise<boolean> {
  const started = await updateAgent(deps.store, agentId, async (a) => {
    const now = deps.clock.now();
    if (a?.status !== 'ACTIVE') return { result: undefined };
    if (!opts.force && now - a.lastSeenAt < pingTimeoutMs(deps.config)) return { result: undefined };
    const messages: OutboxMessage[] = [
      ...(await agentLostMessages(deps, a, now)),
      // Waits in its queue: if the agent is only cut off, it re-registers as soon as it reads it.
      toAgent(
        a.queueUrl,
        {
          v: 1,
          type: 'REREGISTER',
          agentId,
          reason: `marked unreachable after ${now - a.lastSeenAt} ms of silence`,
        },
        `reregister.${agentId}.${now}`,
      ),
    ];
    const { ops, items } = outboxWrites(`unreachable.${agentId}.${now}`, messages, now);
    return {
      set: { status: 'UNREACHABLE', unreachableAt: now, offers: {}, pending: 'UNREACHABLE' },
      also: ops,
      result: { items, silentMs: now - a.lastSeenAt, tasks: Object.keys(a.tasks).length },
    };
  });
  if (!started) return false;
  deps.log.warn('agent marked unreachable', {
    agentId,
    why,
    silentMs: started.silentMs,
    tasks: started.tasks,
  });
  deps.metrics.count('AgentsUnreachable');
  await flushOutbox(deps, started.items);
  await finishTransition(deps, agentId);
  return true;
}

/**
 * → GONE: after the unreachable timeout, or by an operator (Mesos MARK_AGENT_GONE). Its tasks
 * become TASK_GONE (timeout) or TASK_GONE_BY_OPERATOR (operator) for partition-aware frameworks,
 * TASK_LOST for the rest, and leave the agent's accounting. An agent still ACTIVE is told to kill
 * its tasks (Mesos shuts it down); it may never register again. Returns what it found.
 */
export async function markGone(
  deps: ControlDeps,
  agentId: string,
  opts: { byOperator: boolean },
): Promise<'gone' | 'already-gone' | 'unknown'> {
  type Marked = 'unknown' | 'already-gone' | { items: OutboxItem[]; was: AgentRecord['status'] };
  const started = await updateAgent<Marked>(deps.store, agentId, async (a) => {
    if (!a) return { result: 'unknown' };
    if (a.status === 'GONE') return { result: 'already-gone' };
    const now = deps.clock.now();
    const messages: OutboxMessage[] = [];
    if (a.status === 'ACTIVE') {
      messages.push(...(await agentLostMessages(deps, a, now)));
      for (const { key, frameworkId, taskId } of ledgerEntries(a.tasks)) {
        messages.push(
          toAgent(a.queueUrl, { v: 1, type: 'KILL', frameworkId, taskId }, `gone.${agentId}.${key}`),
        );
      }
    }
    const { ops, items } = outboxWrites(`gone.${agentId}.${now}`, messages, now);
    // A gone id can never register again, so it no longer counts against its identity's cap
    // (lib/control/id-quota.ts): a node that is marked gone and reinstalled gets a new one.
    const release = await releaseId(deps.store, 'agent', a.principal);
    return {
      set: {
        status: 'GONE',
        goneAt: now,
        offers: {},
        pending: opts.byOperator ? 'GONE_BY_OPERATOR' : 'GONE',
      },
      also: release ? [...ops, release] : ops,
      result: { items, was: a.status },
    };
  });
  if (typeof started === 'string') return started;
  deps.log.warn('agent marked gone', { agentId, byOperator: opts.byOperator, was: started.was });
  deps.metrics.count('AgentsGone', { by: opts.byOperator ? 'operator' : 'timeout' });
  // Its tasks end as GONE before the agent hears the KILLs (in the outbox since the write above):
  // the TASK_KILLED a live agent would answer with then arrives after, and is acknowledged, not
  // applied — as Mesos, whose master ends a removed agent's tasks itself.
  await finishTransition(deps, agentId);
  await flushOutbox(deps, started.items);
  return 'gone';
}

type Transition = 'UNREACHABLE' | 'GONE' | 'GONE_BY_OPERATOR';

/**
 * Updates the tasks of an agent whose transition is `pending`, chunk by chunk, then clears
 * `pending`. Safe to run any number of times, concurrently with itself or with a re-registration:
 * every chunk is one change of the agent (conditional on its version, with the task rows and
 * their UPDATEs in the same transaction), and a task already moved (or moved by the agent's own
 * updates after the transition began) is left alone. Each task row is read once, unless a chunk
 * loses a race. Returns how many tasks it moved.
 */
export async function finishTransition(deps: ControlDeps, agentId: string): Promise<number> {
  const frameworks = new Map<string, FrameworkRecord | undefined>();
  const framework = async (id: string) => {
    if (!frameworks.has(id)) frameworks.set(id, await getFramework(deps.store, id));
    return frameworks.get(id);
  };
  // Tasks looked at by chunks already written: moved, or found not to need moving.
  const settled = new Set<string>();
  let moved = 0;
  for (;;) {
    const step = await updateAgent(deps.store, agentId, (a) =>
      transitionStep(deps, agentId, a, settled, framework),
    );
    if (!step) return moved;
    for (const id of step.looked) settled.add(id);
    await flushOutbox(deps, step.items);
    moved += step.marked.length;
    for (const state of step.marked) deps.metrics.count('TasksMarked', { state });
    if (step.marked.length === 0) return moved;
  }
}

/**
 * One chunk of a pending transition, decided on the agent as read: the next task rows to move
 * (skipping those `settled` by chunks already written), their status changes and UPDATEs; or,
 * when none is left, `pending` cleared.
 */
async function transitionStep(
  deps: ControlDeps,
  agentId: string,
  a: AgentRecord | undefined,
  settled: ReadonlySet<string>,
  framework: (id: string) => Promise<FrameworkRecord | undefined>,
): Promise<Change<{ looked: string[]; items: OutboxItem[]; marked: TaskState[] } | undefined>> {
  const kind = a?.pending as Transition | null | undefined;
  if (!a || !kind || a.status !== (kind === 'UNREACHABLE' ? 'UNREACHABLE' : 'GONE'))
    return { result: undefined };
  const at = (kind === 'UNREACHABLE' ? a.unreachableAt : a.goneAt) ?? 0;
  // Rows are read a chunk at a time, until a chunk has something to move or none are left.
  // Tasks by `ledgerKey`, which `settled` holds: task ids are unique only within a framework.
  const left = ledgerEntries(a.tasks).filter((t) => !settled.has(ledgerKey(t.frameworkId, t.taskId)));
  const looked: string[] = [];
  const moves = (r: (TaskRecord & Item) | undefined): r is TaskRecord & Item =>
    !!r &&
    r.agentId === agentId &&
    // By the update stream's state: a task that ended on the agent while its framework had not
    // acknowledged all its updates is still told (Mesos), and keeps its ended state.
    !isTerminal(updateStateOf(r)) &&
    // UNREACHABLE leaves tasks the agent updated after the transition began (it may be back).
    (kind !== 'UNREACHABLE' || (updateStateOf(r) !== 'TASK_UNREACHABLE' && r.updatedAt <= at));
  let todo: (TaskRecord & Item)[] = [];
  for (let i = 0; i < left.length && todo.length === 0; i += TASK_CHUNK) {
    const part = left.slice(i, i + TASK_CHUNK);
    looked.push(...part.map((t) => ledgerKey(t.frameworkId, t.taskId)));
    const rows = await Promise.all(part.map((t) => getTask(deps.store, t.frameworkId, t.taskId)));
    todo = rows.filter(moves);
  }
  if (todo.length === 0) {
    // Tasks whose latest state ended them have left the agent's map while their frameworks still
    // wait for updates: found through the tasks' agent index (once the map is done).
    // The index holds the rows' keys only (a status write then leaves it alone): the rows are read.
    const keys = (
      await deps.store.query<Pick<TaskRecord, 'frameworkId' | 'taskId'> & Item>(
        'tasks',
        { name: 'agentId', value: agentId },
        'byAgent',
      )
    )
      .filter((k) => !settled.has(ledgerKey(k.frameworkId, k.taskId)))
      .map(({ frameworkId, taskId }) => ({ frameworkId, taskId }));
    const ended = await getEach<TaskRecord & Item>(deps.store, 'tasks', keys);
    todo = ended
      .filter((r): r is TaskRecord & Item => !!r && isTerminal(r.state) && moves(r))
      .slice(0, TASK_CHUNK);
    looked.push(...todo.map((r) => ledgerKey(r.frameworkId, r.taskId)));
  }
  if (todo.length === 0) {
    // GONE: its tasks are over, so they leave its accounting.
    return {
      set: kind === 'UNREACHABLE' ? { pending: null } : { pending: null, tasks: {} },
      result: { looked, items: [], marked: [] },
    };
  }
  const now = deps.clock.now();
  const writes: WriteOp[] = [];
  const messages: OutboxMessage[] = [];
  const marked: TaskState[] = [];
  for (const row of todo) {
    const fw = await framework(row.frameworkId);
    const { state, reason, message } = transitionOf(kind, at, fw?.partitionAware ?? false);
    const status = {
      ...masterStatus(now, row.frameworkId, row.taskId, state.framework, reason, message, agentId),
      ...(kind === 'UNREACHABLE' ? { unreachableTime: at } : {}),
    };
    const change = statusChange(
      row,
      masterChange(state.row, status, now, row),
      fw,
      `${kind.toLowerCase()}.${agentId}.${at}.${row.taskId}`,
      deps.config.taskRetentionSeconds,
    );
    writes.push(change.write);
    if (change.message) messages.push(change.message);
    marked.push(state.framework);
  }
  const { ops, items } = outboxWrites(
    `${kind.toLowerCase()}.${agentId}.${at}.${ledgerKey(todo[0]!.frameworkId, todo[0]!.taskId)}`,
    messages,
    now,
  );
  // The agent's version guards the chunk: a re-registration in between makes it fail and retry.
  return { set: { pending: kind }, also: [...writes, ...ops], result: { looked, items, marked } };
}

function transitionOf(
  kind: Transition,
  at: number,
  partitionAware: boolean,
): { state: { row: TaskState; framework: TaskState }; reason: TaskReason; message: string } {
  if (kind === 'UNREACHABLE') {
    // The row stays TASK_UNREACHABLE for every framework, so the task can come back RUNNING;
    // frameworks that are not partition-aware are told TASK_LOST.
    return {
      state: { row: 'TASK_UNREACHABLE', framework: forFramework('TASK_UNREACHABLE', partitionAware) },
      reason: 'REASON_AGENT_REMOVED',
      message: `agent unreachable since ${new Date(at).toISOString()}`,
    };
  }
  const state = forFramework(kind === 'GONE' ? 'TASK_GONE' : 'TASK_GONE_BY_OPERATOR', partitionAware);
  return {
    state: { row: state, framework: state },
    reason: kind === 'GONE' ? 'REASON_AGENT_REMOVED' : 'REASON_AGENT_REMOVED_BY_OPERATOR',
    message:
      kind === 'GONE' ? 'agent is gone (unreachable too long)' : 'agent was marked gone by an operator',
  };
}

/**
 * What the subscribed (connected) frameworks hear when an agent is lost: a RESCIND for each of
 * its offers they hold, then a FAILURE event each.
 */
async function agentLostMessages(deps: ControlDeps, a: AgentRecord, now: number): Promise<OutboxMessage[]> {
  const frameworks = (await deps.store.scan<FrameworkRecord & Item>('frameworks')).filter(
    (f) => f.status === 'ACTIVE',
  );
  const byId = new Map(frameworks.map((f) => [f.frameworkId, f]));
  const rescinds = Object.values(a.offers).flatMap((o) => {
    const f = byId.get(o.frameworkId);
    return f
      ? [toFramework(f.queueUrl, { v: 1, type: 'RESCIND', offerId: o.offerId }, `rescind.${o.offerId}`)]
      : [];
  });
  return [
    ...rescinds,
    ...frameworks.map((f) =>
      toFramework(f.queueUrl, { v: 1, type: 'FAILURE', agentId: a.agentId }, `failure.${a.agentId}.${now}`),
    ),
  ];
}
