/**
 * `runTask`: run one command on the cluster and wait for it to end — the logic of `meso run`
 * (Mesos's `mesos-execute`), with no terminal in it.
 */
import { randomUUID } from 'node:crypto';
import { type TaskInfo, TaskInfoSchema, type TaskState, type TaskStatus } from '../protocol/common.ts';
import { schemaProblems } from '../protocol/parse.ts';
import type { Offer } from '../protocol/scheduler.ts';
import { commandInfo } from './command.ts';
import { DEFAULT_REFUSE_SECONDS } from './constants.ts';
import { InvalidCallError, MesoSdkError, SchedulerErrorEvent } from './errors.ts';
import { matchOffers, type ResourceRequest, requestedResources, requestedWire } from './offers.ts';
import { MesoScheduler } from './scheduler.ts';
import { isTerminal } from './task-state.ts';
import type { SchedulerConnection, SchedulerSettings } from './types.ts';

/**
 * Offers that do not fit are declined for this long, so the allocator offers the agent again
 * soon (perhaps with more free) — Mesos's default filter.
 */
export const NO_FIT_REFUSE_SECONDS = DEFAULT_REFUSE_SECONDS;

/**
 * Once the task is launched, other offers (and what is left of the accepted one) are refused
 * for an hour: the framework wants nothing more, and TEARDOWN clears the filters at the end.
 */
export const LAUNCHED_REFUSE_SECONDS = 3600;

/**
 * After an ERROR event rejecting the ACCEPT, wait this long for the TASK_ERROR / TASK_DROPPED
 * update that names the reason before failing with the ERROR itself.
 */
export const ACCEPT_ERROR_GRACE_MS = 5_000;

/**
 * `runTask`'s framework calls every 2 s (FrameworkInfo.heartbeatIntervalSeconds): when its
 * process is killed (kill -9, a lost terminal), Meso disconnects it after three silent periods
 * (6 s), takes its offers back at once and, after its failover timeout, kills its task — the
 * resources come back in seconds, not in the cluster's three minutes.
 */
export const RUN_HEARTBEAT_SECONDS = 2;

/**
 * `runTask`'s failover timeout: long enough for a live run that was disconnected by mistake (its
 * calls held up on a loaded machine) to hear of it with its next HEARTBEAT and subscribe again
 * with its task intact; short enough that a dead run's task is killed soon.
 */
export const RUN_FAILOVER_TIMEOUT_SECONDS = 5;

/** The default wait for SUBSCRIBED. */
export const RUN_SUBSCRIBE_TIMEOUT_MS = 60_000;

export interface RunTaskSpec extends ResourceRequest {
  /** A string runs through `sh -c`; an argv array runs without a shell. */
  command: string | readonly string[];
  /** The task's name. @default 'meso-run' */
  name?: string;
  /** @default `<name>-<8 random hex digits>` */
  taskId?: string;
  /** Environment variables of the task. */
  env?: Readonly<Record<string, string>>;
  /** Seconds between SIGTERM and SIGKILL when the task is killed (agent default 3). */
  killGracePeriodSeconds?: number;
  /** The framework's name. @default 'meso-run' */
  frameworkName?: string;
  /** Every status update of the task, in order (after de-duplication). */
  onProgress?: (status: TaskStatus) => void;
  /** Subscribed: now waiting for an offer. */
  onSubscribed?: (frameworkId: string) => void;
  /** Every batch of offers while no task is launched, and the one chosen (if any fits). */
  onOffers?: (offers: readonly Offer[], chosen: Offer | undefined) => void;
  /** The task was sent to an agent. */
  onLaunched?: (task: TaskInfo, offer: Offer) => void;
  /** Problems that do not end the run (malformed events, ERROR events, failed polls). */
  onError?: (error: MesoSdkError) => void;
  /**
   * Abort before the launch: the run ends with a `MesoSdkError` (code `ABORTED`). After it:
   * the task is killed and the run still resolves with its terminal update (TASK_KILLED).
   */
  signal?: AbortSignal;
  /** @default 60000 */
  subscribeTimeoutMs?: number;
}

