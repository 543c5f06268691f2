/**
 * Whether any agent of the cluster could ever hold what `meso run` asks for. Offers show only what
 * is free now, so a request larger than every agent would wait forever; the agents' totals (in the
 * registry's table, when this client may read it) tell at once.
 */
import { type ClusterConfig, loadClusterConfig } from '../config/cluster.ts';
import type { AgentRecord } from '../core/model.ts';
import { contains, flatten, format, type Resources } from '../core/resources.ts';
import { openClusterStore } from './agents.ts';

/** How long the look at the agents' table may take before `meso run` goes on without it. */
export const AGENTS_LOOK_MS = 5_000;

/**
 * Why no agent could ever hold `wanted` (its total, counting every reservation, is smaller),
 * or undefined when one could, or when no agent is known yet (one may still register).
 */
export function neverFits(agents: readonly AgentRecord[], wanted: Resources): string | undefined {
  const live = agents.filter((a) => a.status !== 'GONE');
  if (live.length === 0) return undefined;
  if (live.some((a) => contains(flatten(a.total), wanted))) return undefined;
  const shown = live.slice(0, 3).map((a) => `${a.hostname} has ${format(flatten(a.total))}`);
  if (live.length > 3) shown.push(`${live.length - 3} more`);
  return (
    `no agent in the cluster could ever hold ${format(wanted)} (${shown.join('; ')}): ` +
    'ask for less, or add an agent that large'
  );
}

/** The cluster's agents, or undefined when this client cannot read the registry (a framework's identity may not). */
export async function readableAgents(
  config: ClusterConfig = loadClusterConfig(),
): Promise<readonly AgentRecord[] | undefined> {
  let opened: ReturnType<typeof openClusterStore> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    opened = openClusterStore(config);
    const scan = opened.store.scan<AgentRecord & Record<string, unknown>>('agents');
    const late = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), AGENTS_LOOK_MS);
    });
    return await Promise.race([scan, late]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    opened?.close();
  }
}
