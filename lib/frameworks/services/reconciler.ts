/**
 * The services framework's decisions, pure: given the apps, the instances it knows and what just
 * happened (offers, a status update), what to launch, kill and decline, and how the records
 * change. Time and task ids are passed in. The framework around it (framework.ts) only loads,
 * stores and sends.
 */
import type { HealthCheck, TaskStatus } from '../../protocol/common.ts';
import type { Offer } from '../../protocol/scheduler.ts';
import { endsTask } from '../host/ends.ts';
import type { AppDefinition, AppRecord } from './app.ts';
import { progressDeadlineSeconds, wanted } from './app.ts';
import { backoffDelayMs } from './backoff.ts';
import { type Placement, satisfiesAll } from './constraints.ts';
import { type Instance, isLive, isReady } from './instance.ts';
import { type PortRange, portEnv, portRanges, takePorts } from './ports.ts';

/** A task to launch, as the protocol's TaskInfo (input form). */
export interface PlannedTask {
  readonly taskId: string;
  readonly name: string;
  readonly agentId: string;
  readonly resources: { cpus: number; mem: number; disk?: number; ports?: [number, number][] };
  readonly command: { shell: true; value: string; environment: Record<string, string> };
  readonly container?: AppDefinition['container'];
  readonly healthCheck?: HealthCheck;
  readonly killGracePeriodSeconds?: number;
}

export interface OfferPlan {
  /** Per offer used: its tasks and the instance records to write before launching them. */
  readonly launches: { offerId: string; agentId: string; tasks: PlannedTask[]; instances: Instance[] }[];
  readonly declines: string[];
}

export interface Kill {
  readonly taskId: string;
  readonly agentId: string;
  readonly why: string;
}

/** Where a deployment stands: counts and what it is waiting for. */
export interface AppStatus {
  readonly wanted: number;
  readonly ready: number;
  readonly running: number;
  readonly staged: number;
  readonly oldVersions: number;
  readonly state: 'stable' | 'deploying' | 'scaling' | 'backoff' | 'suspended' | 'stuck';
  /** Why a deployment is stuck: what it waited for, and for how long. */
  readonly reason?: string;
}

const fixed = (n: number) => Math.round(n * 1000);

/** Live instances of an app, split into those of its current version and older ones. */
function split(app: AppRecord, instances: readonly Instance[]) {
  const live = instances.filter((i) => i.appId === app.def.id && isLive(i));
  return {
    live,
    current: live.filter((i) => i.version === app.version),
    old: live.filter((i) => i.version !== app.version),
  };
}

/**
 * How many instances an app may launch now: up to `instances` of its current version, and no more
 * than `instances × (1 + maximumOverCapacity)` live in all during a rolling upgrade. When that
 * leaves no room above the minimum healthy count (say 1 instance at capacity 0.5 / 0.5), one
 * instance more is allowed, as Marathon does, or the upgrade could never start.
 */
export function launchBudget(app: AppRecord, instances: readonly Instance[]): number {
  const n = wanted(app);
  const { live, current, old } = split(app, instances);
  let maxTotal = n + Math.floor(n * app.def.upgradeStrategy.maximumOverCapacity + 1e-9);
  if (old.length > 0 && maxTotal <= minimumHealthy(app)) maxTotal = minimumHealthy(app) + 1;
  return Math.max(0, Math.min(n - current.length, maxTotal - live.length));
}

/** The smallest ready count a rolling upgrade keeps: ⌈instances × minimumHealthCapacity⌉. */
export function minimumHealthy(app: AppRecord): number {
  return Math.ceil(wanted(app) * app.def.upgradeStrategy.minimumHealthCapacity - 1e-9);
}

/**
 * What to kill now: instances of apps that are gone or suspended, those beyond `instances`, and
 * old-version instances as far as the upgrade strategy allows — never taking the ready count
 * below `minimumHealthy` (unless it already is, when only non-ready old instances go).
 */
