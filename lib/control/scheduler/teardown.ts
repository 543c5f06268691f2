import type { FrameworkRecord } from '../../core/model.ts';
import type { CallOf } from '../../protocol/index.ts';
import { aclRefusal, forbidden } from '../authorize.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { removeFramework } from '../failover.ts';
import { reject } from '../reject.ts';

/** TEARDOWN: the framework is removed at once, its tasks killed (lib/control/failover.ts). */
export async function teardown(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  _call: CallOf<'TEARDOWN'>,
): Promise<void> {
  // ACL teardown_frameworks: whose frameworks this principal may tear down (here: its own).
  const refused = await aclRefusal(deps, record.senderId, [
    { action: 'teardown_frameworks', object: fw.principal },
  ]);
  if (refused)
    return reject(
      deps,
      'scheduler-calls',
      record,
      forbidden(refused, 'TEARDOWN', { kind: 'framework', queueUrl: fw.queueUrl }),
    );
  const outcome = await removeFramework(deps, fw.frameworkId, 'teardown', `teardown.${record.messageId}`);
  if (outcome === 'removed') deps.metrics.count('FrameworksTornDown');
}
