/**
 * The allocator service: one allocation cycle for a shard. It reads the shard's agents and the
 * active frameworks, asks the pure allocator (lib/core/allocator.ts, DRF by default) who gets
 * what, then spends each offer with a conditional write on the agent's version — a write that
 * loses a race is simply skipped (the next cycle sees the new state), so no two decisions ever
 * spend the same resources. Offers go out batched per framework, each with an expiry timer.
 */
import { allocate } from '../core/allocator.ts';
import type { AgentRecord, FrameworkRecord, OfferRecord } from '../core/model.ts';
import { add, EMPTY, type Resources, toWire } from '../core/resources.ts';
import { ConditionFailedError, type Item } from '../ports/store.ts';
import type { Offer, SchedulerEvent, TimerMessage } from '../protocol/index.ts';
import type { ControlDeps } from './deps.ts';
import { sendToFramework, startTimers } from './emit.ts';
import { agentFree, getAgent, offerId, withRetry } from './records.ts';

export interface CycleReport {
  readonly agents: number;
  readonly frameworks: number;
  readonly offers: number;
  readonly conflicts: number;
  readonly expired: number;
}

export async function runAllocationCycle(deps: ControlDeps, shard: number): Promise<CycleReport> {
  const now = deps.clock.now();
  const [allAgents, frameworks] = await Promise.all([
    deps.store.scan<AgentRecord & Item>('agents'),
    deps.store.scan<FrameworkRecord & Item>('frameworks'),
  ]);
  // Offers past their expiry are rescinded here too, in case a timer was lost.
  const expired = await rescindExpired(deps, allAgents, frameworks, now);
  const current = expired > 0 ? await deps.store.scan<AgentRecord & Item>('agents') : allAgents;
  const agents = current.filter((a) => a.shard === shard || deps.config.shards <= 1);

  // Shares are cluster-wide: what each framework holds on every agent, against every agent's total.
  const allocated = new Map<string, Resources>();
  let total = EMPTY;
  for (const a of current) {
    total = add(total, a.total);
    for (const o of Object.values(a.offers))
      allocated.set(o.frameworkId, add(allocated.get(o.frameworkId) ?? EMPTY, o.resources));
    for (const t of Object.values(a.tasks))
      allocated.set(t.frameworkId, add(allocated.get(t.frameworkId) ?? EMPTY, t.resources));
  }
  const byId = new Map(agents.map((a) => [a.agentId, a]));
  const decision = allocate({
    now,
    total,
    agents: agents.map((a) => ({
      agentId: a.agentId,
      total: a.total,
      free: agentFree(a),
      active: a.status === 'ACTIVE',
    })),
    frameworks: frameworks.map((f) => ({
      frameworkId: f.frameworkId,
      active: f.status === 'ACTIVE',
      allocated: allocated.get(f.frameworkId) ?? EMPTY,
      filters: f.filters,
    })),
  });

  const expiresAt = now + deps.config.offerTimeoutSeconds * 1000;
  const made: { offer: OfferRecord; agent: AgentRecord }[] = [];
  let conflicts = 0;
  for (const o of decision.offers) {
    const agent = byId.get(o.agentId)!;
    const offer: OfferRecord = {
      offerId: offerId(deps.ids.next(), agent.agentId),
      frameworkId: o.frameworkId,
      resources: o.resources,
      expiresAt,
    };
    try {
      await deps.store.write([
        {
          kind: 'patch',
          table: 'agents',
          key: { agentId: agent.agentId },
          set: { offers: { ...agent.offers, [offer.offerId]: offer } },
          expect: agent.version,
        },
      ]);
      made.push({ offer, agent });
    } catch (e) {
      if (!(e instanceof ConditionFailedError)) throw e;
      conflicts++; // the agent changed since we read it: the next cycle decides again
    }
  }

  const fwById = new Map(frameworks.map((f) => [f.frameworkId, f]));
  const perFramework = new Map<string, Offer[]>();
  for (const { offer, agent } of made) {
    const list = perFramework.get(offer.frameworkId) ?? [];
    list.push({
      offerId: offer.offerId,
      frameworkId: offer.frameworkId,
      agentId: agent.agentId,
      hostname: agent.hostname,
      resources: toWire(offer.resources),
      attributes: agent.attributes,
      expiresAt: offer.expiresAt,
    });
    perFramework.set(offer.frameworkId, list);
  }
  await Promise.all(
    [...perFramework].map(([fwId, offers]) => {
      const event: SchedulerEvent = { v: 1, type: 'OFFERS', offers };
      return sendToFramework(deps, fwById.get(fwId)!.queueUrl, [
        { event, dedupId: `offers.${offers[0]!.offerId}` },
      ]);
    }),
  );
  await startTimers(
    deps,
    made.map(({ offer, agent }) => ({
      message: {
        v: 1,
        type: 'OFFER_TIMEOUT',
        agentId: agent.agentId,
        offerId: offer.offerId,
      } satisfies TimerMessage,
      delaySeconds: deps.config.offerTimeoutSeconds,
    })),
  );
  deps.metrics.count('OffersMade', {}, made.length);
  return { agents: agents.length, frameworks: frameworks.length, offers: made.length, conflicts, expired };
}

async function rescindExpired(
  deps: ControlDeps,
  agents: readonly AgentRecord[],
  frameworks: readonly FrameworkRecord[],
  now: number,
): Promise<number> {
  let n = 0;
  for (const a of agents) {
    for (const o of Object.values(a.offers)) {
      if (o.expiresAt <= now) n += (await rescindOffer(deps, a.agentId, o.offerId, frameworks)) ? 1 : 0;
    }
  }
  return n;
}

/**
 * Takes an offer back (it expired, or its agent went away): removes it from the agent record if
 * it is still there and tells its framework. Returns whether anything was rescinded.
 */
export async function rescindOffer(
  deps: ControlDeps,
  agentId: string,
  id: string,
  frameworks?: readonly FrameworkRecord[],
): Promise<boolean> {
  const removed = await withRetry(
    async () => {
      const agent = await getAgent(deps.store, agentId);
      const offer = agent?.offers[id];
      if (!agent || !offer) return undefined;
      const offersLeft = { ...agent.offers };
      delete offersLeft[id];
      await deps.store.write([
        {
          kind: 'patch',
          table: 'agents',
          key: { agentId },
          set: { offers: offersLeft },
          expect: agent.version,
        },
      ]);
      return offer;
    },
    (e) => e instanceof ConditionFailedError,
  );
  if (!removed) return false;
  const fw =
    frameworks?.find((f) => f.frameworkId === removed.frameworkId) ??
    (await deps.store.get<FrameworkRecord & Item>('frameworks', { frameworkId: removed.frameworkId }));
  if (fw && fw.status === 'ACTIVE') {
    await sendToFramework(deps, fw.queueUrl, [
      { event: { v: 1, type: 'RESCIND', offerId: id }, dedupId: `rescind.${id}` },
    ]);
  }
  deps.metrics.count('OffersRescinded');
  return true;
}