export function planKills(apps: readonly AppRecord[], instances: readonly Instance[]): Kill[] {
  const kills: Kill[] = [];
  const byId = new Map(apps.map((a) => [a.def.id, a]));
  for (const i of instances) {
    if (isLive(i) && !byId.has(i.appId))
      kills.push({ taskId: i.taskId, agentId: i.agentId, why: 'app deleted' });
  }
  for (const app of apps) {
    const n = wanted(app);
    const hc = app.def.healthCheck !== undefined;
    const { current, old } = split(app, instances);
    if (n === 0) {
      for (const i of [...current, ...old])
        kills.push({ taskId: i.taskId, agentId: i.agentId, why: 'scaled to 0' });
      continue;
    }
    // Not ready first, then the newest: the ones that have served longest stay.
    const order = (list: Instance[]) =>
      [...list].sort(
        (a, b) =>
          Number(isReady(a, hc)) - Number(isReady(b, hc)) ||
          b.launchedAt - a.launchedAt ||
          (a.taskId < b.taskId ? -1 : 1),
      );
    const goneCurrent = order(current).slice(0, Math.max(0, current.length - n));
    for (const i of goneCurrent) kills.push({ taskId: i.taskId, agentId: i.agentId, why: 'scaled down' });
    const keptCurrent = current.filter((i) => !goneCurrent.includes(i));
    const readyCurrent = keptCurrent.filter((i) => isReady(i, hc)).length;
    const oldReady = old.filter((i) => isReady(i, hc));
    const oldNotReady = old.filter((i) => !isReady(i, hc));
    for (const i of oldNotReady)
      kills.push({ taskId: i.taskId, agentId: i.agentId, why: 'old version, not ready' });
    const spare = Math.max(0, readyCurrent + oldReady.length - minimumHealthy(app));
    const oldestFirst = [...oldReady].sort(
      (a, b) => a.launchedAt - b.launchedAt || (a.taskId < b.taskId ? -1 : 1),
    );
    for (const i of oldestFirst.slice(0, spare))
      kills.push({ taskId: i.taskId, agentId: i.agentId, why: 'old version replaced' });
  }
  return kills;
}

/** The Mesos health check of an instance, its ports filled in. */
export function healthCheckFor(def: AppDefinition, ports: readonly number[]): HealthCheck | undefined {
  const h = def.healthCheck;
  if (!h) return undefined;
  const common = {
    delaySeconds: 0,
    gracePeriodSeconds: h.gracePeriodSeconds,
    intervalSeconds: h.intervalSeconds,
    timeoutSeconds: h.timeoutSeconds,
    consecutiveFailures: h.maxConsecutiveFailures,
  };
  if (h.protocol === 'COMMAND')
    return { type: 'COMMAND', command: { shell: true, value: h.command! }, ...common };
  const port = ports[h.portIndex];
  if (port === undefined) return undefined;
  if (h.protocol === 'TCP') return { type: 'TCP', tcp: { port }, ...common };
  return { type: 'HTTP', http: { port, ...(h.path ? { path: h.path } : {}) }, ...common };
}

interface Room {
  cpus: number;
  mem: number;
  disk: number;
  ports: PortRange[];
}

/**
 * Places instances of the apps that need them on the offers: as many as fit each offer's
 * unreserved resources, satisfy the app's constraints (counting instances placed in this very
 * plan), suit its role and are past its backoff. Offers with nothing to place are declined, and
 * so is every offer of an event handled before (a redelivered one: one of its offers is used).
 */
export function planOffers(
  apps: readonly AppRecord[],
  instances: readonly Instance[],
  offers: readonly Offer[],
  now: number,
  newTaskId: (appId: string) => string,
): OfferPlan {
  const used = new Set(instances.map((i) => i.offerId));
  const placedNow: Instance[] = [];
  const launches: OfferPlan['launches'] = [];
  const declines: string[] = [];
  const budgets = new Map(
    apps
      .filter((a) => now >= a.backoff.delayUntil)
      .map((a) => [a.def.id, launchBudget(a, instances)] as const)
      .filter(([, b]) => b > 0),
  );
  // An event with an offer already used was handled before: every offer in it was answered
  // then (accepted or declined), so none may be used now, even if the state changed since.
  const answered = offers.some((o) => used.has(o.offerId));
  for (const offer of offers) {
    if (answered) {
      declines.push(offer.offerId);
      continue;
    }
    const room: Room = {
      cpus: fixed(offer.resources.cpus ?? 0),
      mem: fixed(offer.resources.mem ?? 0),
      disk: fixed(offer.resources.disk ?? 0),
      ports: [...(offer.resources.ports ?? [])],
    };
    const here: Placement = { hostname: offer.hostname, attributes: offer.attributes };
    const tasks: PlannedTask[] = [];
    const made: Instance[] = [];
    for (const app of apps) {
      const def = app.def;
      const offerRole = offer.role ?? '*';
      if (def.role !== offerRole) continue;
      for (;;) {
        const budget = budgets.get(def.id) ?? 0;
        if (budget <= 0) break;
        if (room.cpus < fixed(def.cpus) || room.mem < fixed(def.mem) || room.disk < fixed(def.disk)) break;
        const taken = takePorts(room.ports, def.ports);
        if (!taken) break;
        const placed = [...instances, ...placedNow].filter((i) => i.appId === def.id && isLive(i));
        if (!satisfiesAll(def.constraints, here, placed)) break;
        room.cpus -= fixed(def.cpus);
        room.mem -= fixed(def.mem);
        room.disk -= fixed(def.disk);
        room.ports = taken.rest;
        budgets.set(def.id, budget - 1);
        const taskId = newTaskId(def.id);
        const instance: Instance = {
          taskId,
          appId: def.id,
          version: app.version,
          agentId: offer.agentId,
          hostname: offer.hostname,
          attributes: offer.attributes,
          ports: taken.ports,
          offerId: offer.offerId,
          phase: 'staging',
          launchedAt: now,
        };
        placedNow.push(instance);
        made.push(instance);
        tasks.push(taskFor(app, instance));
      }
    }
    if (tasks.length > 0)
      launches.push({ offerId: offer.offerId, agentId: offer.agentId, tasks, instances: made });
    else declines.push(offer.offerId);
  }
  return { launches, declines };
}

