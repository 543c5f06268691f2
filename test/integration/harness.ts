/**
 * An in-process Meso for integration tests: fresh tables and queues in the emulators, the
 * control plane's real handlers behind local event-source mappings, agents that run real
 * processes, and frameworks through the real SDK — all over HTTP with the real AWS SDK clients.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Agent, type AgentOptions } from '../../agent/agent.ts';
import { silentLog, stderrLog } from '../../agent/log.ts';
import { clientOptions } from '../../lib/adapters/aws-config.ts';
import { staticCredentials } from '../../lib/adapters/credentials.ts';
import { createSqsClient } from '../../lib/adapters/sqs.ts';
import { SqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import type { ClusterConfig } from '../../lib/config/cluster.ts';
import type { ControlConfig } from '../../lib/control/deps.ts';
import { isTerminal } from '../../lib/core/task-state.ts';
import {
  type LocalControlPlane,
  type LocalControlPlaneOptions,
  startLocalControlPlane,
} from '../../lib/local/control-plane.ts';
import type { Offer, TaskStatus } from '../../lib/protocol/index.ts';
import { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import type { SchedulerSettings } from '../../lib/sdk/types.ts';
import { checkingStore } from '../../lib/testing/invariants.ts';
import { createTestCluster, testCredentials } from '../setup/cluster.ts';

export interface Harness {
  readonly cluster: ClusterConfig;
  readonly controlPlane: LocalControlPlane;
  /** The SDK client of the test's default principal; the frameworks' unless they pick another. */
  readonly sqs: SQSClient;
  readonly agents: Agent[];
  /**
   * An SDK client signing as the principal `name` (its own access key id, so its own SenderId).
   * Destroyed by `stop()`.
   */
  as(name: string): SQSClient;
  /** The access key id (= SenderId) an agent started without its own `sqs` client signs with. */
  principalOf(agent: Agent): string;
  /** Accounting violations seen after any write to an agent record (must stay empty; see lib/testing/invariants.ts). */
  readonly violations: string[];
  startAgent(opts?: Partial<AgentOptions>): Promise<Agent>;
  scheduler(opts?: Partial<SchedulerSettings>): MesoScheduler;
  /** A scheduler with a {@link Recorder} on its events, subscribed. */
  framework(opts?: Partial<SchedulerSettings>): Promise<{ s: MesoScheduler; r: Recorder }>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  readonly agents?: number;
  readonly agentResources?: string;
  readonly control?: Partial<Omit<ControlConfig, 'queues'>>;
  readonly controlPlane?: Partial<LocalControlPlaneOptions>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const { config: cluster, dlqs } = await createTestCluster();
  const violations: string[] = [];
  const controlPlane = startLocalControlPlane({
    cluster,
    dlqs,
    config: { offerTimeoutSeconds: 30, ...opts.control },
    sweepIntervalMs: 0,
    retryDelaySeconds: 1,
    ...opts.controlPlane,
    wrap: {
      ...opts.controlPlane?.wrap,
      store: (s) =>
        checkingStore(opts.controlPlane?.wrap?.store ? opts.controlPlane.wrap.store(s) : s, violations),
    },
  });
  const sqs = createSqsClient(cluster.aws);
  const clients: SQSClient[] = [];
  const as = (name: string) => {
    const c = new SQSClient({
      ...clientOptions(cluster.aws, cluster.aws.sqsEndpoint),
      credentials: testCredentials(name),
      useQueueUrlAsEndpoint: false,
    });
    clients.push(c);
    return c;
  };
  // Agents use the agent's own client, as deployed, and each work dir (one node) its own access
  // key: one node is not another's principal, as each EC2 instance has its own session. A
  // restarted agent (the same work dir) signs with the same key again.
  const agentKeys = new Map<string, string>();
  const agentClients: SqsHttpClient[] = [];
  const agentPrincipal = new Map<Agent, string>();
  const agentClient = (key: string) => {
    const c = new SqsHttpClient({
      region: cluster.aws.region,
      ...(cluster.aws.sqsEndpoint ? { endpoint: cluster.aws.sqsEndpoint } : {}),
      credentials: staticCredentials(testCredentials(key)),
    });
    agentClients.push(c);
    return c;
  };
  const agents: Agent[] = [];
  const schedulers: MesoScheduler[] = [];
  const workDirs: string[] = [];

  const startAgent = async (o: Partial<AgentOptions> = {}) => {
    const workDir = o.workDir ?? (await mkdtemp(join(tmpdir(), 'meso-agent-')));
    if (!o.workDir) workDirs.push(workDir);
    const key = agentKeys.get(workDir) ?? `mesoagent${agentKeys.size}`;
    agentKeys.set(workDir, key);
    const agent = new Agent({
      sqs: o.sqs ?? agentClient(key),
      agentCallsQueueUrl: cluster.queues.agentCalls,
      prefix: cluster.prefix,
      workDir,
      resources: opts.agentResources ?? 'cpus:2;mem:1024;disk:1024;ports:[31000-31100]',
      heartbeatIntervalMs: 60_000,
      registerRetryIntervalMs: 2_000,
      statusRetryIntervalMs: 3_000,
      pollWaitSeconds: 2,
      killGracePeriodMs: 1_000,
      log: process.env.MESO_TEST_LOG ? stderrLog('debug') : silentLog,
      ...o,
    });
    const registered = new Promise<void>((resolve) => agent.once('registered', () => resolve()));
    await agent.start();
    await registered;
    agents.push(agent);
    if (!o.sqs) agentPrincipal.set(agent, key);
    return agent;
  };
  for (let i = 0; i < (opts.agents ?? 1); i++) await startAgent();

  const scheduler = (o: Partial<SchedulerSettings> = {}) => {
    const s = new MesoScheduler({
      sqs,
      schedulerCallsQueueUrl: cluster.queues.schedulerCalls,
      prefix: cluster.prefix,
      name: 'test',
      waitSeconds: 2,
      ...o,
    });
    schedulers.push(s);
    return s;
  };

  return {
    cluster,
    controlPlane,
    sqs,
    agents,
    violations,
    as,
    principalOf: (agent) => agentPrincipal.get(agent) ?? 'unknown',
    startAgent,
    scheduler,
    async framework(o = {}) {
      const s = scheduler(o);
      const r = new Recorder(s);
      await s.subscribe();
      return { s, r };
    },
    async stop() {
      await Promise.all(schedulers.map((s) => s.close({ deleteQueue: true }).catch(() => {})));
      await Promise.all(agents.map((a) => a.stop({ killTasks: true }).catch(() => {})));
      await controlPlane.stop();
      sqs.destroy();
      for (const c of clients) c.destroy();
      for (const c of agentClients) c.close();
      await Promise.all(workDirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves when `predicate` holds for an event `on` delivers. */
export function waitForEvent<T>(
  subscribe: (cb: (v: T) => void) => void,
  predicate: (v: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => subscribe((v) => predicate(v) && resolve(v)));
}

/** Polls a condition on state that has no event of its own (bounded). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Records a framework's events and lets a test await the next one that matches. Offers are kept
 * until taken, so a test never misses one that arrived before it started waiting.
 */
export class Recorder {
  readonly offers: Offer[] = [];
  readonly updates: TaskStatus[] = [];
  readonly rescinds: string[] = [];
  readonly errors: Error[] = [];
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(s: MesoScheduler) {
    s.on('offers', (o) => this.push(() => this.offers.push(...o)));
    s.on('update', (u) => this.push(() => this.updates.push(u)));
    s.on('rescind', (id) => this.push(() => this.rescinds.push(id)));
    s.on('error', (e) => this.push(() => this.errors.push(e)));
  }

  private push(f: () => void) {
    f();
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }

  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }

  /** Takes the first unused offer (waiting for one), optionally on a given agent. */
  async takeOffer(agentId?: string): Promise<Offer> {
    const match = () => this.offers.findIndex((o) => !agentId || o.agentId === agentId);
    await this.until(() => match() >= 0);
    return this.offers.splice(match(), 1)[0]!;
  }

  async update(taskId: string, state?: TaskStatus['state']): Promise<TaskStatus> {
    const find = () => this.updates.find((u) => u.taskId === taskId && (!state || u.state === state));
    await this.until(() => !!find());
    return find()!;
  }

  async terminal(taskId: string): Promise<TaskStatus> {
    const find = () => this.updates.find((u) => u.taskId === taskId && isTerminal(u.state));
    await this.until(() => !!find());
    return find()!;
  }
}

/**
 * Launches the task ids in `pending` (from the front) into the offers `s` receives: as many as fit
 * each offer, at most `o.max`, each `echo <id>` with `o.cpus` and `o.mem`. An offer seen before (a
 * redelivery) is skipped; one with no room, or when nothing is pending, is declined.
 */
export function launchWhatFits(
  s: MesoScheduler,
  pending: string[],
  o: { max: number; cpus: number; mem: number },
) {
  const seen = new Set<string>();
  s.on('offers', async (offers: Offer[]) => {
    for (const offer of offers) {
      if (seen.has(offer.offerId)) continue;
      seen.add(offer.offerId);
      // A leftover offer may hold less than `max` tasks' worth.
      const fit = Math.min(
        o.max,
        Math.floor((offer.resources.cpus ?? 0) / o.cpus + 1e-9),
        Math.floor((offer.resources.mem ?? 0) / o.mem),
      );
      const take = pending.splice(0, Math.max(0, fit));
      if (take.length === 0) {
        await s.decline([offer.offerId], 60);
        continue;
      }
      await s.accept(
        [offer.offerId],
        take.map((taskId) => ({
          taskId,
          agentId: offer.agentId,
          resources: { cpus: o.cpus, mem: o.mem },
          command: { value: `echo ${taskId}` },
        })),
        { refuseSeconds: 0 },
      );
    }
  });
}
