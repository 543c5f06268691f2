/**
 * Validating the LAUNCH operations of an ACCEPT call, as Mesos's master does in `accept()` /
 * `_accept()`: first the offers as a whole, then each task against what is left of them.
 *
 * Why this shape: an ACCEPT may be redelivered, may name offers that have since expired or been
 * rescinded, and comes from a framework that may be buggy or hostile. Principle 8 says bad input
 * gets a clear answer and changes nothing, so every task gets exactly one outcome — launched, or
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
 */
import type { TaskReason } from '../protocol/common.ts';
import { add, contains, EMPTY, format, type Resources, subtract } from './resources.ts';

/** An offer named by the ACCEPT, as recorded. */
export interface AcceptedOffer {
  readonly offerId: string;
  readonly agentId: string;
  readonly frameworkId: string;
  readonly resources: Resources;
  /** ms since the epoch; the offer is expired when `expiresAt <= now`. */
  readonly expiresAt: number;
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

/**
 * Decides, for each task of an ACCEPT's LAUNCH operations, whether it launches or is rejected,
 * and what is left of the offers afterwards.
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
  const { frameworkId, now, offers, tasks, existingTaskIds } = input;

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
    };
  }

  const offered = left;
  const launched: LaunchedTask[] = [];
  const rejected: RejectedTask[] = [];
  const seen = new Set<string>();
  const error = (taskId: string, reason: TaskReason, message: string): void => {
    rejected.push({ taskId, state: 'TASK_ERROR', reason, message });
  };
  for (const t of tasks) {
    const twice = seen.has(t.taskId);
    seen.add(t.taskId);
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
    } else if (t.resources.cpus === 0 && t.resources.mem === 0) {
      error(t.taskId, 'REASON_TASK_INVALID', `task ${t.taskId} asks for no cpus and no mem`);
    } else if (!contains(left, t.resources)) {
      error(
        t.taskId,
        'REASON_TASK_INVALID',
        `task ${t.taskId} asks for ${format(t.resources)} but only ${format(left)} is left of the offered ${format(offered)}`,
      );
    } else {
      left = subtract(left, t.resources);
      launched.push({ taskId: t.taskId, resources: t.resources });
    }
  }
  return { launched, rejected, remaining: left, agentId: agentId!, consumedOfferIds };
}