function taskFor(app: AppRecord, i: Instance): PlannedTask {
  const def = app.def;
  const hc = healthCheckFor(def, i.ports);
  return {
    taskId: i.taskId,
    name: def.id,
    agentId: i.agentId,
    resources: {
      cpus: def.cpus,
      mem: def.mem,
      ...(def.disk > 0 ? { disk: def.disk } : {}),
      ...(i.ports.length > 0 ? { ports: portRanges(i.ports) } : {}),
    },
    command: {
      shell: true,
      value: def.cmd,
      environment: {
        ...def.env,
        ...portEnv(i.ports),
        HOST: i.hostname,
        MESO_APP_ID: def.id,
        MESO_APP_VERSION: app.version,
        MESO_TASK_ID: i.taskId,
      },
    },
    ...(def.container ? { container: def.container } : {}),
    ...(hc ? { healthCheck: hc } : {}),
    ...(def.killGracePeriodSeconds !== undefined
      ? { killGracePeriodSeconds: def.killGracePeriodSeconds }
      : {}),
  };
}

/** Ends that are no failure of the app: its agent was lost, or the offer it was launched on was gone. */
const NOT_THE_APPS_FAULT = new Set([
  'REASON_INVALID_OFFERS',
  'REASON_AGENT_REMOVED',
  'REASON_AGENT_REMOVED_BY_OPERATOR',
  'REASON_AGENT_DISCONNECTED',
  'REASON_AGENT_RESTARTED',
  'REASON_AGENT_UNKNOWN',
]);

/** Whether an update ends an instance for the framework (UNREACHABLE too: it is replaced at once). */
export const endsInstance = (state: TaskStatus['state']): boolean => endsTask(state);

export interface StatusOutcome {
  /** The instance after the update; null when it ended (remove its record). */
  readonly instance: Instance | null | undefined;
  /** The app with its backoff changed, if it changed. */
  readonly app?: AppRecord;
  /** A task the framework does not know, still alive: kill it. */
  readonly kill?: Kill;
  /**
   * The app's deployment progressed (or a new one began) now: an instance of its current version
   * became ready, or a ready one ended (its replacement starts a new deadline).
   */
  readonly progress?: boolean;
}

/**
 * Applies a status update to the instance it is about. An instance that ends without having been
 * killed is a failure: the app's backoff grows (not when its agent was lost or its offer was gone: that is no fault of
 * the app). An instance of the current version that becomes ready resets the backoff.
 */
