/** Refusal filters a framework's calls set (DECLINE, and what an ACCEPT left of its offers). */

import { withFilter } from '../../core/framework-change.ts';
import type { FrameworkRecord } from '../../core/model.ts';
import type { Resources } from '../../core/resources.ts';
import type { ControlDeps } from '../deps.ts';
import { MAX_TIMER_DELAY_SECONDS, startTimers } from '../emit.ts';
import { FRAMEWORKS_CHANGED, markChanged } from '../records/changes.ts';
import { frameworkCallWrite } from '../records/frameworks.ts';

/** DECLINE's refuse_seconds: invalid values (negative, NaN, not a number) mean the default; capped. */
export function refuseSeconds(deps: Pick<ControlDeps, 'config'>, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    return deps.config.defaultRefuseSeconds;
  return Math.min(value, deps.config.maxRefuseSeconds);
}

/**
 * Refuses each agent named to the framework for `seconds` unless more than its `resources` is
 * free there, in one write. Only the framework's own calls change its filters and its FIFO group
 * serializes them, so the record the call read is current and the write needs no version. A
 * FILTER_EXPIRED timer nudges the allocator when a filter ends (longer ones are seen by the
 * sweep's nudge).
 */
export async function setFilters(
  deps: ControlDeps,
  fw: FrameworkRecord,
  refused: readonly { readonly agentId: string; readonly resources: Resources }[],
  seconds: number,
): Promise<void> {
  if (seconds <= 0 || refused.length === 0) return;
  const now = deps.clock.now();
  const until = now + seconds * 1000;
  let filters = fw.filters;
  for (const r of refused) filters = withFilter(filters, r.agentId, r.resources, now, until);
  await deps.store.write([frameworkCallWrite(fw.frameworkId, { filters })]);
  await markChanged(deps.store, FRAMEWORKS_CHANGED);
  if (seconds <= MAX_TIMER_DELAY_SECONDS) {
    await startTimers(
      deps,
      refused.map((r) => ({
        message: { v: 1, type: 'FILTER_EXPIRED', frameworkId: fw.frameworkId, agentId: r.agentId, until },
        delaySeconds: seconds,
      })),
    );
  }
}
