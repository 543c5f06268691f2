/**
 * The services framework: a Meso framework over the public scheduler protocol whose event queue
 * feeds a handler (a Lambda function in AWS, the local event-source runner in `meso dev`). Each
 * message is handled on its own: load state from the table, decide with the pure reconciler,
 * write the state, then send the calls. A redelivered message decides again from what was
 * written, so it launches nothing twice (an offer used once is declined the second time).
 *
 * Besides Meso's events, the queue takes one message of its own, `APPS_CHANGED`, which the CLI
 * sends after it changed a definition; and `tick()` (a scheduled rule, a timer locally)
 * subscribes when Meso has not been heard from, revives when a backoff ended and reconciles
 * instances that never started.
 */
import { z } from 'zod';
import { PROTOCOL_VERSION, type TaskStatus } from '../../protocol/common.ts';
import { LIMITS } from '../../protocol/limits.ts';
import type { SchedulerEvent } from '../../protocol/scheduler.ts';
import type { Calls } from '../calls.ts';
import {
  acknowledge,
  rolesOf as allRoles,
  answerHeartbeat,
  builtInQueueName,
  declineAll,
  type FrameworkDeps,
  launchOn,
  mesoError,
  newCalls,
  parseIncoming,
  reconcileAll,
  sameRoles,
  subscribe as subscribeWith,
} from '../host/framework.ts';
import { isSilent } from '../host/meta.ts';
import type { AppRecord } from './app.ts';
import type { Instance } from './instance.ts';
import {
  applyStatus,
  endsInstance,
  type Kill,
  nextBackoffEnd,
  planKills,
  planOffers,
  wantsOffers,
} from './reconciler.ts';
import type { ServicesStore } from './store.ts';

export const SERVICES_FRAMEWORK_ID = 'meso-services';

/** Seconds Meso keeps the framework's tasks when it goes silent: a week, as a long-lived Marathon. */
export const SERVICES_FAILOVER_SECONDS = 7 * 86400;

export { CONTACT_TIMEOUT_MS } from '../host/meta.ts';

/** Instances STAGING longer than this are reconciled explicitly by `tick()` (a launch that never reached Meso). */
export const STAGING_RECONCILE_MS = 120_000;

export type { FrameworkLogger } from '../host/framework.ts';

export type ServicesDeps = FrameworkDeps<ServicesStore>;

/** What the CLI sends to the framework's queue after changing a definition. */
export const AppsChangedSchema = z
  .object({ v: z.literal(1), type: z.literal('APPS_CHANGED'), appId: z.string().max(64).optional() })
  .strict();

export const appsChangedMessage = (appId?: string) =>
  JSON.stringify({ v: PROTOCOL_VERSION, type: 'APPS_CHANGED', ...(appId ? { appId } : {}) });

/** Handles one message from the framework's queue; throws only when it should be retried. */
export async function handleServicesMessage(
  deps: ServicesDeps,
  messageId: string,
  body: string,
): Promise<void> {
  const incoming = parseIncoming(deps, messageId, body, {
    schema: AppsChangedSchema,
    type: 'APPS_CHANGED',
    badMessageMetric: 'ServicesBadMessage',
  });
  if (!incoming) return;
  if ('mine' in incoming) return onAppsChanged(deps, messageId);
  await onEvent(deps, messageId, incoming.event);
}

async function onEvent(deps: ServicesDeps, messageId: string, event: SchedulerEvent): Promise<void> {
  const calls = newCalls(deps, messageId);
  const _fid = deps.config.frameworkId;
  const now = deps.clock.now();
  switch (event.type) {
    case 'SUBSCRIBED': {
      await deps.store.updateMeta({ lastContactAt: now });
      const instances = await deps.store.listInstances();
      reconcileAll(deps, calls, instances);
      const apps = await deps.store.listApps();
      await killWhatMust(deps, calls, apps, instances);
      await offersWanted(deps, calls, apps, await deps.store.listInstances(), now, true);
      break;
    }
    case 'HEARTBEAT':
      await answerHeartbeat(deps, calls, now);
      break;
    case 'OFFERS': {
      const [apps, instances] = await Promise.all([deps.store.listApps(), deps.store.listInstances()]);
      const plan = planOffers(apps, instances, event.offers, now, (appId) => `${appId}.${deps.ids.next()}`);
      // Records first: a launch the framework does not know of would be killed as unknown.
      for (const l of plan.launches) for (const i of l.instances) await deps.store.putInstance(i);
      const after = [...instances, ...plan.launches.flatMap((l) => l.instances)];
      const more = wantsOffers(apps, after, now);
      // An app in backoff wants offers again when it ends: decline until then, do not suppress.
      const backoffEnd = nextBackoffEnd(apps, after, now);
      const refuse = more
        ? 5
        : backoffEnd !== undefined
          ? Math.min(300, Math.ceil((backoffEnd - now) / 1000))
          : 300;
      for (const l of plan.launches) {
        launchOn(deps, calls, l.offerId, l.tasks, more ? 1 : 30);
        deps.metrics?.count('ServicesLaunched', undefined, l.tasks.length);
      }
      // Nothing wanted: stay out of the allocator's way for a while (a change revives).
      declineAll(deps, calls, plan.declines, refuse);
      if (!more) await offersWanted(deps, calls, apps, after, now, false);
      break;
    }
    case 'UPDATE':
      await onUpdate(deps, calls, event.status, now);
      break;
    case 'ERROR':
      if (mesoError(deps, event)) await subscribe(deps, calls, now);
      break;
    case 'RESCIND':
    case 'FAILURE':
      break;
  }
  await calls.flush();
}

