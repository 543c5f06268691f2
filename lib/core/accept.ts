/**
 * Validating the LAUNCH operations of an ACCEPT call, as Mesos's master does in `accept()` /
 * `_accept()`: first the offers as a whole, then each task against what is left of them.
 *
 * Why this shape: an ACCEPT may be redelivered, may name offers that have since expired or been
 * rescinded, and comes from a framework that may be buggy or hostile. Bad input gets a clear answer
 * and changes nothing, so every task gets exactly one outcome — launched, or
 * a TASK_ERROR / TASK_DROPPED update with a Mesos reason and a message that says what was wrong —
 * and the caller learns exactly which offers it may consume and what goes back to the agent.
 *
 * - Offer problems (unknown, rescinded, expired, another framework's, listed twice, or offers on
 *   different agents) make the whole ACCEPT invalid: every task is TASK_DROPPED with
 *   REASON_INVALID_OFFERS (Mesos sends TASK_DROPPED to partition-aware frameworks; Meso uses it
 *   for all, since the task was never launched and never will be). The caller's own unexpired
 *   offers are still consumed and their resources returned, as Mesos recovers them, so a bad
 *   ACCEPT does not strand resources until the offers time out — unless they span agents, in
 *   which case nothing is consumed and they expire normally.
 * - Task problems are per task: TASK_ERROR with REASON_DUPLICATE_TASK_ID or REASON_TASK_INVALID.
 *   Tasks are checked in order, each against what earlier tasks left of the offers, so the
 *   outcome does not depend on anything but the call itself and the recorded state.
 * - Operations apply in order (Mesos): RESERVE turns offered unreserved resources into resources
 *   reserved for the offer's role or a role below it, UNRESERVE turns offered dynamically reserved
 *   ones back, and a later LAUNCH sees the result. A RESERVE or UNRESERVE that is not allowed
 *   (another role's reservation, more than is offered, a static reservation) is dropped with a
 *   reason and the others go on, as Mesos drops an invalid operation.
 * - A task asking for plain quantities (`cpus:1`) may run on reserved resources of the offer:
 *   `claim` picks them (reservations first, nearest role first), and the task record holds the
 *   exact resources, so they return to the right reservation when it ends.
 */
import type { TaskReason } from '../protocol/common.ts';
import {
  ANY_ROLE,
  add,
  claim,
  contains,
  EMPTY,
  flatten,
  format,
  type Resources,
  subtract,
  unreserved,
} from './resources.ts';
import { isWithinRole, roleAndAncestors } from './sorter/hierarchical.ts';

/** An offer named by the ACCEPT, as recorded. */
export interface AcceptedOffer {
  readonly offerId: string;
  readonly agentId: string;
  readonly frameworkId: string;
  readonly resources: Resources;
  /** ms since the epoch; the offer is expired when `expiresAt <= now`. */
  readonly expiresAt: number;
  /** The role the offer is allocated to (default `*`). */
  readonly role?: string;
}

/** An offer named by the ACCEPT that no longer (or never) exists. */
export interface MissingOffer {
  readonly offerId: string;
  /** Why it is missing, for the message: never issued (or long gone), or rescinded by Meso. */
  readonly missing: 'unknown' | 'rescinded';
}

export type OfferLookup = AcceptedOffer | MissingOffer;

export interface LaunchTask {
  readonly taskId: string;
  readonly agentId: string;
  readonly resources: Resources;
}

export interface ValidateLaunchInput {
  /** The framework making the call (already authenticated by the caller). */
  readonly frameworkId: string;
  /** ms since the epoch. */
  readonly now: number;
  /** The offers the ACCEPT names, in the order it names them. */
  readonly offers: readonly OfferLookup[];
  /** The tasks of its LAUNCH operations, in order. */
  readonly tasks: readonly LaunchTask[];
  /** Task ids the framework already has (any state still recorded). */
  readonly existingTaskIds: ReadonlySet<string>;
}

export interface LaunchedTask {
  readonly taskId: string;
  readonly resources: Resources;
}

