/**
 * The minute-level sweep, run by a scheduled rule: it nudges every allocator shard (so filters
 * that expired without a timer and offers whose timer was lost are dealt with) and sends each
 * subscribed framework a HEARTBEAT event.
 */
import type { FrameworkRecord } from '../core/model.ts';
import type { Item } from '../ports/store.ts';
import type { ControlDeps } from './deps.ts';
import { nudgeAllocator, sendToFramework } from './emit.ts';

export async function runSweep(deps: ControlDeps): Promise<{ frameworks: number }> {
  const frameworks = (await deps.store.scan<FrameworkRecord & Item>('frameworks')).filter(
    (f) => f.status === 'ACTIVE',
  );
  const tick = Math.floor(deps.clock.now() / 60_000);
  await Promise.all(
    frameworks.map((f) =>
      sendToFramework(deps, f.queueUrl, [
        { event: { v: 1, type: 'HEARTBEAT' }, dedupId: `heartbeat.${tick}` },
      ]),
    ),
  );
  await nudgeAllocator(deps, 'sweep');
  return { frameworks: frameworks.length };
}