export function applyStatus(
  app: AppRecord | undefined,
  instance: Instance | undefined,
  status: TaskStatus,
  now: number,
): StatusOutcome {
  if (!instance) {
    if (endsInstance(status.state) || !status.agentId) return { instance: undefined };
    return {
      instance: undefined,
      kill: { taskId: status.taskId, agentId: status.agentId, why: 'unknown task' },
    };
  }
  if (endsInstance(status.state)) {
    const wasReady =
      app !== undefined &&
      instance.version === app.version &&
      instance.phase !== 'killing' &&
      isReady(instance, app.def.healthCheck !== undefined);
    const progress = wasReady ? { progress: true } : {};
    if (!app || instance.phase === 'killing' || (status.reason && NOT_THE_APPS_FAULT.has(status.reason)))
      return { instance: null, ...progress };
    if (instance.version !== app.version) return { instance: null };
    const failures = app.backoff.failures + 1;
    return {
      instance: null,
      app: { ...app, backoff: { failures, delayUntil: now + backoffDelayMs(app.def, failures) } },
      ...progress,
    };
  }
  const phase =
    status.state === 'TASK_RUNNING'
      ? 'running'
      : status.state === 'TASK_KILLING'
        ? 'killing'
        : instance.phase;
  const next: Instance = {
    ...instance,
    phase: instance.phase === 'killing' ? 'killing' : phase,
    ...(status.healthy !== undefined ? { healthy: status.healthy } : {}),
    lastState: status.state,
  };
  if (!app || next.version !== app.version) return { instance: next };
  const hc = app.def.healthCheck !== undefined;
  const progress = isReady(next, hc) && !isReady(instance, hc) ? { progress: true } : {};
  if (app.backoff.failures > 0 && isReady(next, hc))
    return { instance: next, app: { ...app, backoff: { failures: 0, delayUntil: 0 } }, ...progress };
  return { instance: next, ...progress };
}

/**
 * An app's counts and deployment state, for `meso apps`. A deployment (new instances of the
 * current version wanted, or old ones still running) that made no progress — no instance of the
 * current version became ready — within the app's progress deadline since it began (a deploy,
 * scale or restart, or a ready instance ending) or since the last progress is `stuck`, with the
 * reason. The framework keeps trying all the same; rolling
 * back (or any new deploy) starts a new deployment and a new deadline.
 */
export function appStatus(app: AppRecord, instances: readonly Instance[], now: number): AppStatus {
  const hc = app.def.healthCheck !== undefined;
  const { live, current, old } = split(app, instances);
  const n = wanted(app);
  const ready = current.filter((i) => isReady(i, hc)).length;
  const moving: AppStatus['state'] | undefined = app.suspended
    ? 'suspended'
    : old.length > 0
      ? 'deploying'
      : now < app.backoff.delayUntil && current.length < n
        ? 'backoff'
        : current.length !== n || ready < n
          ? 'scaling'
          : undefined;
  const counts = {
    wanted: n,
    ready,
    running: live.filter((i) => i.phase === 'running').length,
    staged: live.filter((i) => i.phase === 'staging').length,
    oldVersions: old.length,
  };
  if (moving === undefined) return { ...counts, state: 'stable' };
  const reason = moving === 'suspended' ? undefined : stuckReason(app, current, old.length, ready, n, now);
  return reason ? { ...counts, state: 'stuck', reason } : { ...counts, state: moving };
}

/** Why a moving deployment is past its progress deadline; undefined while it is within it. */
function stuckReason(
  app: AppRecord,
  current: readonly Instance[],
  old: number,
  ready: number,
  n: number,
  now: number,
): string | undefined {
  const deadline = progressDeadlineSeconds(app.def);
  const progressAt = Math.max(app.deployedAt, app.progressAt ?? 0);
  const idle = Math.floor((now - progressAt) / 1000);
  if (idle <= deadline) return undefined;
  const parts = [
    `no progress for ${idle} s (deadline ${deadline} s): ${ready}/${n} of version ${app.version} ready`,
  ];
  if (old > 0) parts.push(`${old} old instance(s) still running`);
  const unready = current.filter(
    (i) => i.phase !== 'killing' && !isReady(i, app.def.healthCheck !== undefined),
  );
  if (unready.some((i) => i.healthy === false)) parts.push('failing health checks');
  else if (unready.some((i) => i.phase === 'staging')) parts.push(`${unready.length} not started`);
  if (app.backoff.failures > 0) parts.push(`${app.backoff.failures} launch(es) failed in a row`);
  if (current.length < n && ready === current.length && app.backoff.failures === 0)
    parts.push('waiting for offers that fit');
  return `${parts.join('; ')} — roll back with meso app rollback ${app.def.id}`;
}

/** Whether any app may want offers now (launch budget left and past its backoff). */
export function wantsOffers(
  apps: readonly AppRecord[],
  instances: readonly Instance[],
  now: number,
): boolean {
  return apps.some((a) => now >= a.backoff.delayUntil && launchBudget(a, instances) > 0);
}

/** The earliest time a backed-off app may launch again, if any is waiting. */
export function nextBackoffEnd(
  apps: readonly AppRecord[],
  instances: readonly Instance[],
  now: number,
): number | undefined {
  const waits = apps
    .filter((a) => a.backoff.delayUntil > now && launchBudget(a, instances) > 0)
    .map((a) => a.backoff.delayUntil);
  return waits.length > 0 ? Math.min(...waits) : undefined;
}