export interface RejectedTask {
  readonly taskId: string;
  readonly state: 'TASK_ERROR' | 'TASK_DROPPED';
  readonly reason: TaskReason;
  readonly message: string;
}

export interface LaunchDecision {
  readonly launched: LaunchedTask[];
  readonly rejected: RejectedTask[];
  /** What the consumed offers held minus what was launched: goes back to the agent's free resources. */
  readonly remaining: Resources;
  /** The agent the consumed offers are on (absent when nothing is consumed). */
  readonly agentId?: string;
  /** The offers this ACCEPT consumes: remove them from the agent record. */
  readonly consumedOfferIds: string[];
}

function isMissing(o: OfferLookup): o is MissingOffer {
  return 'missing' in o;
}

/** An operation of an ACCEPT, with resources in the core's form. */
export type AcceptOperation =
  | { readonly type: 'LAUNCH'; readonly tasks: readonly LaunchTask[] }
  | { readonly type: 'RESERVE'; readonly resources: Resources }
  | { readonly type: 'UNRESERVE'; readonly resources: Resources };

export interface ValidateAcceptInput extends Omit<ValidateLaunchInput, 'tasks'> {
  readonly operations: readonly AcceptOperation[];
  /** Dynamic reservations on the agent now: UNRESERVE may only undo these. */
  readonly dynamicReservations?: Resources;
}

export interface AcceptDecision extends LaunchDecision {
  /** The role the consumed offers are allocated to (tasks launched count against it). */
  readonly role: string;
  /** What RESERVE operations reserved (in reserved form). */
  readonly reserved: Resources;
  /** What UNRESERVE operations gave back (in reserved form, as it was). */
  readonly unreserved: Resources;
  /** RESERVE / UNRESERVE operations dropped, with why. */
  readonly operationErrors: string[];
}

/** A reservation request must be reserved parts only, each for `role` or a role below it. */
function reservationProblem(r: Resources, role: string, verb: string): string | undefined {
  if (!contains(EMPTY, unreserved(r)))
    return `${verb} names unreserved resources (${format(unreserved(r))}); write them as reserved for a role`;
  const roles = Object.keys(r.reserved ?? {});
  if (roles.length === 0) return `${verb} names no resources`;
  for (const k of roles) {
    if (!isWithinRole(k, role) || role === ANY_ROLE)
      return `${verb} for role ${k} is not allowed with an offer allocated to role ${role} (only that role or a role below it)`;
  }
  return undefined;
}

/**
 * Decides an ACCEPT: which offers it consumes, what its RESERVE and UNRESERVE operations change
 * and which of its tasks launch, and what is left of the offers afterwards.
 *
 * @example
 * const d = validateAccept({
 *   frameworkId: 'f1', now, existingTaskIds: new Set(),
 *   offers: [{ offerId: 'o1', agentId: 'a1', frameworkId: 'f1', role: 'eng', resources: parse('cpus:4'), expiresAt }],
 *   operations: [
 *     { type: 'RESERVE', resources: parse('cpus(eng):2') },
 *     { type: 'LAUNCH', tasks: [{ taskId: 't1', agentId: 'a1', resources: parse('cpus:1') }] },
 *   ],
 * });
 * // d.reserved: cpus(eng):2; t1 runs on cpus(eng):1; d.remaining: cpus:2;cpus(eng):1
 */
