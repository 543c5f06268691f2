/**
 * The allocator service: one allocation cycle for a shard. It reads the agents (through the
 * allocator instance's view, only those that changed since its last cycle:
 * lib/control/agent-view.ts), the frameworks and the role settings (scanned only when their
 * change markers moved: lib/control/settings-view.ts), asks the
 * pure allocator (lib/core/allocator.ts: hierarchical DRF with weights, quotas, reservations
 * and filters) who gets what, then spends each agent's offers with one conditional write on the
 * agent's version — a write that loses a race is simply skipped (the next cycle sees the new
 * state), so no two decisions (nor two shards) ever spend the same resources. Offers go out
 * batched per framework, with one expiry timer per cycle.
 *
 * Shards: agents are partitioned by id (`shardOf`, lib/control/emit.ts) and each shard's cycle
 * runs in its own FIFO message group, one at a time. A shard offers only its own agents but
 * computes DRF shares cluster-wide (it reads every agent), so its order compares like with like.
 * Quota is the one thing per-agent conditional writes cannot protect across shards deciding at
 * the same time (two shards could each see a role below its limit), so each shard enforces its
 * part of every guarantee and limit — scaled by its share of the cluster — over what its own
 * agents hold. With one shard (the default) quota is exact and cluster-wide.
 */
import { type AllocationFramework, type AllocationInput, allocate } from '../core/allocator.ts';
import { addOffers, agentFree } from '../core/ledger.ts';
import type { AgentRecord, FrameworkRecord, OfferRecord } from '../core/model.ts';
import { offerEnd } from '../core/offer-expiry.ts';
import { offerId } from '../core/offer-id.ts';
import {
  ANY_ROLE,
  add,
  EMPTY,
  flatten,
  type Resources,
  SCALARS,
  toWire,
  unreserved,
  withReserved,
} from '../core/resources.ts';
import type { Quantities, RoleConfig } from '../core/roles.ts';
import type { Item } from '../ports/store.ts';
import type { Offer, SchedulerEvent, TimerMessage } from '../protocol/index.ts';
import type { AgentView } from './agent-view.ts';
import type { ControlDeps } from './deps.ts';
import { sendToFramework, startTimers } from './emit.ts';
import { getAgent, takeAgentOffers } from './records/agents.ts';
import { getFramework } from './records/frameworks.ts';
import { isConflict } from './retry.ts';
import { readRoleConfigs } from './roles.ts';
import type { SettingsView } from './settings-view.ts';

export interface CycleReport {
  readonly agents: number;
  /** Agent records the cycle read from the store (all of them on a full read). */
  readonly agentsRead: number;
  /** Whether the cycle scanned every agent (else it read only those that changed). */
  readonly fullRead: boolean;
  readonly frameworks: number;
  readonly offers: number;
  readonly conflicts: number;
  readonly expired: number;
  /** Time spent in the pure allocator (ms). */
  readonly decideMs: number;
}

/** What one cycle reads. */
export interface CycleRecords {
  readonly agents: readonly AgentRecord[];
  readonly frameworks: readonly FrameworkRecord[];
  readonly roles: readonly RoleConfig[];
}

export async function readCycleRecords(deps: Pick<ControlDeps, 'store'>): Promise<CycleRecords> {
  const [agents, frameworks, roles] = await Promise.all([
    deps.store.scan<AgentRecord & Item>('agents'),
    deps.store.scan<FrameworkRecord & Item>('frameworks'),
    readRoleConfigs(deps.store),
  ]);
  return { agents, frameworks, roles };
}

/** Whether an agent may be offered anything: reachable, and not drained or deactivated by an operator. */
export const agentOfferable = (a: AgentRecord): boolean => a.status === 'ACTIVE' && !a.operatorStatus;

/** The role an offer or task counts against: its own, else (older records) its framework's first. */
export function roleOfRecord(role: string | undefined, fw: FrameworkRecord | undefined): string {
  return role ?? fw?.roles[0] ?? ANY_ROLE;
}

