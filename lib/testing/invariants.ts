/**
 * The invariants a Meso cluster keeps whatever fails, as checks the integration tests and the
 * chaos run (bench/chaos-run.ts) share. Nothing in the product imports this folder.
 *
 * - While it runs: no agent is ever over-committed (checked after every write to an agent by
 *   {@link checkingStore}).
 * - Once it has settled: no task launched twice; every task terminal or running on a live agent;
 *   every status update an agent sent reached its framework; no acknowledged message lost; each
 *   framework's last word on a task is the registry's; no dead letters.
 *
 * The end-of-run checks are pure: they take what the agents and frameworks saw ({@link Observed})
 * and the registry's rows, and return an {@link Invariant} each.
 */
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import { add, contains, EMPTY, subtract } from '../core/resources.ts';
import { isTerminal } from '../core/task-state.ts';
import type { Item, Store, WriteOp } from '../ports/store.ts';
import type { TaskStatus } from '../protocol/index.ts';

export interface Invariant {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Tasks are keyed by framework and task id. */
export const taskKey = (frameworkId: string, taskId: string): string => `${frameworkId}\u0000${taskId}`;
const fromKey = (k: string) => k.split('\u0000') as [frameworkId: string, taskId: string];

// ---- while it runs ----

/** What is wrong with an agent record's accounting: offers and tasks beyond its total. */
export function accountingProblems(a: AgentRecord): string[] {
  try {
    let used = EMPTY;
    for (const o of Object.values(a.offers)) used = add(used, o.resources);
    for (const t of Object.values(a.tasks)) used = add(used, t.resources);
    const free = subtract(a.total, used); // throws when offers + tasks exceed the total
    const out: string[] = [];
    if (!contains(a.total, free)) out.push(`${a.agentId}: free exceeds total`);
    if (!contains(a.total, used)) out.push(`${a.agentId}: over-committed`);
    return out;
  } catch (e) {
    return [`${a.agentId}: ${(e as Error).message}`];
  }
}

/**
 * Wraps a store so that every write to an agent is followed by a check of that agent's
 * accounting (read back through `inner`); problems are pushed onto `violations`.
 */
export function checkingStore(inner: Store, violations: string[]): Store {
  return {
    get: (t, k) => inner.get(t, k),
    query: (t, pk, i, f) => inner.query(t, pk, i, f),
    scan: (t) => inner.scan(t),
    increment: (k, by) => inner.increment(k, by),
    async write(ops: readonly WriteOp[]) {
      await inner.write(ops);
      for (const op of ops) {
        if (op.table !== 'agents' || op.kind === 'delete') continue;
        const agentId = String(op.kind === 'put' ? op.item.agentId : op.key.agentId);
        const a = await inner.get<AgentRecord & Item>('agents', { agentId });
        if (a) violations.push(...accountingProblems(a));
      }
    },
  };
}

export function noOverCommit(violations: readonly string[]): Invariant {
  return {
    name: 'no agent over-committed at any point',
    ok: violations.length === 0,
    detail:
      violations.length === 0 ? `checked after every write to an agent` : violations.slice(0, 5).join('; '),
  };
}

// ---- once it has settled ----

/** What the agents and frameworks of a run saw. */
export interface Observed {
  /** Task key → the pids it was started with. */
  readonly pids: ReadonlyMap<string, ReadonlySet<number>>;
  /** Update uuid → the status an agent handed to SQS. */
  readonly sent: ReadonlyMap<string, TaskStatus>;
  /** Task key → the updates its framework got, in order. */
  readonly received: ReadonlyMap<string, readonly TaskStatus[]>;
  readonly receivedUuids: ReadonlySet<string>;
  /** Task keys in ACCEPTs the frameworks sent. */
  readonly accepted: ReadonlySet<string>;
  /** Task keys the frameworks asked to kill. */
  readonly killed: ReadonlySet<string>;
}

/** What the checks need of a running agent (an `Agent` is one). */
export interface LiveAgent {
  readonly agentId: string;
  runningTasks(): readonly { frameworkId: string; taskId: string }[];
  pendingStatusUpdates(): readonly TaskStatus[];
}

export function runningOnLiveAgent(r: TaskRecord, agents: readonly LiveAgent[]): boolean {
  return agents.some(
    (a) =>
      a.agentId === r.agentId &&
      a.runningTasks().some((t) => t.frameworkId === r.frameworkId && t.taskId === r.taskId),
  );
}

/** The last update a framework got for the task differs from the registry's state. */
export const frameworkDisagrees = (r: TaskRecord, received: Observed['received']): boolean =>
  (received.get(taskKey(r.frameworkId, r.taskId)) ?? []).at(-1)?.state !== r.status.state;

export function noTaskLaunchedTwice(seen: Observed): Invariant {
  const twice = [...seen.pids].filter(([, set]) => set.size > 1).map(([k]) => k.replace('\u0000', '/'));
  return {
    name: 'no task launched twice',
    ok: twice.length === 0,
    detail: twice.length === 0 ? `${seen.pids.size} tasks started, each once` : twice.slice(0, 5).join(', '),
  };
}

export function everyTaskTerminalOrRunning(
  rows: readonly TaskRecord[],
  agents: readonly LiveAgent[],
): Invariant {
  const stray = rows.filter((r) => !isTerminal(r.state) && !runningOnLiveAgent(r, agents));
  const orphans = agents.flatMap((a) =>
    a.runningTasks().filter((t) => {
      const row = rows.find((r) => r.frameworkId === t.frameworkId && r.taskId === t.taskId);
      return !row || isTerminal(row.state) || row.agentId !== a.agentId;
    }),
  );
  return {
    name: 'every task terminal, or running on a live agent',
    ok: stray.length === 0 && orphans.length === 0,
    detail:
      stray.length + orphans.length === 0
        ? `${rows.filter((r) => isTerminal(r.state)).length} terminal, ${rows.filter((r) => !isTerminal(r.state)).length} running`
        : `${stray.map((r) => `${r.taskId} ${r.state} on ${r.agentId.slice(0, 8)}`).join(', ')} ${orphans.map((t) => `orphan ${t.taskId}`).join(', ')}`,
  };
}

/**
 * Every update sent reached its framework, except those the registry rightly did not pass on:
 * its framework was removed, or it arrived after its task had ended (acknowledged, not applied,
 * as Mesos does).
 */
export function everyUpdateDelivered(
  seen: Observed,
  rows: readonly TaskRecord[],
  frameworks: ReadonlyMap<string, FrameworkRecord>,
): Invariant {
  const missing: string[] = [];
  const explained: Record<string, number> = {};
  for (const [uuid, s] of seen.sent) {
    if (seen.receivedUuids.has(uuid)) continue;
    const row = rows.find((r) => r.frameworkId === s.frameworkId && r.taskId === s.taskId);
    const fw = frameworks.get(s.frameworkId);
    const why =
      !fw || fw.status === 'TORN_DOWN'
        ? 'framework removed'
        : row && isTerminal(row.state) && row.status.uuid !== uuid && !row.seenUuids.includes(uuid)
          ? `${s.state.replace('TASK_', '')}${s.reason ? `/${s.reason.replace('REASON_', '')}` : ''} after ${row.state.replace('TASK_', '')}`
          : undefined;
    if (why) explained[why] = (explained[why] ?? 0) + 1;
    else missing.push(`${s.taskId} ${s.state}`);
  }
  const sent = seen.sent.size;
  return {
    name: 'every status update an agent sent reached its framework',
    ok: missing.length === 0,
    detail:
      missing.length === 0
        ? `${sent} sent, ${sent - Object.values(explained).reduce((a, b) => a + b, 0)} delivered${
            Object.keys(explained).length
              ? `; the rest arrived after their task had ended (acknowledged, not applied, as Mesos): ${Object.entries(
                  explained,
                )
                  .map(([k, n]) => `${k} ×${n}`)
                  .join(', ')}`
              : ''
          }`
        : `${missing.length} lost: ${missing.slice(0, 5).join(', ')}`,
  };
}

/** Every LAUNCH sent became a task or a terminal answer, every KILL ended its task, every update was acknowledged. */
export function noAcknowledgedMessageLost(
  seen: Observed,
  rows: readonly TaskRecord[],
  agents: readonly LiveAgent[],
): Invariant {
  const pending = agents.flatMap((a) => a.pendingStatusUpdates());
  const unaccounted = [...seen.accepted].filter((k) => {
    const [fwId, taskId] = fromKey(k);
    return (
      !rows.some((r) => r.frameworkId === fwId && r.taskId === taskId) &&
      !(seen.received.get(k) ?? []).some((u) => isTerminal(u.state))
    );
  });
  const unkilled = [...seen.killed].filter((k) => {
    const [fwId, taskId] = fromKey(k);
    const row = rows.find((r) => r.frameworkId === fwId && r.taskId === taskId);
    return row && !isTerminal(row.state);
  });
  return {
    name: 'no acknowledged message lost',
    ok: pending.length === 0 && unaccounted.length === 0 && unkilled.length === 0,
    detail: `${seen.accepted.size} launches sent, each a task or a terminal answer${unaccounted.length ? ` (missing: ${unaccounted.slice(0, 5).join(', ')})` : ''}; ${seen.killed.size} kills, each task ended${unkilled.length ? ` (still running: ${unkilled.length})` : ''}; ${pending.length} updates awaiting acknowledgement`,
  };
}

export function frameworksAgreeWithRegistry(rows: readonly TaskRecord[], seen: Observed): Invariant {
  const differ = rows.filter((r) => frameworkDisagrees(r, seen.received));
  return {
    name: "each framework's last word on every task is the registry's",
    ok: differ.length === 0,
    detail:
      differ.length === 0
        ? `${rows.length} tasks agree`
        : differ
            .slice(0, 5)
            .map(
              (r) =>
                `${r.taskId}: registry ${r.status.state}, framework ${(seen.received.get(taskKey(r.frameworkId, r.taskId)) ?? []).at(-1)?.state}`,
            )
            .join('; '),
  };
}

export function noDeadLetters(letters: readonly { queue: string; body: string }[]): Invariant {
  return {
    name: 'dead-letter queues empty (or explained)',
    ok: letters.length === 0,
    detail:
      letters.length === 0
        ? 'all empty'
        : letters
            .slice(0, 3)
            .map((l) => `${l.queue}: ${l.body.slice(0, 120)}`)
            .join('; '),
  };
}