export function validateAccept(input: ValidateAcceptInput): AcceptDecision {
  const { frameworkId, now, offers, operations, existingTaskIds } = input;
  const tasks = operations.flatMap((op) => (op.type === 'LAUNCH' ? op.tasks : []));

  const problems: string[] = [];
  const own: AcceptedOffer[] = [];
  const agents = new Set<string>();
  const named = new Set<string>();
  if (offers.length === 0) problems.push('the call names no offers');
  for (const o of offers) {
    if (named.has(o.offerId)) {
      problems.push(`offer ${o.offerId} is named twice`);
      continue;
    }
    named.add(o.offerId);
    if (isMissing(o)) {
      problems.push(
        o.missing === 'rescinded' ? `offer ${o.offerId} was rescinded` : `offer ${o.offerId} is unknown`,
      );
      continue;
    }
    agents.add(o.agentId);
    if (o.frameworkId !== frameworkId) {
      problems.push(`offer ${o.offerId} was not made to framework ${frameworkId}`);
      continue;
    }
    if (o.expiresAt <= now) {
      problems.push(`offer ${o.offerId} expired`);
      continue;
    }
    own.push(o);
  }
  if (agents.size > 1) problems.push(`the offers are on different agents (${[...agents].sort().join(', ')})`);
  const roles = new Set(own.map((o) => o.role ?? ANY_ROLE));
  if (roles.size > 1)
    problems.push(`the offers are allocated to different roles (${[...roles].sort().join(', ')})`);
  const role = own[0]?.role ?? ANY_ROLE;

  // What this ACCEPT consumes: the caller's own live offers, when they are all on one agent.
  const ownAgents = new Set(own.map((o) => o.agentId));
  const agentId = ownAgents.size === 1 ? own[0]!.agentId : undefined;
  const consumed = agentId === undefined ? [] : own;
  let left = EMPTY;
  for (const o of consumed) left = add(left, o.resources);
  const consumedOfferIds = consumed.map((o) => o.offerId);

  if (problems.length > 0) {
    const message = `invalid offers: ${problems.join('; ')}`;
    return {
      launched: [],
      rejected: tasks.map((t) => ({
        taskId: t.taskId,
        state: 'TASK_DROPPED',
        reason: 'REASON_INVALID_OFFERS',
        message,
      })),
      remaining: left,
      ...(agentId === undefined ? {} : { agentId }),
      consumedOfferIds,
      role,
      reserved: EMPTY,
      unreserved: EMPTY,
      operationErrors: [],
    };
  }

  const offered = left;
  const launched: LaunchedTask[] = [];
  const rejected: RejectedTask[] = [];
  const operationErrors: string[] = [];
  let reserved = EMPTY;
  let unreservedBack = EMPTY;
  let dynamic = input.dynamicReservations ?? EMPTY;
  const seen = new Set<string>();
  const claimOrder = roleAndAncestors(role);
  const error = (taskId: string, reason: TaskReason, message: string): void => {
    rejected.push({ taskId, state: 'TASK_ERROR', reason, message });
  };
  for (const op of operations) {
    if (op.type === 'RESERVE') {
      const r = op.resources;
      const bad = reservationProblem(r, role, 'RESERVE');
      const plain = flatten(r);
      if (bad) operationErrors.push(bad);
      else if (!contains(unreserved(left), plain))
        operationErrors.push(
          `RESERVE of ${format(r)}: only ${format(unreserved(left))} of the offers is unreserved`,
        );
      else {
        left = add(subtract(left, plain), r);
        reserved = add(reserved, r);
        dynamic = add(dynamic, r);
      }
      continue;
    }
    if (op.type === 'UNRESERVE') {
      const r = op.resources;
      const bad = reservationProblem(r, role, 'UNRESERVE');
      if (bad) operationErrors.push(bad);
      else if (!contains(left, r))
        operationErrors.push(`UNRESERVE of ${format(r)}: the offers hold only ${format(left)}`);
      else if (!contains(dynamic, r))
        operationErrors.push(
          `UNRESERVE of ${format(r)}: only dynamic reservations can be unreserved (static ones are set when the agent starts)`,
        );
      else {
        left = add(subtract(left, r), flatten(r));
        unreservedBack = add(unreservedBack, r);
        dynamic = subtract(dynamic, r);
      }
      continue;
    }
    for (const t of op.tasks) {
      const twice = seen.has(t.taskId);
      seen.add(t.taskId);
      const got = claim(left, t.resources, claimOrder);
      if (twice || existingTaskIds.has(t.taskId)) {
        error(
          t.taskId,
          'REASON_DUPLICATE_TASK_ID',
          twice
            ? `task ${t.taskId} is launched twice in this call`
            : `task ${t.taskId} already exists for framework ${frameworkId}`,
        );
      } else if (t.agentId !== agentId) {
        error(
          t.taskId,
          'REASON_TASK_INVALID',
          `task ${t.taskId} is for agent ${t.agentId} but the offers are on agent ${agentId}`,
        );
      } else if (flatten(t.resources).cpus === 0 && flatten(t.resources).mem === 0) {
        error(t.taskId, 'REASON_TASK_INVALID', `task ${t.taskId} asks for no cpus and no mem`);
      } else if (got === undefined) {
        error(
          t.taskId,
          'REASON_TASK_INVALID',
          `task ${t.taskId} asks for ${format(t.resources)} but only ${format(left)} is left of the offered ${format(offered)}`,
        );
      } else {
        left = subtract(left, got);
        launched.push({ taskId: t.taskId, resources: got });
      }
    }
  }
  return {
    launched,
    rejected,
    remaining: left,
    agentId: agentId!,
    consumedOfferIds,
    role,
    reserved,
    unreserved: unreservedBack,
    operationErrors,
  };
}

