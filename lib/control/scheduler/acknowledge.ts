/**
 * ACKNOWLEDGE: the hottest call there is (one per status update), and it changes nothing in Meso:
 * it is forwarded to the agent, which matches it against the update it sent. So it is authorized
 * and routed from cached routes (lib/control/records/routes.ts), with no reads of the task.
 */
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { sendToAgent } from '../emit.ts';
import { identityProblem } from '../identity.ts';
import { agentRoute, frameworkRoute } from '../records/routes.ts';
import { reject } from '../reject.ts';

export async function acknowledge(
  deps: ControlDeps,
  record: InboundRecord,
  call: CallOf<'ACKNOWLEDGE'>,
): Promise<void> {
  const now = deps.clock.now();
  const fw = await frameworkRoute(deps.store, call.frameworkId, now);
  const denied = identityProblem('framework', call.frameworkId, fw, record, 'ACKNOWLEDGE');
  if (denied || !fw) return reject(deps, 'scheduler-calls', record, denied!);
  const agent = await agentRoute(deps.store, call.agentId, now);
  if (!agent) {
    return reject(deps, 'scheduler-calls', record, {
      code: 'UNKNOWN_AGENT',
      message: `agent ${call.agentId} is unknown`,
      call: 'ACKNOWLEDGE',
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    });
  }
  await sendToAgent(deps, agent.queueUrl, [
    {
      command: {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: fw.frameworkId,
        taskId: call.taskId,
        uuid: call.uuid,
      },
      dedupId: `ack.${call.uuid}`,
    },
  ]);
}
