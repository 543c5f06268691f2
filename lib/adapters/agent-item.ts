/**
 * How an agent record's ledger is laid out in DynamoDB. AWS bills every write by the size of the
 * whole item (a write unit per started KB, the larger of before and after), and the agent record
 * carries one ledger entry per running task (`AgentRecord.tasks`, lib/core/ledger.ts), so a busy
 * agent's every write — each task's release, each ACCEPT, each offer — is priced by its entries.
 *
 * An entry as the domain holds it is a map of its framework and task ids, role and resources:
 * about 200 bytes by DynamoDB's size rules. Stored, it is a short string instead: the ids are
 * already in where it is kept (`ledger[frameworkId][taskId]`). An unreserved task of role `*`
 * without ports — nearly all of them — is its scalars in thousandths, `cpus,mem,disk,gpus` with
 * trailing zeros left out (`100,32000` for 0.1 cpu and 32 MB: 9 bytes beside its task id); any
 * other is a JSON array of its role and scalars, with its ports and reservations. A framework's id is stored once per agent, not
 * once per task. The release of a task removes just its entry's path ({@link ledgerEntryPath}),
 * so releases still commute.
 *
 * Reading takes either form: an entry written as a map (before this layout, or one whose key is
 * not its framework's and task's ids — a bare task id of an older record) is returned as it was.
 */
import { ledgerKey } from '../core/ledger.ts';
import type { AgentTaskRecord } from '../core/model.ts';
import { ANY_ROLE, type Range, type Resources, type ScalarsAndPorts } from '../core/resources.ts';
import type { Item } from '../ports/store.ts';

type Part = [number, number, number, number] | [number, number, number, number, Range[]];
/** `[role or null, cpus, mem, disk, gpus, ports?, reserved?]` — scalars in thousandths. */
type Compact = [string | null, number, number, number, number, Range[]?, Record<string, Part>?];

const part = (r: ScalarsAndPorts): Part =>
  r.ports.length > 0 ? [r.cpus, r.mem, r.disk, r.gpus, [...r.ports]] : [r.cpus, r.mem, r.disk, r.gpus];

const fromPart = (p: readonly unknown[]): ScalarsAndPorts => ({
  cpus: p[0] as number,
  mem: p[1] as number,
  disk: p[2] as number,
  gpus: p[3] as number,
  ports: (p[4] as Range[] | undefined) ?? [],
});

/** One ledger entry as stored: the compact string when its key names it, else the map. */
export function encodeLedgerEntry(key: string, entry: AgentTaskRecord): string | AgentTaskRecord {
  if (entry.taskId === undefined || key !== ledgerKey(entry.frameworkId, entry.taskId)) return entry;
  const r = entry.resources;
  const reserved = r.reserved;
  if (entry.role === ANY_ROLE && r.ports.length === 0 && !reserved) {
    // The common case, shortest: `cpus,mem,disk,gpus` with trailing zeros left out.
    const scalars = [r.cpus, r.mem, r.disk, r.gpus];
    while (scalars.length > 1 && scalars.at(-1) === 0) scalars.pop();
    return scalars.join(',');
  }
  const c: Compact = [entry.role ?? null, r.cpus, r.mem, r.disk, r.gpus];
  if (r.ports.length > 0 || reserved) c.push([...r.ports]);
  if (reserved) c.push(Object.fromEntries(Object.entries(reserved).map(([role, p]) => [role, part(p)])));
  return JSON.stringify(c);
}

/** One ledger entry as the domain holds it, from either stored form. */
export function decodeLedgerEntry(key: string, stored: unknown): AgentTaskRecord {
  if (typeof stored !== 'string') return stored as AgentTaskRecord;
  const slash = key.indexOf('/');
  const ids = { frameworkId: key.slice(0, slash), taskId: key.slice(slash + 1) };
  if (!stored.startsWith('[')) {
    const [cpus = 0, mem = 0, disk = 0, gpus = 0] = stored.split(',').map(Number);
    return { ...ids, role: ANY_ROLE, resources: { cpus, mem, disk, gpus, ports: [] } };
  }
  const c = JSON.parse(stored) as Compact;
  const reserved = c[6];
  const resources: Resources = {
    ...fromPart([c[1], c[2], c[3], c[4], c[5]]),
    ...(reserved
      ? { reserved: Object.fromEntries(Object.entries(reserved).map(([role, p]) => [role, fromPart(p)])) }
      : {}),
  };
  return {
    ...ids,
    ...(c[0] !== null ? { role: c[0] } : {}),
    resources,
  };
}

/**
 * The stored attributes of a ledger: the compact entries grouped by framework in `ledger`
 * (`ledger[frameworkId][taskId]`, so a framework's id is stored once, not in every key), and in
 * `tasks` only entries kept as maps (see {@link encodeLedgerEntry}).
 */
function encodeLedger(tasks: Readonly<Record<string, AgentTaskRecord>>): {
  ledger: Record<string, Record<string, string>>;
  tasks: Record<string, AgentTaskRecord>;
} {
  const ledger: Record<string, Record<string, string>> = {};
  const kept: Record<string, AgentTaskRecord> = {};
  for (const [key, entry] of Object.entries(tasks)) {
    const stored = encodeLedgerEntry(key, entry);
    if (typeof stored !== 'string') {
      kept[key] = stored;
      continue;
    }
    const group = ledger[entry.frameworkId] ?? {};
    group[entry.taskId!] = stored;
    ledger[entry.frameworkId] = group;
  }
  return { ledger, tasks: kept };
}

/** The ledger as the domain holds it, from the stored `ledger` and `tasks`. */
function decodeLedger(ledger: unknown, tasks: unknown): Record<string, AgentTaskRecord> {
  const out: Record<string, AgentTaskRecord> = {};
  if (tasks && typeof tasks === 'object')
    for (const [key, v] of Object.entries(tasks)) out[key] = decodeLedgerEntry(key, v);
  if (ledger && typeof ledger === 'object')
    for (const [fw, group] of Object.entries(ledger as Record<string, Record<string, unknown>>))
      for (const [task, v] of Object.entries(group)) {
        const key = ledgerKey(fw, task);
        out[key] = decodeLedgerEntry(key, v);
      }
  return out;
}

/** An agent item (or the attributes a patch sets) as stored: its ledger compact, by framework. */
export function encodeAgentItem(item: Item): Item {
  if (!item.tasks || typeof item.tasks !== 'object') return item;
  return { ...item, ...encodeLedger(item.tasks as Record<string, AgentTaskRecord>) };
}

/** An agent item as read, its ledger as the domain holds it (`tasks`, by `ledgerKey`). */
export function decodeAgentItem<T extends Item>(item: T): T {
  if (!('tasks' in item) && !('ledger' in item)) return item;
  const { ledger, ...rest } = item;
  return { ...rest, tasks: decodeLedger(ledger, item.tasks) } as unknown as T;
}

/**
 * Where one ledger entry (`tasks[key]` in the domain) is stored, as an attribute path: under its
 * framework in `ledger` when its key names a framework and a task, else in `tasks`. The release of
 * a task removes exactly that path.
 */
export function ledgerEntryPath(key: string): string[] {
  const slash = key.indexOf('/');
  return slash < 0 ? ['tasks', key] : ['ledger', key.slice(0, slash), key.slice(slash + 1)];
}