/**
 * Decides, for each task of an ACCEPT's LAUNCH operations, whether it launches or is rejected,
 * and what is left of the offers afterwards ({@link validateAccept} with one LAUNCH).
 *
 * @example
 * const decision = validateLaunch({
 *   frameworkId: 'f1',
 *   now: clock.now(),
 *   offers: [{ offerId: 'o1', agentId: 'a1', frameworkId: 'f1', resources: parse('cpus:4;mem:4096'), expiresAt }],
 *   tasks: [{ taskId: 't1', agentId: 'a1', resources: parse('cpus:1;mem:512') }],
 *   existingTaskIds: new Set(),
 * });
 * // decision.launched: [{ taskId: 't1', ... }], decision.remaining: cpus:3;mem:3584
 */
export function validateLaunch(input: ValidateLaunchInput): LaunchDecision {
  const { tasks, ...rest } = input;
  const d = validateAccept({ ...rest, operations: [{ type: 'LAUNCH', tasks }] });
  return {
    launched: d.launched,
    rejected: d.rejected,
    remaining: d.remaining,
    ...(d.agentId === undefined ? {} : { agentId: d.agentId }),
    consumedOfferIds: d.consumedOfferIds,
  };
}

/**
 * An agent's total after reservations change: `reserved` (reserved form) is carved out of the
 * unreserved part, `unreserved` goes back to it.
 */
export function applyReservations(
  total: Resources,
  reserved: Resources,
  unreservedBack: Resources,
): Resources {
  return add(
    subtract(add(subtract(total, flatten(reserved)), reserved), unreservedBack),
    flatten(unreservedBack),
  );
}

/**
 * The total of an agent that registers with `registered` (its static resources) while holding
 * `dynamic` reservations: they are carved out of the registered unreserved resources again.
 * Whatever no longer fits (the agent came back smaller) is dropped from the dynamic reservations.
 */
export function withDynamicReservations(
  registered: Resources,
  dynamic: Resources | undefined,
): { total: Resources; dynamic: Resources } {
  if (!dynamic || Object.keys(dynamic.reserved ?? {}).length === 0)
    return { total: registered, dynamic: EMPTY };
  if (contains(unreserved(registered), flatten(dynamic)))
    return { total: applyReservations(registered, dynamic, EMPTY), dynamic };
  return { total: registered, dynamic: EMPTY };
}

/**
 * The `total` (and `dynamicReservations`) of an agent record when the agent registers with
 * `registered` resources while holding `dynamic` reservations: spread it into the record.
 *
 * @example
 * const next = { ...existing, ...registeredTotal(fromWire(call.resources), existing?.dynamicReservations) };
 */
export function registeredTotal(
  registered: Resources,
  dynamic: Resources | undefined,
): { total: Resources; dynamicReservations: Resources | undefined } {
  const { total, dynamic: kept } = withDynamicReservations(registered, dynamic);
  // Undefined (not absent) so that it replaces a spread record's old value.
  return { total, dynamicReservations: kept.reserved === undefined ? undefined : kept };
}
