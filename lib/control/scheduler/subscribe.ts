/**
 * SUBSCRIBE: binds a framework id to the identity that sends it (or, from that identity again, a
 * failover: the framework comes back, perhaps from a new queue). The old queue hears "Framework
 * failed over" through the outbox of the same write; the framework's old offers are rescinded
 * when its queue changed and the latest state of its tasks is sent again (lib/control/failover.ts).
 */
import type { FrameworkRecord } from '../../core/model.ts';
import { fromWire, type Resources } from '../../core/resources.ts';
import type { Item } from '../../ports/store.ts';
import type { CallOf, SchedulerEvent } from '../../protocol/index.ts';
import { aclRefusal, forbidden } from '../authorize.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { nudgeAllocator, sendToFramework } from '../emit.ts';
import { heartbeatSecondsOf, resendState, startFrameworkCheck, watchedClosely } from '../failover.ts';
import { claimId } from '../id-quota.ts';
import { identityProblem } from '../identity.ts';
import { flushOutbox, type OutboxItem, outboxWrites, toFramework } from '../outbox.ts';
import { updateFramework } from '../records/frameworks.ts';
import { forgetRoute } from '../records/routes.ts';
import type { Change } from '../records/transact.ts';
import { ownQueueUrlProblem, type Rejection, reject } from '../reject.ts';

/** The longest interval between an agent's resends of a status update (Mesos: 10 minutes). */
const MAX_STATUS_RETRY_MS = 10 * 60_000;

type Subscribed = {
  framework: FrameworkRecord;
  /** A framework Meso knew (failover, or a SUBSCRIBE sent again): what the old process must hear. */
  failover?: { items: OutboxItem[]; since: number; newQueue: boolean };
};

export async function subscribe(
  deps: ControlDeps,
  record: InboundRecord,
  call: CallOf<'SUBSCRIBE'>,
): Promise<void> {
  const info = call.framework;
  // Only the queue derived from the id: never another framework's, agent's or host's (a confused deputy).
  const badQueue = ownQueueUrlProblem(deps.config, 'framework', info.queueUrl, info.frameworkId);
  if (badQueue)
    return reject(deps, 'scheduler-calls', record, { code: 'INVALID', message: badQueue, call: 'SUBSCRIBE' });
  // Which roles this principal may register in (ACL register_frameworks), decided before any write.
  const refused = await aclRefusal(
    deps,
    record.senderId,
    info.roles.map((role) => ({ action: 'register_frameworks' as const, object: role })),
  );
  const outcome = await updateFramework(deps.store, info.frameworkId, async (existing) =>
    subscription(
      deps,
      record,
      info,
      existing,
      refused,
      existing ? undefined : await claimId(deps.store, deps.config, 'framework', record.senderId),
    ),
  );
  if ('code' in outcome) return reject(deps, 'scheduler-calls', record, outcome);
  forgetRoute('framework', info.frameworkId); // its queue may have changed (failover)
  await sendToFramework(deps, info.queueUrl, [
    {
      event: {
        v: 1,
        type: 'SUBSCRIBED',
        frameworkId: info.frameworkId,
        heartbeatIntervalSeconds: heartbeatSecondsOf(deps.config, outcome.framework),
      },
      dedupId: `subscribed.${record.messageId}`,
    },
  ]);
  // Its silence is watched from now: a framework that dies before its first HEARTBEAT is noticed too.
  if (watchedClosely(deps.config, outcome.framework)) await startFrameworkCheck(deps, outcome.framework);
  deps.metrics.count('FrameworksSubscribed');
  const { failover } = outcome;
  if (failover) {
    // Its tasks' latest states are sent again. Its offers stay: the queue is derived from the id,
    // so a SUBSCRIBE resent or redelivered to the same process cannot be told from a new process,
    // and rescinding would break the ACCEPTs the process is making of them. Offers an old process
    // took with it expire after the offer timeout. Only a record stored with another queue (the
    // deployment's endpoint or account changed) has its offers rescinded.
    await flushOutbox(deps, failover.items);
    const resent = await resendState(
      deps,
      outcome.framework,
      `resubscribed.${record.messageId}`,
      failover.since,
      { rescindOffers: failover.newQueue },
    );
    deps.log.info('framework re-subscribed', { frameworkId: info.frameworkId, ...resent });
    deps.metrics.count('FrameworksResubscribed');
  }
  await nudgeAllocator(deps, `framework ${info.frameworkId} subscribed`);
}

