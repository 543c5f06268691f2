/**
 * An ACCEPT decided on the agent record it names, as one pure step: the agent's next ledger, the
 * tasks to launch, the tasks and operations refused, and the refusal filter for what the offers
 * held beyond the launches. The control plane reads the records, calls this, writes the result
 * conditionally and sends the notices (lib/control/scheduler/accept.ts) — the same one-way shape
 * as an allocation cycle.
 */
import { type AcceptOperation, type RejectedTask, validateAccept } from './accept.ts';
import { type SpentLedger, spendAccept } from './ledger.ts';
import type { AgentRecord, TaskRecord } from './model.ts';
import { isEmpty, type Resources } from './resources.ts';

export interface PlanAcceptInput {
  readonly frameworkId: string;
  readonly agent: AgentRecord;
  /** The offers the ACCEPT names, in its order. */
  readonly offerIds: readonly string[];
  readonly operations: readonly AcceptOperation[];
  /** The rows the framework already has under the ids the ACCEPT launches (undefined: none). */
  readonly existing: readonly (TaskRecord | undefined)[];
  readonly now: number;
  /** How long what the offers held beyond the launches is refused to the framework (0: not at all). */
  readonly refuseSeconds: number;
}

/** A task of an ACCEPT that was not launched, and why. */
export interface AcceptRejection extends RejectedTask {
  readonly agentId: string;
}

/** A refusal filter to set on the framework: not offered `agentId` for `seconds` unless more than `resources` is free. */
export interface FilterChange {
  readonly agentId: string;
  readonly resources: Resources;
  readonly seconds: number;
}

export type AcceptPlan =
  /** Redelivered after its write: its offers are gone and its tasks are rows with one of them. */
  | { readonly kind: 'again'; readonly tasks: readonly TaskRecord[] }
  | {
      readonly kind: 'decided';
      /** The agent's next ledger; absent when the ACCEPT consumes no offer (nothing to write). */
      readonly ledger?: SpentLedger;
      readonly launched: readonly { readonly taskId: string; readonly resources: Resources }[];
      /** The role the launched tasks count against, and the offer they are recorded with. */
      readonly role: string;
      readonly offerId: string;
      readonly rejected: readonly AcceptRejection[];
      /** RESERVE / UNRESERVE operations dropped, with why. */
      readonly operationErrors: readonly string[];
      readonly filter?: FilterChange;
    };

export function planAccept(input: PlanAcceptInput): AcceptPlan {
  const { frameworkId, agent, offerIds, operations, existing, now } = input;
  const offers = offerIds.map((id) => agent.offers[id]);
  const applied = existing.filter((t): t is TaskRecord => !!t && offerIds.includes(t.offerId));
  if (offers.every((o) => !o) && applied.length > 0) return { kind: 'again', tasks: applied };

  const result = validateAccept({
    frameworkId,
    now,
    offers: offerIds.map((id, i) => {
      const o = offers[i];
      return o ? { ...o, agentId: agent.agentId } : { offerId: id, missing: 'unknown' as const };
    }),
    operations,
    existingTaskIds: new Set(existing.filter((t) => !!t).map((t) => t!.taskId)),
    ...(agent.dynamicReservations ? { dynamicReservations: agent.dynamicReservations } : {}),
  });
  const named = new Map<string, string>();
  for (const op of operations)
    if (op.type === 'LAUNCH') for (const t of op.tasks) named.set(t.taskId, t.agentId);
  const rejected = result.rejected.map((r) => ({ ...r, agentId: named.get(r.taskId) ?? agent.agentId }));
  const consumed = result.consumedOfferIds.length > 0;
  const seconds = input.refuseSeconds;
  const refuse = consumed && !isEmpty(result.remaining) && seconds > 0;
  return {
    kind: 'decided',
    ...(consumed ? { ledger: spendAccept(agent, frameworkId, result, result.launched) } : {}),
    launched: result.launched,
    role: result.role,
    offerId: result.consumedOfferIds[0] ?? offerIds[0]!,
    rejected,
    operationErrors: result.operationErrors,
    ...(refuse ? { filter: { agentId: agent.agentId, resources: result.remaining, seconds } } : {}),
  };
}
