/**
 * Routing facts — who owns an id, where its queue is — cached for a few seconds per process (a
 * Lambda container, the local stack). They decide nothing about resources: a principal never
 * changes once bound, and a queue URL changes only when a framework fails over or an agent
 * re-registers, after which a stale entry sends at most a few seconds of acknowledgements and
 * updates to the old queue, which the at-least-once retries of agents cover. This takes two or
 * three reads off every status update and acknowledgement, the hottest calls there are.
 */
import type { FrameworkRecord } from '../../core/model.ts';
import type { Store } from '../../ports/store.ts';
import { getAgent } from './agents.ts';
import { getFramework } from './frameworks.ts';
import { getTask } from './tasks.ts';

const ROUTE_TTL_MS = 5_000;
/**
 * A task's agent is kept longer: a task never moves, and its id names no other task while its row
 * is kept (days). Ten minutes covers a task's acknowledgements; after that it is read again.
 */
const TASK_ROUTE_TTL_MS = 600_000;
const ROUTES_MAX = 10_000;
const routes = new Map<string, { at: number; value: unknown }>();

function remember(key: string, now: number, value: unknown): void {
  if (routes.size >= ROUTES_MAX) routes.clear();
  routes.set(key, { at: now, value });
}

async function cached<T>(
  key: string,
  now: number,
  load: () => Promise<T | undefined>,
  ttlMs = ROUTE_TTL_MS,
): Promise<T | undefined> {
  const hit = routes.get(key);
  if (hit && now - hit.at >= 0 && now - hit.at < ttlMs) return hit.value as T;
  const value = await load();
  if (value !== undefined) remember(key, now, value);
  return value;
}

const taskKey = (frameworkId: string, taskId: string) => `task:${frameworkId}\u0000${taskId}`;

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

/**
 * The agent a task was launched on. A task never moves, so this is cached like the routes; an
 * unknown task is not (it may be launched a moment later).
 */
export const taskAgent = (
  s: Store,
  frameworkId: string,
  taskId: string,
  now: number,
): Promise<string | undefined> =>
  cached(
    taskKey(frameworkId, taskId),
    now,
    async () => (await getTask(s, frameworkId, taskId))?.agentId,
    TASK_ROUTE_TTL_MS,
  );

/**
 * Notes the agent of a task just read (by its status update): the acknowledgement that follows
 * it, handled in the same container, finds it without reading the row again.
 */
export function rememberTaskAgent(frameworkId: string, taskId: string, agentId: string, now: number): void {
  remember(taskKey(frameworkId, taskId), now, agentId);
}

/** Forgets what is cached about an id (after the handler itself changed it). */
export function forgetRoute(kind: 'agent' | 'framework', id: string): void {
  routes.delete(`${kind}:${id}`);
}