/**
 * The allocator's input for one shard, from the records: free resources per agent, what every
 * framework holds per role (its offers and tasks on every agent), cluster totals and
 * reservations, role settings.
 */
export function buildAllocationInput(
  records: CycleRecords,
  opts: { now: number; shard?: number; shards?: number },
): AllocationInput {
  const { now } = opts;
  const shards = opts.shards ?? 1;
  const fwById = new Map(records.frameworks.map((f) => [f.frameworkId, f]));
  const held = new Map<string, Map<string, Resources>>();
  const charge = (frameworkId: string, role: string, r: Resources) => {
    let m = held.get(frameworkId);
    if (!m) {
      m = new Map();
      held.set(frameworkId, m);
    }
    m.set(role, add(m.get(role) ?? EMPTY, r));
  };
  let total = EMPTY;
  const reservedTotals = new Map<string, Resources>();
  for (const a of records.agents) {
    total = add(total, a.total);
    const res = a.total.reserved;
    if (res) {
      for (const role of Object.keys(res))
        reservedTotals.set(
          role,
          add(reservedTotals.get(role) ?? EMPTY, withReserved(EMPTY, [[role, res[role]!]])),
        );
    }
    for (const o of Object.values(a.offers))
      charge(o.frameworkId, roleOfRecord(o.role, fwById.get(o.frameworkId)), o.resources);
    for (const t of Object.values(a.tasks))
      charge(t.frameworkId, roleOfRecord(t.role, fwById.get(t.frameworkId)), t.resources);
  }
  const mine = shards <= 1 ? records.agents : records.agents.filter((a) => a.shard === (opts.shard ?? 0));
  const sharded = shards > 1 ? shardQuota(records.roles, fwById, mine, total) : undefined;
  const frameworks: AllocationFramework[] = records.frameworks.map((f) => {
    const byRole = held.get(f.frameworkId);
    const allocations: Record<string, Resources> = byRole ? Object.fromEntries(byRole) : {};
    let allocated = EMPTY;
    if (byRole) for (const r of byRole.values()) allocated = add(allocated, r);
    return {
      frameworkId: f.frameworkId,
      active: f.status === 'ACTIVE',
      roles: f.roles,
      allocated,
      allocations,
      ...(f.suppressedRoles && f.suppressedRoles.length > 0 ? { suppressedRoles: f.suppressedRoles } : {}),
      ...(f.minAllocatable ? { minAllocatable: f.minAllocatable } : {}),
      filters: f.filters ?? {},
    };
  });
  return {
    now,
    total,
    reservedTotals: Object.fromEntries(reservedTotals),
    agents: mine.map((a) => ({
      agentId: a.agentId,
      total: a.total,
      free: agentFree(a),
      active: agentOfferable(a),
    })),
    frameworks,
    roles: sharded ? sharded.roles : records.roles,
    ...(sharded ? { quotaConsumption: sharded.consumption } : {}),
  };
}

/**
 * A shard's part of quota: guarantees and limits scaled by its share of the cluster (per scalar;
 * limits rounded down, guarantees up), and what each role consumes on the shard's own agents.
 */
