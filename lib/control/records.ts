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

/**
 * Routing facts — who owns an id, where its queue is — cached for a few seconds per process (a
 * Lambda container, the local stack). They decide nothing about resources: a principal never
 * changes once bound, and a queue URL changes only when a framework fails over or an agent
 * re-registers, after which a stale entry sends at most a few seconds of acknowledgements and
 * updates to the old queue, which the at-least-once retries of agents cover. This takes two or
 * three reads off every status update and acknowledgement, the hottest calls there are.
 */
const ROUTE_TTL_MS = 5_000;
const ROUTES_MAX = 10_000;
const routes = new Map<string, { at: number; value: unknown }>();

async function cached<T>(
  key: string,
  now: number,
  load: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const hit = routes.get(key);
  if (hit && now - hit.at < ROUTE_TTL_MS) return hit.value as T;
  const value = await load();
  if (value !== undefined) {
    if (routes.size >= ROUTES_MAX) routes.clear();
    routes.set(key, { at: now, value });
  }
  return value;
}

export interface AgentRoute {
  readonly agentId: string;
  readonly principal: string;
  readonly queueUrl: string;
  readonly shard: number;
}

export interface FrameworkRoute {
  readonly frameworkId: string;
  readonly principal: string;
  readonly queueUrl: string;
  readonly status: FrameworkRecord['status'];
}

export const agentRoute = (s: Store, agentId: string, now: number): Promise<AgentRoute | undefined> =>
  cached(`agent:${agentId}`, now, async () => {
    const a = await getAgent(s, agentId);
    return a && { agentId: a.agentId, principal: a.principal, queueUrl: a.queueUrl, shard: a.shard };
  });

export const frameworkRoute = (
  s: Store,
  frameworkId: string,
  now: number,
): Promise<FrameworkRoute | undefined> =>
  cached(`framework:${frameworkId}`, now, async () => {
    const f = await getFramework(s, frameworkId);
    return (
      f && { frameworkId: f.frameworkId, principal: f.principal, queueUrl: f.queueUrl, status: f.status }
    );
  });

/** Forgets what is cached about an id (after the handler itself changed it). */
export function forgetRoute(kind: 'agent' | 'framework', id: string): void {
  routes.delete(`${kind}:${id}`);
}
