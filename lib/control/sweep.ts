/**
 * The minute-level sweep, run by a scheduled rule (and by `meso dev` on a timer). In order:
 * 1. sends what handlers left in the outbox (they died between their write and their sends);
 * 2. agent liveness: agents past their ping deadline become UNREACHABLE, agents unreachable too
 *    long become GONE, transitions a dead handler left half done are finished, and deadlines that
 *    fall before the next sweep get an AGENT_CHECK timer (lib/control/liveness.ts); agents that
 *    talk again while UNREACHABLE are told to re-register;
 * 3. framework failover: silent frameworks are disconnected, those past their failover timeout
 *    removed, and every connected framework gets a HEARTBEAT event (lib/control/failover.ts);
 * 4. nudges every allocator shard, so filters that expired without a timer and offers whose timer
 *    was lost are dealt with.
 * Each step catches its own failures per agent or framework, so one bad record does not stop the
 * rest; the next sweep tries again.
 */
import type { AgentRecord } from '../core/model.ts';
import type { Item } from '../ports/store.ts';
import type { ControlDeps } from './deps.ts';
import { nudgeAllocator, sendToAgent } from './emit.ts';
import { checkFrameworks, type FailoverReport } from './failover.ts';
import { checkAgents, type LivenessReport } from './liveness.ts';
import { drainOutbox } from './outbox.ts';

export interface SweepReport {
  /** Subscribed (connected) frameworks that got a HEARTBEAT. */
  readonly frameworks: number;
  readonly outbox: { items: number; messages: number };
  readonly agents: LivenessReport & { reregister: number };
  readonly failover: FailoverReport;
}

export async function runSweep(deps: ControlDeps): Promise<SweepReport> {
  const outbox = await drainOutbox(deps);
  const agents = await checkAgents(deps);
  const reregister = await askToReregister(deps);
  const failover = await checkFrameworks(deps);
  await nudgeAllocator(deps, 'sweep');
  return { frameworks: failover.heartbeats, outbox, agents: { ...agents, reregister }, failover };
}

/**
 * An UNREACHABLE agent that heartbeats again (a partition healed) but has not registered — it
 * missed the REREGISTER sent when it was marked — is told again, once per sweep; a GONE agent that
 * still talks is told it is gone.
 */
async function askToReregister(deps: ControlDeps): Promise<number> {
  const tick = Math.floor(deps.clock.now() / 60_000);
  const agents = await deps.store.scan<AgentRecord & Item>('agents');
  let n = 0;
  for (const a of agents) {
    if (a.status === 'UNREACHABLE' && typeof a.unreachableAt === 'number' && a.lastSeenAt > a.unreachableAt) {
      await sendToAgent(deps, a.queueUrl, [
        {
          command: {
            v: 1,
            type: 'REREGISTER',
            agentId: a.agentId,
            reason: 'this agent was marked unreachable',
          },
          dedupId: `reregister.${a.agentId}.${tick}`,
        },
      ]);
      n++;
    } else if (a.status === 'GONE' && typeof a.goneAt === 'number' && a.lastSeenAt > a.goneAt) {
      await sendToAgent(deps, a.queueUrl, [
        {
          command: {
            v: 1,
            type: 'ERROR',
            code: 'AGENT_GONE',
            message: `agent ${a.agentId} was marked gone; it cannot register again (start it with a new agent id)`,
          },
          dedupId: `gone.${a.agentId}.${tick}`,
        },
      ]);
    }
  }
  return n;
}
