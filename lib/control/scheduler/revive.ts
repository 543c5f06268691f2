/**
 * REVIVE: clears the framework's refusal filters and ends a SUPPRESS, for the roles named
 * (default: all its roles). Filters are per framework and agent, so they are all cleared.
 */
import { revive as revived } from '../../core/framework-change.ts';
import type { FrameworkRecord } from '../../core/model.ts';
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator } from '../emit.ts';
import { updateFramework } from '../records/frameworks.ts';

export async function revive(
  deps: ControlDeps,
  _record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'REVIVE'>,
): Promise<void> {
  await updateFramework(deps.store, fw.frameworkId, (cur) => ({
    set: revived(cur ?? fw, call.roles),
    result: undefined,
  }));
  await nudgeAllocator(deps, `revive by ${fw.frameworkId}`);
}
