/**
 * The registry's half for agents: REGISTER, HEARTBEAT, STATUS_UPDATE, LATEST_STATE and LOGS on
 * the `agent-calls` queue. A call is parsed, its sender checked against the identity that registered the agent
 * (from a cached route: who owns the agent, where its queue is), and handed to its own module
 * under lib/control/agent/ by the table below.
 *
 * A new call: its schema in lib/protocol/agent.ts, a module there named after it exporting an
 * `AgentCallHandler`, and one line in `CALLS`.
 */
import { type AgentCallOf, AgentCallSchema, parseMessage } from '../protocol/index.ts';
import { heartbeat } from './agent/heartbeat.ts';
import { latestState } from './agent/latest-state.ts';
import { register } from './agent/register.ts';
import { statusUpdate } from './agent/status-update.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { agentCallGroups, groupProblem } from './groups.ts';
import { identityProblem } from './identity.ts';
import { logsFromAgent } from './logs.ts';
import { getAgent } from './records/agents.ts';
import { type AgentRoute, agentRoute } from './records/routes.ts';
import { ownQueueUrlProblem, type Rejection, reject } from './reject.ts';

/** Calls of a registered agent, made by its owner. */
type Bound = 'HEARTBEAT' | 'STATUS_UPDATE' | 'LATEST_STATE' | 'LOGS';
export type AgentCallHandler<K extends Bound> = (
  deps: ControlDeps,
  record: InboundRecord,
  agent: AgentRoute,
  call: AgentCallOf<K>,
) => Promise<void>;

const CALLS: { readonly [K in Bound]: AgentCallHandler<K> } = {
  HEARTBEAT: heartbeat,
  STATUS_UPDATE: statusUpdate,
  LATEST_STATE: latestState,
  LOGS: logsFromAgent,
};

const CALL_TYPES: readonly string[] = ['REGISTER', ...Object.keys(CALLS)];

export async function handleAgentCall(deps: ControlDeps, record: InboundRecord): Promise<void> {
  const parsed = parseMessage(AgentCallSchema, record.body, CALL_TYPES);
  if (!parsed.ok) {
    const raw = (parsed.raw ?? {}) as Record<string, unknown>;
    const agent =
      typeof raw.agentId === 'string'
        ? await getAgent(deps.store, raw.agentId).catch(() => undefined)
        : undefined;
    // An id no one holds yet: only the queue derived from it, never another agent's.
    const replyTo: Rejection['replyTo'] =
      agent && agent.principal === record.senderId
        ? { kind: 'agent', queueUrl: agent.queueUrl }
        : !agent &&
            raw.type === 'REGISTER' &&
            typeof raw.agentId === 'string' &&
            typeof raw.queueUrl === 'string' &&
            !ownQueueUrlProblem(deps.config, 'agent', raw.queueUrl, raw.agentId)
          ? { kind: 'agent', queueUrl: raw.queueUrl }
          : undefined;
    return reject(deps, 'agent-calls', record, {
      code: parsed.code,
      message: parsed.error,
      call: typeof raw.type === 'string' ? raw.type : undefined,
      replyTo,
    });
  }
  const call = parsed.message;
  // Only in a group of the agent it names: never queued behind (or blocking) another's calls.
  const wrongGroup = groupProblem('agent', record, agentCallGroups(call));
  if (wrongGroup) {
    const known = await getAgent(deps.store, call.agentId).catch(() => undefined);
    return reject(deps, 'agent-calls', record, {
      code: 'WRONG_GROUP',
      message: wrongGroup,
      call: call.type,
      ...(known && known.principal === record.senderId
        ? { replyTo: { kind: 'agent' as const, queueUrl: known.queueUrl } }
        : {}),
    });
  }
  // REGISTER binds the id itself.
  if (call.type === 'REGISTER') return register(deps, record, call);
  const agent = await agentRoute(deps.store, call.agentId, deps.clock.now());
  const denied = identityProblem('agent', call.agentId, agent, record, call.type);
  if (denied || !agent) return reject(deps, 'agent-calls', record, denied!);
  return (CALLS[call.type] as AgentCallHandler<Bound>)(deps, record, agent, call as AgentCallOf<Bound>);
}
