/**
 * SUPPRESS: no offers to the framework in the roles named (default: all its roles) until REVIVE.
 * Outstanding offers stay (as in Mesos); the framework declines them if it wants none.
 */
import { suppress as suppressed } from '../../core/framework-change.ts';
import type { FrameworkRecord } from '../../core/model.ts';
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { updateFramework } from '../records/frameworks.ts';

export async function suppress(
  deps: ControlDeps,
  _record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<'SUPPRESS'>,
): Promise<void> {
  await updateFramework(deps.store, fw.frameworkId, (cur) => ({
    set: suppressed(cur ?? fw, call.roles),
    result: undefined,
  }));
  deps.metrics.count('FrameworksSuppressed');
}
