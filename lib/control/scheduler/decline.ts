/**
 * DECLINE: the framework's offers named go back to their agents (one ledger change each), and
 * each agent is refused to it for `refuse_seconds` unless more than it declined is free there.
 */
import { offered } from '../../core/ledger.ts';
import type { FrameworkRecord } from '../../core/model.ts';
import { agentOfOffer } from '../../core/offer-id.ts';
import type { Resources } from '../../core/resources.ts';
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator, shardsOf } from '../emit.ts';
import { takeAgentOffers } from '../records/agents.ts';
import { refuseSeconds, setFilters } from './filters.ts';

export async function decline(
  deps: ControlDeps,
  _record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'DECLINE'>,
): Promise<void> {
  const byAgent = new Map<string, Set<string>>();
  for (const id of call.offerIds) {
    const a = agentOfOffer(id);
    if (!a) continue;
    byAgent.set(a, (byAgent.get(a) ?? new Set()).add(id));
  }
  const declined: { agentId: string; resources: Resources }[] = [];
  for (const [agentId, ids] of byAgent) {
    const taken = await takeAgentOffers(
      deps.store,
      agentId,
      (o) => ids.has(o.offerId) && o.frameworkId === fw.frameworkId,
    );
    if (taken.length > 0) declined.push({ agentId, resources: offered(taken) });
  }
  await setFilters(deps, fw, declined, refuseSeconds(deps, call.filters?.refuseSeconds));
  if (declined.length > 0)
    await nudgeAllocator(
      deps,
      `decline by ${fw.frameworkId}`,
      shardsOf(
        deps,
        declined.map((d) => d.agentId),
      ),
    );
}