function shardQuota(
  roleConfigs: readonly RoleConfig[],
  fwById: ReadonlyMap<string, FrameworkRecord>,
  mine: readonly AgentRecord[],
  total: Resources,
): { roles: RoleConfig[]; consumption: Record<string, Resources> } {
  let shardTotal = EMPTY;
  const consumption = new Map<string, Resources>();
  const consume = (role: string, r: Resources) =>
    consumption.set(role, add(consumption.get(role) ?? EMPTY, r));
  for (const a of mine) {
    shardTotal = add(shardTotal, a.total);
    const res = a.total.reserved;
    if (res) for (const role of Object.keys(res)) consume(role, res[role]!);
    for (const o of Object.values(a.offers))
      consume(roleOfRecord(o.role, fwById.get(o.frameworkId)), unreserved(o.resources));
    for (const t of Object.values(a.tasks))
      consume(roleOfRecord(t.role, fwById.get(t.frameworkId)), unreserved(t.resources));
  }
  const flatShard = flatten(shardTotal);
  const flatTotal = flatten(total);
  const scale = (q: Quantities | undefined, round: (x: number) => number): Quantities | undefined => {
    if (!q) return undefined;
    const out: Quantities = {};
    for (const name of SCALARS) {
      const v = q[name];
      if (v === undefined) continue;
      out[name] = flatTotal[name] > 0 ? round((v * flatShard[name]) / flatTotal[name]) : v;
    }
    return out;
  };
  const roles = roleConfigs.map((r): RoleConfig => {
    const guarantee = scale(r.guarantee, Math.ceil);
    const limit = scale(r.limit, Math.floor);
    return { ...r, ...(guarantee ? { guarantee } : {}), ...(limit ? { limit } : {}) };
  });
  return { roles, consumption: Object.fromEntries(consumption) };
}

