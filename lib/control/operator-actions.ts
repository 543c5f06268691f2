/**
 * The operator's actions on other people's work: kill a task, tear down a framework. They run the
 * control plane's own code (the KILL and TEARDOWN handlers' logic) with the operator's
 * credentials, after an ACL check: `operator_calls` for the call (KILL_TASK, TEARDOWN) and
 * `teardown_frameworks` for the principal that owns the framework, as Mesos authorizes
 * `/teardown`. A caller with table access is an operator, so the default when no ACLs are stored
 * is to allow (the stored ACLs may restrict it).
 */
import { authorized } from '../control/acl-store.ts';
import { type AclAction, type Acls, OPEN_ACLS } from '../core/acl.ts';
import type { FrameworkRecord, TaskRecord } from '../core/model.ts';
import { isTerminal } from '../core/task-state.ts';
import type { Item } from '../ports/store.ts';
import type { ControlDeps } from './deps.ts';
import { removeFramework } from './failover.ts';
import { OperatorError } from './operator.ts';
import { getFramework } from './records/frameworks.ts';
import { kill } from './scheduler/kill.ts';

/** Who acts, and the ACLs that apply when none are stored (default: the deployment's, `config.acls`). */
export interface OperatorCaller {
  readonly principal: string;
  readonly fallbackAcls?: Acls;
}

/** Refused by the ACLs (HTTP 403, CLI exit status 1). */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

/** Not there (HTTP 404). */
export class NotFoundError extends OperatorError {
  override name = 'NotFoundError';
}

async function check(
  deps: ControlDeps,
  caller: OperatorCaller,
  action: AclAction,
  object: string,
): Promise<void> {
  // With no ACLs stored, the deployment's default applies (closed in AWS but for the deployer's
  // grants), as for the queues' calls (lib/control/authorize.ts).
  const fallback = caller.fallbackAcls ?? deps.config.acls ?? OPEN_ACLS;
  const d = await authorized(deps.store, fallback, action, caller.principal, object);
  if (!d.allowed) {
    deps.metrics.count('OperatorCallsRejected', { call: action });
    throw new ForbiddenError(d.message);
  }
}

async function authorizeOn(deps: ControlDeps, caller: OperatorCaller, call: string, fw: FrameworkRecord) {
  await check(deps, caller, 'operator_calls', call);
  await check(deps, caller, 'teardown_frameworks', fw.principal);
}

/** The task `taskId` (of `frameworkId`, or of whichever framework has one by that id). */
export async function findTasks(
  deps: ControlDeps,
  taskId: string,
  frameworkId?: string,
): Promise<TaskRecord[]> {
  if (frameworkId) {
    const t = await deps.store.get<TaskRecord & Item>('tasks', { frameworkId, taskId });
    return t ? [t] : [];
  }
  return (await deps.store.scan<TaskRecord & Item>('tasks')).filter((t) => t.taskId === taskId);
}

export type KillOutcome = 'kill-sent' | 'already-ended';

/**
 * Kills a task as its framework's KILL would: the agent gets a KILL (with the task's grace
 * period); a task on an unreachable agent is killed when the agent comes back. The framework sees
 * TASK_KILLED as usual.
 *
 * @example
 * await operatorKill(deps, { principal: 'ops' }, 'web-1');
 */
export async function operatorKill(
  deps: ControlDeps,
  caller: OperatorCaller,
  taskId: string,
  frameworkId?: string,
): Promise<{ task: TaskRecord; outcome: KillOutcome }> {
  const found = await findTasks(deps, taskId, frameworkId);
  if (found.length === 0)
    throw new NotFoundError(
      `no task ${taskId}${frameworkId ? ` in framework ${frameworkId}` : ''} is recorded`,
    );
  if (found.length > 1)
    throw new OperatorError(
      `${found.length} frameworks have a task ${taskId} (${found.map((t) => t.frameworkId).join(', ')}): name one with --framework`,
    );
  const task = found[0]!;
  const fw = await getFramework(deps.store, task.frameworkId);
  if (!fw) throw new NotFoundError(`framework ${task.frameworkId} of task ${taskId} is not recorded`);
  await authorizeOn(deps, caller, 'KILL_TASK', fw);
  if (isTerminal(task.state)) return { task, outcome: 'already-ended' };
  const id = deps.ids.next();
  await kill(
    deps,
    { messageId: `operator.${id}`, body: '', senderId: caller.principal, receiveCount: 1 },
    fw,
    { v: 1, type: 'KILL', frameworkId: fw.frameworkId, taskId },
  );
  deps.metrics.count('OperatorKills');
  deps.log.info('task killed by an operator', {
    taskId,
    frameworkId: fw.frameworkId,
    principal: caller.principal,
  });
  return { task, outcome: 'kill-sent' };
}

/**
 * Tears a framework down as its own TEARDOWN would: removed at once, its offers rescinded, its
 * tasks killed, its id refused from now on.
 *
 * @example
 * await operatorTeardown(deps, { principal: 'ops' }, 'f-123');
 */
export async function operatorTeardown(
  deps: ControlDeps,
  caller: OperatorCaller,
  frameworkId: string,
): Promise<{ outcome: 'removed' | 'already-removed'; tasks: number }> {
  const fw = await getFramework(deps.store, frameworkId);
  if (!fw) throw new NotFoundError(`no framework ${frameworkId} is recorded`);
  await authorizeOn(deps, caller, 'TEARDOWN', fw);
  const tasks = (
    await deps.store.query<TaskRecord & Item>('tasks', { name: 'frameworkId', value: frameworkId })
  ).filter((t) => !isTerminal(t.state)).length;
  const outcome = await removeFramework(
    deps,
    frameworkId,
    `teardown by operator ${caller.principal}`,
    `operator-teardown.${frameworkId}`,
  );
  if (outcome === 'unknown') throw new NotFoundError(`no framework ${frameworkId} is recorded`);
  if (outcome === 'removed') deps.metrics.count('FrameworksTornDown');
  deps.log.info('framework torn down by an operator', { frameworkId, principal: caller.principal });
  return { outcome, tasks };
}