export type RunTaskOptions = SchedulerConnection &
  Omit<SchedulerSettings, 'name' | 'autoAcknowledge'> &
  RunTaskSpec;

export interface RunTaskResult {
  /** The terminal update. */
  status: TaskStatus;
  /** The state of every update received, in order. */
  history: TaskState[];
  taskId: string;
  frameworkId: string;
  /** Where it ran. */
  agentId?: string;
}

/** Ids use letters, digits and `. _ : @ -`; names may hold anything. */
function defaultTaskId(name: string): string {
  const safe =
    name
      .replace(/[^A-Za-z0-9._:@-]+/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 100) || 'meso-run';
  return `${safe}-${randomUUID().slice(0, 8)}`;
}

/**
 * Runs one command as a task: subscribes a framework, waits for an offer holding the resources
 * asked (declining the others), launches the task there, reports every update and, once the
 * task is terminal, tears the framework down and deletes the event queue it created. The
 * terminal status is returned whatever it is — TASK_FINISHED, TASK_FAILED, or a TASK_ERROR /
 * TASK_DROPPED naming why Meso refused the launch.
 *
 * @example
 * ```ts
 * const config = loadClusterConfig();
 * const { status } = await runTask({
 *   sqs: createSqsClient(config.aws),
 *   schedulerCallsQueueUrl: config.queues.schedulerCalls,
 *   prefix: config.prefix,
 *   command: 'echo hello',
 *   cpus: 0.1,
 *   mem: 32,
 *   onProgress: (s) => console.log(s.state),
 * });
 * console.log(status.state, status.stdoutTail);
 * ```
 */
