/**
 * ACKNOWLEDGE: the hottest call there is (one per status update), and it changes nothing in Meso:
 * it is forwarded to the agent, which matches it against the update it sent. So it is authorized
 * and routed from cached routes (lib/control/records/routes.ts). It goes only to the agent the task
 * was launched on (cached too: a task never moves): naming another agent would tell that agent
 * the framework's id, the task's and the uuid.
 */
import type { CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { sendToAgent } from '../emit.ts';
import { identityProblem } from '../identity.ts';
import { agentRoute, frameworkRoute, taskAgent } from '../records/routes.ts';
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
  const holder = await taskAgent(deps.store, call.frameworkId, call.taskId, now);
  if (holder !== call.agentId) {
    return reject(deps, 'scheduler-calls', record, {
      code: 'UNKNOWN_TASK',
      message:
        holder === undefined
          ? `task ${call.taskId} of framework ${call.frameworkId} is unknown`
          : `task ${call.taskId} is not on agent ${call.agentId}`,
      call: 'ACKNOWLEDGE',
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    });
  }
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
      // Names the call: its redelivery is dropped by SQS, while a new ACKNOWLEDGE of the same
      // update (the framework answering the agent's resend, because the first never reached
      // the agent's update manager) gets through instead of being dropped for five minutes.
      dedupId: `ack.${call.uuid}.${record.messageId}`,
    },
  ]);
}
