/**
 * Operator commands: role weights and quotas, the roles report, draining and deactivating agents,
 * and `explain`. Operators have table access, so these read and write DynamoDB directly (through
 * the same Store port and conditional writes as the control plane) and then nudge the allocator,
 * which applies the change at its next cycle. The CLI (`lib/cli/operator.ts`) is a thin shell
 * over these functions; tests call them over the emulators.
 */
import {
  type Explanation,
  explain,
  type RoleSummary,
  type Subject,
  summarizeRoles,
} from '../core/explain.ts';
import type { AgentRecord, FrameworkRecord, OperatorAgentStatus, RoleRecord } from '../core/model.ts';
import { add, EMPTY, type Resources } from '../core/resources.ts';
import type { Item } from '../ports/store.ts';
import { buildAllocationInput, readCycleRecords, rescindOffer, roleOfRecord } from './allocation.ts';
import { aclRefusal } from './authorize.ts';
import type { ControlDeps } from './deps.ts';
import { nudgeAllocator } from './emit.ts';
import { updateAgent } from './records/agents.ts';
import { type RoleChange, setRole } from './roles.ts';

export class OperatorError extends Error {
  override name = 'OperatorError';
}

/** The operator calls, by the names the ACL `operator_calls` uses (Mesos's where it has one). */
export type OperatorCall =
  | 'ROLES_SET'
  | 'DRAIN_AGENT'
  | 'DEACTIVATE_AGENT'
  | 'REACTIVATE_AGENT'
  | 'MARK_AGENT_GONE';

/**
 * Throws an OperatorError (FORBIDDEN, naming the rule) unless the ACL `operator_calls` lets
 * `principal` make `call`. With no ACL document stored, operators may (their IAM access to the
 * tables is what lets them run these at all); a document can narrow that, e.g. to keep a CI
 * identity that may write the tables from draining agents. No principal: not checked.
 */
export async function authorizeOperator(
  deps: Pick<ControlDeps, 'store' | 'config'>,
  principal: string | undefined,
  call: OperatorCall,
): Promise<void> {
  if (principal === undefined) return;
  const refused = await aclRefusal(deps, principal, [{ action: 'operator_calls', object: call }]);
  if (refused) throw new OperatorError(`FORBIDDEN: ${refused}`);
}

/**
 * Sets (or clears, with null) a role's weight, guarantee, limit or minimum offer; the allocator
 * uses it from its next cycle. Throws RoleSettingsError when the roles would not be consistent.
 *
 * @example
 * await setRoleSettings(deps, 'eng', { weight: 2, guarantee: parseQuantities('cpus:10;mem:20480') });
 */
export async function setRoleSettings(
  deps: ControlDeps,
  role: string,
  change: RoleChange,
  by?: string,
): Promise<RoleRecord | undefined> {
  await authorizeOperator(deps, by, 'ROLES_SET');
  const record = await setRole(deps.store, role, change, deps.clock.now());
  await nudgeAllocator(deps, `role ${role} changed`);
  return record;
}

/** Every role with its allocated, offered, reserved and guaranteed resources and its DRF share. */
export async function showRoles(deps: ControlDeps): Promise<RoleSummary[]> {
  const records = await readCycleRecords(deps);
  const input = buildAllocationInput(records, { now: deps.clock.now() });
  const fwById = new Map(records.frameworks.map((f) => [f.frameworkId, f]));
  const offered = new Map<string, Resources>();
  for (const a of records.agents) {
    for (const o of Object.values(a.offers)) {
      const role = roleOfRecord(o.role, fwById.get(o.frameworkId));
      offered.set(role, add(offered.get(role) ?? EMPTY, o.resources));
    }
  }
  return summarizeRoles(input, Object.fromEntries(offered));
}

export type AgentMode = OperatorAgentStatus | 'ACTIVE';

export interface AgentModeResult {
  readonly agent: AgentRecord;
  /** Outstanding offers taken back (draining and deactivating rescind them). */
  readonly rescinded: number;
  /** Tasks still running on it (they are left alone). */
  readonly tasks: number;
}

/**
 * Marks an agent DRAINING (maintenance ahead: no new offers, its running tasks stay until they
 * end), DEACTIVATED (no new offers) or back to ACTIVE (REACTIVATE). Outstanding offers on a
 * drained or deactivated agent are rescinded so nothing new lands there.
 *
 * @example
 * const { rescinded, tasks } = await setAgentMode(deps, 'agent-7', 'DRAINING');
 */
export async function setAgentMode(
  deps: ControlDeps,
  agentId: string,
  mode: AgentMode,
  by?: string,
): Promise<AgentModeResult> {
  await authorizeOperator(
    deps,
    by,
    mode === 'ACTIVE' ? 'REACTIVATE_AGENT' : mode === 'DRAINING' ? 'DRAIN_AGENT' : 'DEACTIVATE_AGENT',
  );
  const agent = await updateAgent(deps.store, agentId, (a) => {
    if (!a) throw new OperatorError(`agent ${agentId} is not registered`);
    const operatorStatus = mode === 'ACTIVE' ? null : mode;
    if ((a.operatorStatus ?? null) === operatorStatus) return { result: a };
    return { set: { operatorStatus }, result: { ...a, operatorStatus, version: a.version + 1 } };
  });
  let rescinded = 0;
  if (mode !== 'ACTIVE') {
    for (const id of Object.keys(agent.offers)) rescinded += (await rescindOffer(deps, agentId, id)) ? 1 : 0;
  }
  await nudgeAllocator(
    deps,
    `agent ${agentId} ${mode.toLowerCase()}`,
    deps.config.shards > 1 ? [agent.shard] : undefined,
  );
  deps.log.info('agent mode set by an operator', { agentId, mode, rescinded });
  return { agent, rescinded, tasks: Object.keys(agent.tasks).length };
}

export interface ExplainResult {
  readonly explanation: Explanation;
  /** Offers each framework explained holds now (not yet accepted, declined or expired). */
  readonly outstanding: Readonly<Record<string, { count: number; firstExpiry?: number }>>;
}

/**
 * Why a framework (or the frameworks of a role) is not getting offers right now: the allocator's
 * own cycle over the current records, with a trace (lib/core/explain.ts).
 *
 * @example
 * const { explanation } = await explainNow(deps, { framework: 'f1' });
 */
export async function explainNow(deps: ControlDeps, subject: Subject): Promise<ExplainResult> {
  const records = await readCycleRecords(deps);
  const input = buildAllocationInput(records, { now: deps.clock.now() });
  const explanation = explain(input, subject);
  const wanted = new Set(explanation.frameworks.map((f) => f.frameworkId));
  const outstanding: Record<string, { count: number; firstExpiry?: number }> = {};
  for (const a of records.agents) {
    for (const o of Object.values(a.offers)) {
      if (!wanted.has(o.frameworkId)) continue;
      const e = outstanding[o.frameworkId] ?? { count: 0 };
      e.count++;
      e.firstExpiry = Math.min(e.firstExpiry ?? Number.POSITIVE_INFINITY, o.expiresAt);
      outstanding[o.frameworkId] = e;
    }
  }
  return { explanation, outstanding };
}

/** Whether `name` is a known framework id (else `meso explain` treats it as a role). */
export async function isFramework(deps: ControlDeps, name: string): Promise<boolean> {
  return (await deps.store.get<FrameworkRecord & Item>('frameworks', { frameworkId: name })) !== undefined;
}