export async function runTask(opts: RunTaskOptions): Promise<RunTaskResult> {
  const wanted = requestedResources(opts);
  const name = opts.name ?? 'meso-run';
  const taskId = opts.taskId ?? defaultTaskId(name);
  const command = commandInfo(opts.command, { env: opts.env, user: opts.user });
  const taskFor = (agentId: string): TaskInfo => {
    const parsed = TaskInfoSchema.safeParse({
      taskId,
      name,
      agentId,
      resources: requestedWire(opts),
      command,
      ...(opts.killGracePeriodSeconds !== undefined
        ? { killGracePeriodSeconds: opts.killGracePeriodSeconds }
        : {}),
    });
    if (!parsed.success) throw new InvalidCallError(`invalid task: ${schemaProblems(parsed.error)}`);
    return parsed.data;
  };
  // Refuse a bad task before anything is created (the agent id is a placeholder).
  taskFor('placeholder');

  const scheduler = new MesoScheduler({
    ...(opts.transport ? { transport: opts.transport } : { sqs: opts.sqs! }),
    schedulerCallsQueueUrl: opts.schedulerCallsQueueUrl,
    prefix: opts.prefix,
    name: opts.frameworkName ?? 'meso-run',
    frameworkId: opts.frameworkId,
    roles: opts.roles,
    user: opts.user,
    failoverTimeoutSeconds: opts.failoverTimeoutSeconds ?? RUN_FAILOVER_TIMEOUT_SECONDS,
    heartbeatIntervalSeconds: opts.heartbeatIntervalSeconds ?? RUN_HEARTBEAT_SECONDS,
    partitionAware: opts.partitionAware,
    queueUrl: opts.queueUrl,
    subscribeRetry: opts.subscribeRetry,
    waitSeconds: opts.waitSeconds,
    dedupCapacity: opts.dedupCapacity,
    autoAcknowledge: true,
  });

  const history: TaskState[] = [];
  let launch: { agentId: string; sent: Promise<void> } | undefined;
  let killSent = false;
  let acceptErrorTimer: NodeJS.Timeout | undefined;
  let finish!: (status: TaskStatus) => void;
  let fail!: (error: unknown) => void;
  const terminal = new Promise<TaskStatus>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // Nobody may be awaiting yet (a failure during subscribe): keep the rejection handled.
  terminal.catch(() => {});

  scheduler.on('offers', async (offers) => {
    try {
      if (launch || opts.signal?.aborted) {
        await scheduler.decline(
          offers.map((o) => o.offerId),
          LAUNCHED_REFUSE_SECONDS,
        );
        return;
      }
      const { chosen, rest } = matchOffers(offers, wanted);
      opts.onOffers?.(offers, chosen);
      if (chosen) {
        const task = taskFor(chosen.agentId);
        const sent = scheduler.accept([chosen.offerId], [task], { refuseSeconds: LAUNCHED_REFUSE_SECONDS });
        launch = { agentId: chosen.agentId, sent };
        await sent;
        opts.onLaunched?.(task, chosen);
        // Nothing more is wanted: no offers, not even of what the task frees when it ends (they
        // would reach a queue deleted a moment later). After the ACCEPT in the framework's FIFO group.
        await scheduler.suppress();
      }
      if (rest.length > 0) {
        await scheduler.decline(
          rest.map((o) => o.offerId),
          chosen ? LAUNCHED_REFUSE_SECONDS : NO_FIT_REFUSE_SECONDS,
        );
      }
    } catch (e) {
      fail(e);
    }
  });

  scheduler.on('update', (status) => {
    if (status.taskId !== taskId) return;
    history.push(status.state);
    opts.onProgress?.(status);
    if (isTerminal(status.state)) {
      clearTimeout(acceptErrorTimer);
      finish(status);
    }
  });

  scheduler.on('error', (error) => {
    opts.onError?.(error);
    if (error instanceof SchedulerErrorEvent && error.call === 'ACCEPT' && launch && history.length === 0) {
      acceptErrorTimer ??= setTimeout(() => fail(error), ACCEPT_ERROR_GRACE_MS);
    }
  });

  const onAbort = () => {
    if (!launch) {
      fail(new MesoSdkError('the run was aborted before the task was launched', 'ABORTED'));
      return;
    }
    if (killSent) return;
    killSent = true;
    const { agentId, sent } = launch;
    // The KILL goes after the ACCEPT in the framework's FIFO group, never before it.
    sent.then(() => scheduler.kill(taskId, agentId)).catch(fail);
  };

  let subscribeSent = true;
  try {
    if (opts.signal?.aborted) throw new MesoSdkError('the run was aborted before it started', 'ABORTED');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await scheduler.subscribe({
        timeoutMs: opts.subscribeTimeoutMs ?? RUN_SUBSCRIBE_TIMEOUT_MS,
        signal: opts.signal,
      });
    } catch (e) {
      // Nothing reached the cluster: no TEARDOWN to send (it would only fail slowly too).
      if (e instanceof MesoSdkError && e.code === 'SEND_FAILED') subscribeSent = false;
      if (e instanceof MesoSdkError && e.code === 'ABORTED') {
        throw new MesoSdkError('the run was aborted before the task was launched', 'ABORTED');
      }
      throw e;
    }
    opts.onSubscribed?.(scheduler.frameworkId);
    const status = await terminal;
    return {
      status,
      history,
      taskId,
      frameworkId: scheduler.frameworkId,
      agentId: status.agentId ?? launch?.agentId,
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    clearTimeout(acceptErrorTimer);
    try {
      // Waits for the terminal update's acknowledgement to be sent, then TEARDOWN, then the queue goes.
      await scheduler.close({ teardown: subscribeSent, deleteQueue: opts.queueUrl === undefined });
    } catch (e) {
      opts.onError?.(
        new MesoSdkError(
          `cleaning up framework ${scheduler.frameworkId} failed: ${(e as Error).message}`,
          'CLEANUP_FAILED',
          {
            cause: e,
          },
        ),
      );
    }
  }
}
