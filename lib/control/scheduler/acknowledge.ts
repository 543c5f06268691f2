/**
 * ACKNOWLEDGE: the hottest call there is (one per status update), and it changes nothing in Meso:
 * it is forwarded to the agent, which matches it against the update it sent. So it is authorized
 * and routed from cached routes (lib/control/records/routes.ts). It goes only to the agent the task
 * was launched on (cached too: a task never moves): naming another agent would tell that agent
 * the framework's id, the task's and the uuid.
 *
 * An ACKNOWLEDGE may carry several acknowledgements (`acks`): each is checked on its own, those
 * that pass reach their agents as one ACKNOWLEDGE per agent, and those that do not (a task the
 * framework does not have on the agent named, an unknown agent) are answered with one ERROR that
 * names them, and nothing is forwarded for them. A repeated entry is forwarded once.
 */
import type { AckEntry, CallOf } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { sendToAgent } from '../emit.ts';
import { identityProblem } from '../identity.ts';
import {
  type AgentRoute,
  agentRoute,
  type FrameworkRoute,
  frameworkRoute,
  taskAgent,
} from '../records/routes.ts';
import { type RejectCode, reject } from '../reject.ts';

/** Refused entries named in the ERROR, at most. */
const REFUSED_SHOWN = 5;

export async function acknowledge(
  deps: ControlDeps,
  record: InboundRecord,
  call: CallOf<'ACKNOWLEDGE'>,
): Promise<void> {
  const now = deps.clock.now();
  const fw = await frameworkRoute(deps.store, call.frameworkId, now);
  const denied = identityProblem('framework', call.frameworkId, fw, record, 'ACKNOWLEDGE');
  if (denied || !fw) return reject(deps, 'scheduler-calls', record, denied!);
  if (call.acks !== undefined) return acknowledgeSeveral(deps, record, fw, call.acks, now);
  const { agentId, taskId, uuid } = call;
  // The schema requires all three without `acks`.
  if (agentId === undefined || taskId === undefined || uuid === undefined) return;
  const problem = await entryProblem(deps, fw, { agentId, taskId, uuid }, now);
  if ('code' in problem) {
    return reject(deps, 'scheduler-calls', record, {
      ...problem,
      call: 'ACKNOWLEDGE',
      replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
    });
  }
  await sendToAgent(deps, problem.queueUrl, [
    {
      command: { v: 1, type: 'ACKNOWLEDGE', frameworkId: fw.frameworkId, taskId, uuid },
      // Names the call: its redelivery is dropped by SQS, while a new ACKNOWLEDGE of the same
      // update (the framework answering the agent's resend, because the first never reached
      // the agent's update manager) gets through instead of being dropped for five minutes.
      dedupId: `ack.${uuid}.${record.messageId}`,
    },
  ]);
}

/** The agent to forward an acknowledgement to, or why it is not forwarded. */
async function entryProblem(
  deps: ControlDeps,
  fw: FrameworkRoute,
  { agentId, taskId }: AckEntry,
  now: number,
): Promise<AgentRoute | { code: RejectCode; message: string }> {
  const holder = await taskAgent(deps.store, fw.frameworkId, taskId, now);
  if (holder !== agentId) {
    return {
      code: 'UNKNOWN_TASK',
      message:
        holder === undefined
          ? `task ${taskId} of framework ${fw.frameworkId} is unknown`
          : `task ${taskId} is not on agent ${agentId}`,
    };
  }
  const agent = await agentRoute(deps.store, agentId, now);
  return agent ?? { code: 'UNKNOWN_AGENT', message: `agent ${agentId} is unknown` };
}

async function acknowledgeSeveral(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRoute,
  acks: readonly AckEntry[],
  now: number,
): Promise<void> {
  const unique = new Map<string, AckEntry>();
  for (const a of acks) unique.set(`${a.agentId}\u0000${a.taskId}\u0000${a.uuid}`, a);
  const checked = await Promise.all(
    [...unique.values()].map(async (a) => ({ a, to: await entryProblem(deps, fw, a, now) })),
  );
  const perAgent = new Map<string, { queueUrl: string; acks: { taskId: string; uuid: string }[] }>();
  const refused: { code: RejectCode; message: string }[] = [];
  for (const { a, to } of checked) {
    if ('code' in to) {
      refused.push(to);
      continue;
    }
    const entry = perAgent.get(to.agentId) ?? { queueUrl: to.queueUrl, acks: [] };
    entry.acks.push({ taskId: a.taskId, uuid: a.uuid });
    perAgent.set(to.agentId, entry);
  }
  await Promise.all(
    [...perAgent.values()].map(({ queueUrl, acks: forAgent }) =>
      sendToAgent(deps, queueUrl, [
        {
          command: { v: 1, type: 'ACKNOWLEDGE', frameworkId: fw.frameworkId, acks: forAgent },
          // Names the call, as for one acknowledgement (each agent has its own queue).
          dedupId: `acks.${record.messageId}`,
        },
      ]),
    ),
  );
  if (refused.length === 0) return;
  deps.metrics.count('RefusedAcknowledgements', { code: refused[0]!.code }, refused.length);
  const shown = refused.slice(0, REFUSED_SHOWN).map((r) => r.message);
  const more = refused.length > REFUSED_SHOWN ? `; and ${refused.length - REFUSED_SHOWN} more` : '';
  await reject(deps, 'scheduler-calls', record, {
    code: refused[0]!.code,
    message: `${refused.length} of ${acks.length} acknowledgements not forwarded: ${shown.join('; ')}${more}`,
    call: 'ACKNOWLEDGE',
    replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
  });
}
