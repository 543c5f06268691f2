import type { FrameworkRecord } from '../../core/model.ts';
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { removeFramework } from '../failover.ts';

/** TEARDOWN: the framework is removed at once, its tasks killed (lib/control/failover.ts). */
export async function teardown(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  _call: CallOf<'TEARDOWN'>,
): Promise<void> {
  const outcome = await removeFramework(deps, fw.frameworkId, 'teardown', `teardown.${record.messageId}`);
  if (outcome === 'removed') deps.metrics.count('FrameworksTornDown');
}
