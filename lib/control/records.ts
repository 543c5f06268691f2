/** Typed access to the control plane's records, and derived values such as an agent's free resources. */
import type { AgentRecord, FrameworkRecord, TaskRecord } from '../core/model.ts';
import { add, EMPTY, type Resources, subtract } from '../core/resources.ts';
import type { Item, Store } from '../ports/store.ts';

export const getAgent = (s: Store, agentId: string) => s.get<AgentRecord & Item>('agents', { agentId });
export const getFramework = (s: Store, frameworkId: string) =>
  s.get<FrameworkRecord & Item>('frameworks', { frameworkId });
export const getTask = (s: Store, frameworkId: string, taskId: string) =>
  s.get<TaskRecord & Item>('tasks', { frameworkId, taskId });

/** What the agent has not yet offered or given to tasks. */
export function agentFree(a: AgentRecord): Resources {
  let used = EMPTY;
  for (const o of Object.values(a.offers)) used = add(used, o.resources);
  for (const t of Object.values(a.tasks)) used = add(used, t.resources);
  return subtract(a.total, used);
}

/** Offer ids name their agent (`<uuid>@<agentId>`) so an ACCEPT finds the agent row in one read. */
export const offerId = (uuid: string, agentId: string): string => `${uuid}@${agentId}`;
export function agentOfOffer(id: string): string | undefined {
  const at = id.indexOf('@');
  return at > 0 && at < id.length - 1 ? id.slice(at + 1) : undefined;
}

/** Retries `fn` when a conditional write lost a race, re-reading state each time. */
export async function withRetry<T>(
  fn: () => Promise<T>,
  isConflict: (e: unknown) => boolean,
  attempts = 8,
): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!isConflict(e) || i + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * 2 ** Math.min(i, 5)));
    }
  }
}
