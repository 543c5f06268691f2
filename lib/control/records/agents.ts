/**
 * Agent records: read one, change one (read, a pure ledger change from lib/core/ledger.ts,
 * conditional write on the version read, retry on a lost race), and the two writes that need no
 * version: a heartbeat and the release of an ended task.
 */

import { heldKey, ledgerKey, takeOffers } from '../../core/ledger.ts';
import type { AgentRecord, OfferRecord } from '../../core/model.ts';
import { ConditionFailedError, type Item, type Store, type WriteOp } from '../../ports/store.ts';
import { type Decide, updateRecord } from './transact.ts';

export const getAgent = (s: Store, agentId: string) => s.get<AgentRecord & Item>('agents', { agentId });

/** `update(id, change)` for an agent record. */
export const updateAgent = <R>(s: Store, agentId: string, decide: Decide<AgentRecord, R>): Promise<R> =>
  updateRecord(s, 'agents', { agentId }, decide);

/**
 * Takes the offers `pick` selects off the agent (one conditional write; none when it holds no
 * such offer). Returns the offers taken.
 */
export const takeAgentOffers = (
  s: Store,
  agentId: string,
  pick: (o: OfferRecord) => boolean,
): Promise<OfferRecord[]> =>
  updateAgent(s, agentId, (agent) => {
    if (!agent) return { result: [] };
    const { offers, taken } = takeOffers(agent, pick);
    return taken.length === 0 ? { result: [] } : { set: { offers }, result: taken };
  });

/** A heartbeat: `lastSeenAt` only, the version left alone, so it never races with resource changes. */
export const heartbeatWrite = (agentId: string, now: number): WriteOp => ({
  kind: 'patch',
  table: 'agents',
  key: { agentId },
  set: { lastSeenAt: now },
  expect: 'exists',
});

/**
 * An ended task leaves its agent's ledger by removing just its key (`ledgerKey`, or the bare task
 * id of an entry written before those): it commutes with other releases, so many tasks of one
 * agent ending at once do not fight over the agent's version.
 */
export const releaseTaskWrite = (agentId: string, key: string): WriteOp => ({
  kind: 'removeKey',
  table: 'agents',
  key: { agentId },
  attribute: 'tasks',
  mapKey: key,
});

/**
 * Takes a framework's ended task out of its agent's ledger, on its own: one single-item write (one
 * write unit) instead of a second item in the task row's transaction (four units for the two), and
 * no read of the agent to learn whether it still holds the task — a ledger without it fails the
 * write's condition, which means it was released already (by an earlier attempt, a re-registration
 * or the agent's removal); only then is the agent read, to tell that from any other failure, which
 * is tried again. Returns whether it was still there; true or false, it is gone now.
 *
 * The entry is the one of this framework's task: another framework's task with the same id is
 * left alone. That read also finds an entry of a record written before the ledger was keyed by
 * framework (under the bare task id, if it is this framework's), which the next attempt removes.
 *
 * It is written before the task row says the task ended, and only for a terminal update of the
 * agent that runs the task: the process is over, so its resources are free whatever happens to the
 * row's write. If that write is lost, the agent resends the update (until it is acknowledged) and
 * the row follows; the ledger is never charged for a task that ended, so nothing is over-committed.
 */
export async function releaseTask(
  s: Store,
  agentId: string,
  frameworkId: string,
  taskId: string,
): Promise<boolean> {
  let key = ledgerKey(frameworkId, taskId);
  for (let attempt = 1; ; attempt++) {
    try {
      await s.write([releaseTaskWrite(agentId, key)]);
      return true;
    } catch (e) {
      if (!(e instanceof ConditionFailedError)) throw e;
      // Only now is the agent read: a failure that was not the key's absence is tried again.
      const agent = await getAgent(s, agentId);
      const held = agent ? heldKey(agent.tasks, frameworkId, taskId) : undefined;
      if (held === undefined) return false;
      if (attempt >= 4) throw e;
      key = held;
    }
  }
}