/** The change SUBSCRIBE makes to the framework's record as read (undefined: a new framework). */
function subscription(
  deps: ControlDeps,
  record: InboundRecord,
  info: CallOf<'SUBSCRIBE'>['framework'],
  existing: FrameworkRecord | undefined,
  refused: string | undefined,
  claim: Awaited<ReturnType<typeof claimId>> | undefined,
): Change<Rejection | Subscribed> {
  const replyTo = { kind: 'framework' as const, queueUrl: info.queueUrl };
  const denied = identityProblem('framework', info.frameworkId, existing, record, 'SUBSCRIBE', {
    claim: true,
    replyTo,
  });
  if (denied) return { result: denied };
  // After the identity check: the ERROR goes to the queue only of an id the sender may claim.
  if (refused) return { result: forbidden(refused, 'SUBSCRIBE', replyTo) };
  if (existing?.status === 'TORN_DOWN') {
    return {
      result: {
        code: 'FRAMEWORK_TORN_DOWN',
        message: `framework ${info.frameworkId} was torn down; subscribe with a new id`,
        call: 'SUBSCRIBE',
        replyTo,
      },
    };
  }
  const now = deps.clock.now();
  const next: FrameworkRecord = {
    frameworkId: info.frameworkId,
    principal: record.senderId,
    name: info.name,
    ...(info.user ? { user: info.user } : {}),
    roles: info.roles,
    ...(info.offerFilters ? { minAllocatable: minAllocatableOf(info.offerFilters) } : {}),
    queueUrl: info.queueUrl,
    status: 'ACTIVE',
    failoverTimeoutSeconds: info.failoverTimeoutSeconds,
    partitionAware: info.partitionAware,
    ...(info.heartbeatIntervalSeconds !== undefined &&
    info.heartbeatIntervalSeconds < deps.config.frameworkHeartbeatSeconds
      ? { heartbeatIntervalSeconds: info.heartbeatIntervalSeconds }
      : {}),
    filters: existing?.filters ?? {},
    subscribedAt: now,
    lastSeenAt: now,
    disconnectedAt: null,
    version: existing?.version ?? 0,
  };
  if (!existing) {
    if (!claim || 'problem' in claim)
      return {
        result: {
          code: 'TOO_MANY_IDS',
          message: claim?.problem ?? 'no id claimed',
          call: 'SUBSCRIBE',
          replyTo,
        },
      };
    return { put: next as unknown as Item, also: [claim.write], result: { framework: next } };
  }
  // Mesos tells the old scheduler "Framework failed over"; its queue gets the ERROR, in the
  // outbox with the change so it is sent even if this handler dies now. Only a record stored with
  // another queue URL (the deployment's origin or account changed) has one: the queue is derived
  // from the id, and an ERROR on the shared queue would reach the new process.
  const newQueue = existing.queueUrl !== info.queueUrl;
  const failedOver: SchedulerEvent = {
    v: 1,
    type: 'ERROR',
    code: 'FRAMEWORK_FAILED_OVER',
    message: 'Framework failed over',
    call: 'SUBSCRIBE',
  };
  const outbox = outboxWrites(
    `failedover.${info.frameworkId}.${record.messageId}`,
    newQueue ? [toFramework(existing.queueUrl, failedOver, `failedover.${record.messageId}`)] : [],
    now,
  );
  return {
    put: next as unknown as Item,
    also: outbox.ops,
    result: {
      framework: next,
      failover: {
        items: outbox.items,
        since: existing.disconnectedAt ?? now - MAX_STATUS_RETRY_MS,
        newQueue,
      },
    },
  };
}

/** FrameworkInfo.offerFilters → per-role minimum offers in the core's form. */
function minAllocatableOf(
  filters: NonNullable<CallOf<'SUBSCRIBE'>['framework']['offerFilters']>,
): Record<string, Resources[]> {
  return Object.fromEntries(
    Object.entries(filters).map(([role, f]) => [role, f.minAllocatableResources.map((w) => fromWire(w))]),
  );
}
