/** HEARTBEAT: the agent was heard from. */
import type { AgentCallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { heartbeatWrite } from '../records/agents.ts';
import type { AgentRoute } from '../records/routes.ts';

export async function heartbeat(
  deps: ControlDeps,
  _record: InboundRecord,
  agent: AgentRoute,
  _call: AgentCallOf<'HEARTBEAT'>,
): Promise<void> {
  // `lastSeenAt` only, with the version left alone, so heartbeats never race with resource changes.
  await deps.store.write([heartbeatWrite(agent.agentId, deps.clock.now())]);
}