/** A Fisher-Yates shuffle with Math.random: a different agent order each cycle, as Mesos. */
export function randomOrder(n: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

export interface CycleOptions {
  /** The batch is a redelivery: announce the shard's outstanding offers again. */
  readonly reannounce?: boolean;
  /**
   * The agents as the previous cycles of this instance left them: the cycle then reads only the
   * agents that changed since (lib/control/agent-view.ts). Without it, every cycle scans them.
   */
  readonly view?: AgentView;
  /**
   * The frameworks and role settings as this instance last read them: the cycle scans them again
   * only when they changed (lib/control/settings-view.ts). Without it, every cycle scans both.
   */
  readonly settings?: SettingsView;
}

/** What a cycle reads: through the view when there is one (a full scan on a redelivery). */
async function readForCycle(
  deps: ControlDeps,
  now: number,
  opts: CycleOptions,
): Promise<{ records: CycleRecords; agentsRead: number; fullRead: boolean }> {
  if (!opts.view) {
    const records = await readCycleRecords(deps);
    return { records, agentsRead: records.agents.length, fullRead: true };
  }
  const full = opts.reannounce === true;
  const [agents, { frameworks, roles }] = await Promise.all([
    opts.view.read(deps.store, now, deps.config.shards, full),
    opts.settings
      ? opts.settings.read(deps.store, now, full)
      : Promise.all([
          deps.store.scan<FrameworkRecord & Item>('frameworks'),
          readRoleConfigs(deps.store),
        ]).then(([frameworks, roles]) => ({ frameworks, roles })),
  ]);
  return {
    records: { agents: agents.agents, frameworks, roles },
    agentsRead: agents.read,
    fullRead: agents.full,
  };
}

export async function runAllocationCycle(
  deps: ControlDeps,
  shard: number,
  opts: CycleOptions = {},
): Promise<CycleReport> {
  const now = deps.clock.now();
  const read = await readForCycle(deps, now, opts);
  let records = read.records;
  // Offers past their expiry are rescinded here too, in case a timer was lost (or fired early for
  // an offer made under a clock ahead of this one), and so are offers a framework removed while
  // it was being offered still holds (lib/core/offer-expiry.ts).
  const rescinded = await rescindExpired(deps, records.agents, records.frameworks, now);
  const expired = rescinded.length;
  if (expired > 0) {
    if (opts.view) {
      // Consistent reads of just the agents the rescinds wrote.
      const fresh = await Promise.all([...new Set(rescinded)].map((id) => getAgent(deps.store, id)));
      opts.view.learn(fresh.filter((a) => a !== undefined));
      records = { ...records, agents: opts.view.agents() };
    } else records = { ...records, agents: await deps.store.scan<AgentRecord & Item>('agents') };
  }
  const shards = deps.config.shards;
  const input = buildAllocationInput(records, { now, shard, shards });
  const t0 = performance.now();
  const decision = allocate(input, { shuffle: randomOrder });
  const decideMs = performance.now() - t0;

  const byId = new Map(records.agents.map((a) => [a.agentId, a]));
  const perAgent = new Map<string, OfferRecord[]>();
  const expiresAt = now + deps.config.offerTimeoutSeconds * 1000;
  for (const o of decision.offers) {
    const offer: OfferRecord = {
      offerId: offerId(deps.ids.next(), o.agentId),
      frameworkId: o.frameworkId,
      role: o.role,
      resources: o.resources,
      expiresAt,
    };
    perAgent.set(o.agentId, [...(perAgent.get(o.agentId) ?? []), offer]);
  }
  const { made, conflicts, failure } = await writeOffers(deps, byId, perAgent, opts.view);

  const fwById = new Map(records.frameworks.map((f) => [f.frameworkId, f]));
  const perFramework = new Map<string, Offer[]>();
  for (const { offer, agent } of made) {
    addOffer(perFramework, offer, agent);
  }
  if (opts.reannounce) reannounceOffers(records, made, perFramework, now, shard, shards);
  await Promise.all(
    [...perFramework].map(([fwId, offers]) => {
      const event: SchedulerEvent = { v: 1, type: 'OFFERS', offers };
      return sendToFramework(deps, fwById.get(fwId)!.queueUrl, [
        { event, dedupId: `offers.${offers[0]!.offerId}` },
      ]);
    }),
  );
  // One expiry timer for the cycle, not one per offer: its offers share one deadline, and the
  // cycle the timer nudges rescinds every offer past its deadline (`rescindExpired`).
  if (made.length > 0) {
    await startTimers(deps, [
      {
        message: { v: 1, type: 'OFFERS_EXPIRE', shard, expiresAt } satisfies TimerMessage,
        delaySeconds: deps.config.offerTimeoutSeconds,
      },
    ]);
  }
  deps.metrics.count('OffersMade', {}, made.length);
  if (conflicts > 0) deps.metrics.count('OfferConflicts', {}, conflicts);
  if (failure !== undefined) throw failure;
  return {
    agents: input.agents.length,
    agentsRead: read.agentsRead,
    fullRead: read.fullRead,
    frameworks: records.frameworks.length,
    offers: made.length,
    conflicts,
    expired,
    decideMs,
  };
}

/**
 * One conditional write per agent, with every offer the cycle made on it. Not retried: a lost
 * race is left to the next cycle, which decides on the new state.
 */
async function writeOffers(
  deps: ControlDeps,
  byId: ReadonlyMap<string, AgentRecord>,
  perAgent: ReadonlyMap<string, OfferRecord[]>,
  view?: AgentView,
): Promise<{ made: { offer: OfferRecord; agent: AgentRecord }[]; conflicts: number; failure: unknown }> {
  const made: { offer: OfferRecord; agent: AgentRecord }[] = [];
  let conflicts = 0;
  let failure: unknown;
  // Settled, not all-or-nothing: when one write fails for good (throttled past the SDK's
  // retries), the offers already written are still announced by the cycle before it fails and
  // is retried, instead of sitting unannounced until they expire.
  const settled = await Promise.allSettled(
    [...perAgent].map(async ([agentId, offers]) => {
      const agent = byId.get(agentId)!;
      try {
        await deps.store.write([
          {
            kind: 'patch',
            table: 'agents',
            key: { agentId },
            set: addOffers(agent, offers),
            expect: agent.version,
          },
        ]);
        for (const offer of offers) made.push({ offer, agent });
      } catch (e) {
        if (!isConflict(e)) {
          failure ??= e;
          return;
        }
        // A write retried after an ambiguous failure (a timeout) may have landed the first time:
        // its fresh offer ids on the agent say so, and then the offers must be announced.
        const after = await getAgent(deps.store, agentId);
        if (after) view?.learn([after]);
        if (after && offers.every((o) => after.offers[o.offerId])) {
          for (const offer of offers) made.push({ offer, agent });
          return;
        }
        conflicts++; // the agent changed since we read it: the next cycle decides again
      }
    }),
  );
  for (const r of settled) if (r.status === 'rejected') failure ??= r.reason;

  return { made, conflicts, failure };
}

/**
 * Crash safety: offers are written to their agents before they are sent, so a cycle
 * that dies in between leaves offers its framework never heard of, holding their resources until
 * they expire. When the ALLOCATE batch is a redelivery, the cycle announces every outstanding
 * offer of the shard again, built exactly as the first time; an offer already delivered in the
 * same grouping is dropped by FIFO deduplication, and a framework that sees one twice can use it
 * once (a second ACCEPT of it is TASK_DROPPED).
 */
function reannounceOffers(
  records: { agents: readonly AgentRecord[]; frameworks: readonly FrameworkRecord[] },
  made: readonly { offer: OfferRecord }[],
  perFramework: Map<string, Offer[]>,
  now: number,
  shard: number,
  shards: number,
): void {
  const fresh = new Set(made.map((m) => m.offer.offerId));
  const active = new Set(records.frameworks.filter((f) => f.status === 'ACTIVE').map((f) => f.frameworkId));
  for (const agent of records.agents) {
    if (agent.status !== 'ACTIVE' || (shards > 1 && agent.shard !== shard)) continue;
    for (const offer of Object.values(agent.offers)) {
      if (fresh.has(offer.offerId) || offer.expiresAt <= now || !active.has(offer.frameworkId)) continue;
      addOffer(perFramework, offer, agent);
    }
  }
}

/** An offer as its framework sees it, added to that framework's list. */
function addOffer(perFramework: Map<string, Offer[]>, offer: OfferRecord, agent: AgentRecord): void {
  const list = perFramework.get(offer.frameworkId) ?? [];
  list.push({
    offerId: offer.offerId,
    frameworkId: offer.frameworkId,
    agentId: agent.agentId,
    hostname: agent.hostname,
    resources: toWire(offer.resources),
    attributes: agent.attributes,
    ...(offer.role !== undefined ? { role: offer.role } : {}),
    expiresAt: offer.expiresAt,
  });
  perFramework.set(offer.frameworkId, list);
}

/**
 * Rescinds every offer that is done with (lib/core/offer-expiry.ts): past its expiry, made under a
 * clock ahead of this one, or held by a framework read as no longer active. Returns the agent of
 * each offer rescinded.
 */
async function rescindExpired(
  deps: ControlDeps,
  agents: readonly AgentRecord[],
  frameworks: readonly FrameworkRecord[],
  now: number,
): Promise<string[]> {
  const out: string[] = [];
  const fwById = new Map(frameworks.map((f) => [f.frameworkId, f]));
  const timeoutMs = deps.config.offerTimeoutSeconds * 1000;
  for (const a of agents) {
    for (const o of Object.values(a.offers)) {
      const end = offerEnd(o, now, timeoutMs, fwById.get(o.frameworkId));
      if (!end || !(await rescindOffer(deps, a.agentId, o.offerId, frameworks))) continue;
      if (end !== 'expired') deps.metrics.count('StaleOffersRescinded', { why: end });
      out.push(a.agentId);
    }
  }
  return out;
}

/**
 * Takes an offer back (it expired, its agent went away or is being drained): removes it from the
 * agent record if it is still there and tells its framework. Returns whether anything was
 * rescinded.
 */
export async function rescindOffer(
  deps: ControlDeps,
  agentId: string,
  id: string,
  frameworks?: readonly FrameworkRecord[],
): Promise<boolean> {
  const [removed] = await takeAgentOffers(deps.store, agentId, (o) => o.offerId === id);
  if (!removed) return false;
  const fw =
    frameworks?.find((f) => f.frameworkId === removed.frameworkId) ??
    (await getFramework(deps.store, removed.frameworkId));
  if (fw && fw.status === 'ACTIVE') {
    await sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'RESCIND', offerId: id }, dedupId: `rescind.${id}` },
    ]);
  }
  deps.metrics.count('OffersRescinded');
  return true;
}