async function onUpdate(deps: ServicesDeps, calls: Calls, status: TaskStatus, now: number): Promise<void> {
  const fid = deps.config.frameworkId;
  const instance = await deps.store.getInstance(status.taskId);
  const app = instance ? await deps.store.getApp(instance.appId) : undefined;
  const outcome = applyStatus(app, instance, status, now);
  if (outcome.app) await deps.store.setBackoff(outcome.app.def.id, outcome.app.backoff);
  if (outcome.progress && instance) await deps.store.setProgress(instance.appId, now);
  if (outcome.instance === null) await deps.store.deleteInstance(status.taskId);
  else if (outcome.instance) await deps.store.putInstance(outcome.instance);
  if (outcome.kill)
    calls.add({ type: 'KILL', frameworkId: fid, taskId: outcome.kill.taskId, agentId: outcome.kill.agentId });
  acknowledge(deps, calls, status);
  if (
    instance &&
    (endsInstance(status.state) ||
      outcome.instance?.phase !== instance.phase ||
      outcome.instance?.healthy !== instance.healthy)
  ) {
    // Readiness changed, or an instance ended: an upgrade may move on, a replacement is wanted.
    const [apps, instances] = await Promise.all([deps.store.listApps(), deps.store.listInstances()]);
    await killWhatMust(deps, calls, apps, instances);
    await offersWanted(deps, calls, apps, await deps.store.listInstances(), now, endsInstance(status.state));
  }
}

async function onAppsChanged(deps: ServicesDeps, messageId: string): Promise<void> {
  const calls = newCalls(deps, messageId);
  const now = deps.clock.now();
  const [apps, instances, meta] = await Promise.all([
    deps.store.listApps(),
    deps.store.listInstances(),
    deps.store.getMeta(),
  ]);
  const roles = rolesOf(apps);
  if (!sameRoles(roles, meta.roles ?? [])) await subscribe(deps, calls, now, roles);
  await killWhatMust(deps, calls, apps, instances);
  await offersWanted(deps, calls, apps, await deps.store.listInstances(), now, true);
  await calls.flush();
}

/** Marks what the reconciler says must go as killing, then asks Meso to kill it. */
async function killWhatMust(
  deps: ServicesDeps,
  calls: Calls,
  apps: readonly AppRecord[],
  instances: readonly Instance[],
): Promise<void> {
  const kills: Kill[] = planKills(apps, instances);
  const byId = new Map(instances.map((i) => [i.taskId, i]));
  for (const k of kills) {
    const i = byId.get(k.taskId);
    if (i) await deps.store.putInstance({ ...i, phase: 'killing' });
    calls.add({ type: 'KILL', frameworkId: deps.config.frameworkId, taskId: k.taskId, agentId: k.agentId });
    deps.log.info('services: kill', { taskId: k.taskId, why: k.why });
  }
}

/**
 * REVIVE when an app wants instances (always after a change: the framework may have declined
 * with a long filter), SUPPRESS when none does, so an idle framework costs the allocator nothing.
 */
async function offersWanted(
  deps: ServicesDeps,
  calls: Calls,
  apps: readonly AppRecord[],
  instances: readonly Instance[],
  now: number,
  changed: boolean,
): Promise<void> {
  // Waiting out a backoff counts as wanting: offers are declined with filters that end with it.
  const want = wantsOffers(apps, instances, now) || nextBackoffEnd(apps, instances, now) !== undefined;
  const meta = await deps.store.getMeta();
  if (want && (changed || meta.suppressed)) {
    calls.add({ type: 'REVIVE', frameworkId: deps.config.frameworkId });
    if (meta.suppressed) await deps.store.updateMeta({ suppressed: false });
  } else if (!want && !meta.suppressed) {
    calls.add({ type: 'SUPPRESS', frameworkId: deps.config.frameworkId });
    await deps.store.updateMeta({ suppressed: true });
  }
}

const rolesOf = (apps: readonly AppRecord[]): string[] => allRoles(apps.map((a) => a.def.role));

async function subscribe(deps: ServicesDeps, calls: Calls, now: number, roles?: string[]): Promise<void> {
  await subscribeWith(
    deps,
    calls,
    now,
    roles ?? rolesOf(await deps.store.listApps()),
    SERVICES_FAILOVER_SECONDS,
  );
}

/**
 * The periodic tick: subscribes when Meso has not been heard from for a minute (or never),
 * revives when a backoff has ended, kills what must go and reconciles launches that never
 * started. Safe to run at any time and any number of times.
 */
export async function servicesTick(deps: ServicesDeps): Promise<void> {
  const now = deps.clock.now();
  const calls = newCalls(deps, `tick-${deps.ids.next()}`);
  const [apps, instances, meta] = await Promise.all([
    deps.store.listApps(),
    deps.store.listInstances(),
    deps.store.getMeta(),
  ]);
  if (isSilent(meta, now) || !sameRoles(rolesOf(apps), meta.roles ?? [])) {
    await subscribe(deps, calls, now);
  } else {
    await killWhatMust(deps, calls, apps, instances);
    const stale = instances.filter((i) => i.phase !== 'running' && now - i.launchedAt > STAGING_RECONCILE_MS);
    if (stale.length > 0)
      calls.add({
        type: 'RECONCILE',
        frameworkId: deps.config.frameworkId,
        tasks: stale.slice(0, LIMITS.reconcileTasks).map((i) => ({ taskId: i.taskId, agentId: i.agentId })),
      });
    await offersWanted(deps, calls, apps, await deps.store.listInstances(), now, false);
  }
  await calls.flush();
}

/** The framework's event queue: `<prefix>-fw-meso-services.fifo`, the name any framework's queue has. */
export const servicesQueueName = (prefix: string): string => builtInQueueName(prefix, SERVICES_FRAMEWORK_ID);
