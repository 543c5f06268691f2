/**
 * An agent's ledger: what of its `total` is offered and what is given to tasks. Every change to
 * it is a pure function of the record read, whose result the control plane writes conditionally
 * on that record's version (lib/control/records/agents.ts), so no two decisions spend the same
 * resources — the accounting Mesos's hierarchical allocator keeps per agent.
 */
import { applyReservations } from './accept.ts';
import type { AgentRecord, AgentTaskRecord, OfferRecord } from './model.ts';
import { add, EMPTY, isEmpty, type Resources, subtract } from './resources.ts';

type Ledger = Pick<AgentRecord, 'total' | 'offers' | 'tasks' | 'dynamicReservations'>;

/**
 * The key of a task in its agent's ledger (`AgentRecord.tasks`): its framework's id and its own,
 * since task ids are unique only within a framework. `/` cannot occur in an id (lib/protocol's
 * `Id`), so no two tasks share a key, and a key is never a bare task id.
 */
export const ledgerKey = (frameworkId: string, taskId: string): string => `${frameworkId}/${taskId}`;

/**
 * The task id of a ledger entry: the one it holds, or — in a record written before entries held
 * one — its key, which was then the bare task id.
 */
export const ledgerTaskId = (key: string, entry: AgentTaskRecord): string => entry.taskId ?? key;

/** A ledger's entries with the framework and task each is for. */
export function ledgerEntries(
  tasks: AgentRecord['tasks'],
): { key: string; frameworkId: string; taskId: string; entry: AgentTaskRecord }[] {
  return Object.entries(tasks).map(([key, entry]) => ({
    key,
    frameworkId: entry.frameworkId,
    taskId: ledgerTaskId(key, entry),
    entry,
  }));
}

/**
 * The key under which the ledger holds a framework's task, if it does: its {@link ledgerKey}, or
 * in a record written before those, the bare task id when that entry is the same framework's.
 */
export function heldKey(
  tasks: AgentRecord['tasks'],
  frameworkId: string,
  taskId: string,
): string | undefined {
  const key = ledgerKey(frameworkId, taskId);
  if (Object.hasOwn(tasks, key)) return key;
  return Object.hasOwn(tasks, taskId) && tasks[taskId]!.frameworkId === frameworkId ? taskId : undefined;
}

/** What the agent has not yet offered or given to tasks. */
export function agentFree(a: Pick<AgentRecord, 'total' | 'offers' | 'tasks'>): Resources {
  let used = EMPTY;
  for (const o of Object.values(a.offers)) used = add(used, o.resources);
  for (const t of Object.values(a.tasks)) used = add(used, t.resources);
  return subtract(a.total, used);
}

/** The agent's offers with `offers` added (an allocation cycle's offers on it). */
export function addOffers(
  a: Pick<AgentRecord, 'offers'>,
  offers: readonly OfferRecord[],
): { offers: Record<string, OfferRecord> } {
  const next = { ...a.offers };
  for (const o of offers) next[o.offerId] = o;
  return { offers: next };
}

/**
 * Takes back the offers `pick` selects (rescinded, declined, their framework went away): the
 * offers left, and those taken (none: nothing to write).
 */
export function takeOffers(
  a: Pick<AgentRecord, 'offers'>,
  pick: (o: OfferRecord) => boolean,
): { offers: Record<string, OfferRecord>; taken: OfferRecord[] } {
  const offers: Record<string, OfferRecord> = {};
  const taken: OfferRecord[] = [];
  for (const [id, o] of Object.entries(a.offers)) {
    if (pick(o)) taken.push(o);
    else offers[id] = o;
  }
  return { offers, taken };
}

/** The resources of some offers, added up. */
export const offered = (offers: readonly OfferRecord[]): Resources =>
  offers.reduce((acc, o) => add(acc, o.resources), EMPTY);

/** What an ACCEPT spends on the agent: the offers it consumes and the reservations it changes. */
export interface Spend {
  readonly consumedOfferIds: readonly string[];
  /** The role the consumed offers are allocated to; launched tasks count against it. */
  readonly role: string;
  readonly reserved: Resources;
  readonly unreserved: Resources;
}

/** The agent's ledger after an ACCEPT: only the attributes that change. */
export interface SpentLedger {
  readonly offers: Record<string, OfferRecord>;
  readonly tasks: Record<string, AgentTaskRecord>;
  readonly total?: Resources;
  readonly dynamicReservations?: Resources;
}

/**
 * Spends an ACCEPT: the consumed offers leave, the launched tasks join, and RESERVE / UNRESERVE
 * change the total and the dynamic reservations. Whatever the offers held that was not launched
 * is free again, since free is what neither offers nor tasks hold.
 */
export function spendAccept(
  a: Ledger,
  frameworkId: string,
  spend: Spend,
  launched: readonly { readonly taskId: string; readonly resources: Resources }[],
): SpentLedger {
  const consumed = new Set(spend.consumedOfferIds);
  const { offers } = takeOffers(a, (o) => consumed.has(o.offerId));
  const tasks = { ...a.tasks };
  for (const t of launched)
    tasks[ledgerKey(frameworkId, t.taskId)] = {
      frameworkId,
      taskId: t.taskId,
      role: spend.role,
      resources: t.resources,
    };
  if (isEmpty(spend.reserved) && isEmpty(spend.unreserved)) return { offers, tasks };
  return {
    offers,
    tasks,
    total: applyReservations(a.total, spend.reserved, spend.unreserved),
    dynamicReservations: subtract(add(a.dynamicReservations ?? EMPTY, spend.reserved), spend.unreserved),
  };
}
