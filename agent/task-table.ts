/**
 * The agent's task table: the tasks it runs or has run, what it does on LAUNCH, KILL and
 * RECONCILE, the status updates their lives produce, and their recovery from checkpoints after
 * an agent restart.
 *
 * Mesos-like choices, where the protocol leaves room:
 * - A duplicate LAUNCH (same framework and task id as a task this agent has run or is running)
 *   is ignored: SQS delivers at least once.
 * - A KILL for a task the agent has never seen is answered with TASK_DROPPED
 *   (REASON_TASK_UNKNOWN, "unknown task") — what a Mesos agent reports for a partition-aware
 *   framework when no executor holds the task — and the id is remembered, so a LAUNCH for it
 *   that arrives later (the LAUNCH and the KILL can come from different senders) is not run; that
 *   LAUNCH is answered with TASK_DROPPED again (REASON_TASK_KILLED_DURING_LAUNCH), the same
 *   terminal state, so any order of arrival leaves the control plane with one answer.
 * - A KILL for a task that has already ended is ignored: its terminal update is on its way.
 * - No TASK_KILLING is sent (frameworks would have to declare the TASK_KILLING_STATE capability).
 * - TASK_STARTING is sent only for a task with URIs, when their fetch begins; a task with nothing
 *   to fetch goes from TASK_STAGING to TASK_RUNNING when its process is spawned (Mesos allows
 *   both; STARTING at the same instant as RUNNING would only cost a round trip).
 */
import { isTerminal } from '../lib/core/task-state.ts';
import type { AgentCommandOf } from '../lib/protocol/agent.ts';
import type { TaskInfo, TaskReason, TaskStatus } from '../lib/protocol/common.ts';
import { listRuns, type RunFiles } from './checkpoint.ts';
import type { AgentEmitter } from './events.ts';
import {
  buildSpawnSpec,
  DEFAULT_KILL_GRACE_PERIOD_MS,
  type IsolationContext,
  type Isolator,
  type RunTaskOptions,
  TaskRun,
  type TaskTermination,
} from './executor.ts';
import type { Fetcher } from './fetcher.ts';
import { HealthChecker } from './health.ts';
import type { Isolation } from './isolation/index.ts';
import { errorMessage, type Log } from './log.ts';
import type { StatusUpdateInput, StatusUpdateManager } from './status-updates.ts';

/** How many ended tasks the table remembers (to ignore duplicate LAUNCHes). */
const COMPLETED_TASKS_KEPT = 1000;
/** How many KILLs for unknown tasks the table remembers (to refuse their late LAUNCHes). */
const KILLED_UNKNOWN_KEPT = 10_000;

/** Terminal reasons that come from the agent (the containerizer), not from the task's executor. */
const AGENT_REASONS: ReadonlySet<TaskReason> = new Set<TaskReason>([
  'REASON_CONTAINER_LAUNCH_FAILED',
  'REASON_CONTAINER_LIMITATION_MEMORY',
  'REASON_FETCHER_FAILED',
  'REASON_AGENT_RESTARTED',
]);

interface TaskEntry {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly run: TaskRun;
  terminal: boolean;
  health?: HealthChecker;
}

/** A task the table runs, as REGISTER and `Agent.runningTasks()` list it. */
export interface RunningTask {
  frameworkId: string;
  taskId: string;
  pid?: number;
  sandbox: string;
}

export const taskKey = (frameworkId: string, taskId: string): string => `${frameworkId}\u0000${taskId}`;

export interface TaskTableOptions {
  readonly agentId: string;
  /** Holds `sandboxes/` and the runs' checkpoints. */
  readonly workDir: string;
  /** SIGTERM→SIGKILL grace for tasks that name none. Default 3000 (Mesos). */
  readonly killGracePeriodMs?: number;
  readonly isolation: Isolation;
  /** Extra isolators, after the isolation's own. */
  readonly isolators?: readonly Isolator[];
  readonly fetcher: Fetcher;
  /** Where the tasks' status updates go (and are checkpointed from, see checkpointUpdates()). */
  readonly updates: StatusUpdateManager;
  readonly log: Log;
  readonly events: AgentEmitter;
}

export class TaskTable {
  readonly #opts: TaskTableOptions;
  readonly #log: Log;
  readonly #tasks = new Map<string, TaskEntry>();
  readonly #completed: string[] = [];
  readonly #killedUnknown = new Set<string>();
  /** Tasks that ended before a restart and whose terminal update is not yet acknowledged. */
  readonly #endedRuns = new Map<string, RunFiles>();

  constructor(opts: TaskTableOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  /** Tasks not yet ended. */
  running(): RunningTask[] {
    return [...this.#tasks.values()]
      .filter((t) => !t.terminal)
      .map((t) => ({ frameworkId: t.frameworkId, taskId: t.taskId, pid: t.run.pid, sandbox: t.run.sandbox }));
  }

  /** The run of a task this agent knows (running or recently ended). */
  run(frameworkId: string, taskId: string): TaskRun | undefined {
    return this.#tasks.get(taskKey(frameworkId, taskId))?.run;
  }

  /** The sandboxes of the tasks not yet ended (garbage collection keeps them). */
  liveSandboxes(): string[] {
    return [...this.#tasks.values()].filter((t) => !t.terminal).map((t) => t.run.sandbox);
  }

  #update(input: Omit<StatusUpdateInput, 'agentId'>): void {
    this.#opts.updates.update({ ...input, agentId: this.#opts.agentId });
  }

  // ---- commands ----

  launch(cmd: AgentCommandOf<'LAUNCH'>): void {
    const { frameworkId, task } = cmd;
    const key = taskKey(frameworkId, task.taskId);
    const base = { frameworkId, taskId: task.taskId } as const;
    if (this.#tasks.has(key) || this.#endedRuns.has(key)) {
      this.#log('info', 'ignoring duplicate LAUNCH', base);
      return;
    }
    if (this.#killedUnknown.has(key)) {
      this.#log('info', 'not launching a task killed before its LAUNCH arrived', base);
      this.#update({
        ...base,
        state: 'TASK_DROPPED',
        reason: 'REASON_TASK_KILLED_DURING_LAUNCH',
        message: 'a KILL for this task arrived before its LAUNCH; it was not run',
        source: 'SOURCE_AGENT',
      });
      return;
    }
    const agentId = this.#opts.agentId;
    if (task.agentId !== agentId) {
      this.#log('warn', 'dropping a task meant for another agent', { ...base, agentId: task.agentId });
      this.#update({
        ...base,
        state: 'TASK_DROPPED',
        reason: 'REASON_TASK_INVALID',
        message: `task is for agent ${task.agentId}, not this agent (${agentId})`,
        source: 'SOURCE_AGENT',
      });
      return;
    }
    const uris = task.uris ?? [];
    const run = this.#newRun(frameworkId, task, {
      // TASK_STARTING only when something takes time before the process runs: the fetch. A task
      // with nothing to fetch goes from STAGING straight to RUNNING (one update, one
      // acknowledgement, instead of RUNNING waiting for STARTING's acknowledgement).
      ...(uris.length > 0
        ? {
            fetch: (ctx) => {
              this.#update({
                ...base,
                state: 'TASK_STARTING',
                message: `fetching ${uris.length} URI${uris.length === 1 ? '' : 's'}`,
                source: 'SOURCE_EXECUTOR',
              });
              return this.#fetch(ctx);
            },
          }
        : {}),
      onStarted: (pid) => {
        this.#log('info', 'task started', { ...base, pid, sandbox: run.sandbox });
        this.#update({ ...base, state: 'TASK_RUNNING', message: `pid ${pid}`, source: 'SOURCE_EXECUTOR' });
        this.#opts.events.emit('taskStarted', frameworkId, task.taskId, pid);
        this.#startHealthChecks(key);
      },
    });
    this.#tasks.set(key, { frameworkId, taskId: task.taskId, run, terminal: false });
    this.#log('info', 'launching task', { ...base, sandbox: run.sandbox });
  }

  kill(cmd: AgentCommandOf<'KILL'>): void {
    const { frameworkId, taskId } = cmd;
    const key = taskKey(frameworkId, taskId);
    const entry = this.#tasks.get(key);
    const grace = cmd.gracePeriodSeconds !== undefined ? cmd.gracePeriodSeconds * 1000 : undefined;
    if (entry) {
      if (entry.terminal) {
        this.#log('info', 'ignoring KILL for a task that has already ended', { frameworkId, taskId });
        return;
      }
      this.#log('info', 'killing task', {
        frameworkId,
        taskId,
        gracePeriodMs: grace ?? entry.run.defaultGracePeriodMs,
      });
      entry.run.kill(grace);
      return;
    }
    if (this.#killedUnknown.has(key)) return; // A redelivered KILL: already answered.
    this.#refuseUnknown(key);
    this.#log('info', 'KILL for an unknown task: reporting TASK_DROPPED', { frameworkId, taskId });
    this.#update({
      frameworkId,
      taskId,
      state: 'TASK_DROPPED',
      reason: 'REASON_TASK_UNKNOWN',
      message: 'unknown task: this agent has not received its LAUNCH, and will not run it if one arrives',
      source: 'SOURCE_AGENT',
    });
  }

  /**
   * Tasks the registry believes run here but this agent did not list when it registered: each one
   * it does not know gets `ifUnknown` (and a LAUNCH for it that arrives later is refused, as after a
   * KILL of an unknown task). Known tasks need nothing: their updates are on their way.
   */
  reconcile(cmd: AgentCommandOf<'RECONCILE'>): void {
    // A task with updates still to deliver (one that ended while the agent was down, say) is
    // known: its own updates answer for it.
    const pending = new Set(this.#opts.updates.pending().map((u) => taskKey(u.frameworkId, u.taskId)));
    for (const t of cmd.tasks) {
      const key = taskKey(t.frameworkId, t.taskId);
      if (this.#tasks.has(key) || pending.has(key) || this.#killedUnknown.has(key)) continue;
      this.#refuseUnknown(key);
      this.#log('info', `reconciliation: unknown task, reporting ${t.ifUnknown}`, {
        frameworkId: t.frameworkId,
        taskId: t.taskId,
      });
      this.#update({
        frameworkId: t.frameworkId,
        taskId: t.taskId,
        state: t.ifUnknown,
        reason: 'REASON_RECONCILIATION',
        message: 'unknown to this agent (reconciliation)',
        source: 'SOURCE_AGENT',
      });
    }
  }

  /** Remembers (a bounded number of) unknown tasks answered for, so a later LAUNCH of one is refused. */
  #refuseUnknown(key: string): void {
    this.#killedUnknown.add(key);
    if (this.#killedUnknown.size > KILLED_UNKNOWN_KEPT) {
      const oldest = this.#killedUnknown.values().next().value;
      if (oldest !== undefined) this.#killedUnknown.delete(oldest);
    }
  }

  // ---- runs ----

  /** A run of `task` with the agent's work directory, kill grace period and isolators. */
  #newRun(frameworkId: string, task: TaskInfo, extra: Partial<RunTaskOptions>): TaskRun {
    const key = taskKey(frameworkId, task.taskId);
    return new TaskRun({
      workDir: this.#opts.workDir,
      agentId: this.#opts.agentId,
      frameworkId,
      task,
      defaultKillGracePeriodMs: this.#opts.killGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS,
      isolators: this.#isolatorsFor(task),
      onTerminated: (t) => this.#terminated(key, t),
      ...extra,
    });
  }

  #isolatorsFor(task: TaskInfo): Isolator[] {
    return [...this.#opts.isolation.isolatorsFor(task), ...(this.#opts.isolators ?? [])];
  }

  /** As the user the sandbox was given to (the user isolator refused the launch before, if it may not run). */
  async #fetch(ctx: IsolationContext): Promise<void> {
    const user = ctx.state.user as { uid: number; gid: number } | undefined;
    await this.#opts.fetcher.fetchAll(ctx.task.uris ?? [], ctx.sandbox, user);
  }

  /** Starts the task's health checks, if it has any (its process runs). */
  #startHealthChecks(key: string): void {
    const entry = this.#tasks.get(key);
    const check = entry?.run.task.healthCheck;
    if (!entry || !check || entry.terminal || entry.health) return;
    const { run } = entry;
    const base = { frameworkId: entry.frameworkId, taskId: entry.taskId } as const;
    const user = run.isolationState.user as { uid: number; gid: number } | undefined;
    entry.health = new HealthChecker({
      check,
      startedAt: run.startedAt ?? Date.now(),
      sandbox: run.sandbox,
      env: buildSpawnSpec({
        task: run.task,
        sandbox: run.sandbox,
        agentId: this.#opts.agentId,
        frameworkId: entry.frameworkId,
      }).env,
      ...(user ? { user } : {}),
      inTask: (argv) => run.execArgv(argv),
      onChange: (healthy, result) => {
        if (entry.terminal) return;
        this.#log(healthy ? 'info' : 'warn', `task is ${healthy ? 'healthy' : 'unhealthy'}`, {
          ...base,
          check: result.detail,
        });
        this.#update({
          ...base,
          state: 'TASK_RUNNING',
          reason: 'REASON_TASK_HEALTH_CHECK_STATUS_UPDATED',
          healthy,
          message: result.detail,
          source: 'SOURCE_EXECUTOR',
        });
        this.#opts.events.emit('taskHealth', entry.frameworkId, entry.taskId, healthy);
      },
      onUnhealthy: (failures, result) => {
        if (entry.terminal) return;
        this.#log('warn', 'killing an unhealthy task', { ...base, failures, check: result.detail });
        run.kill(undefined, {
          reason: 'REASON_TASK_UNHEALTHY',
          healthy: false,
          message: `failed ${failures} health check${failures === 1 ? '' : 's'} in a row (last: ${result.detail})`,
        });
      },
    });
    entry.health.start();
  }

  #terminated(key: string, t: TaskTermination): void {
    const entry = this.#tasks.get(key);
    if (!entry) return;
    entry.terminal = true;
    entry.health?.stop();
    const base = { frameworkId: entry.frameworkId, taskId: entry.taskId };
    this.#log(t.state === 'TASK_FINISHED' ? 'info' : 'warn', `task ended: ${t.state}`, {
      ...base,
      message: t.message.split('\n')[0],
    });
    this.#update({
      ...base,
      state: t.state,
      ...(t.reason ? { reason: t.reason } : {}),
      message: t.message,
      source: t.reason !== undefined && AGENT_REASONS.has(t.reason) ? 'SOURCE_AGENT' : 'SOURCE_EXECUTOR',
      ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
      ...(t.healthy !== undefined ? { healthy: t.healthy } : {}),
      stdoutTail: t.stdoutTail,
      stderrTail: t.stderrTail,
    });
    // After the terminal update is checkpointed: a restart now resends it and runs nothing.
    try {
      entry.run.files.writeEnded(Date.now());
    } catch (e) {
      this.#log('warn', 'could not checkpoint the end of a task', { ...base, error: errorMessage(e) });
    }
    this.#opts.events.emit('taskTerminated', entry.frameworkId, entry.taskId, t);
    // Remember a bounded number of ended tasks, so duplicate LAUNCHes stay ignored for a while.
    this.#completed.push(key);
    while (this.#completed.length > COMPLETED_TASKS_KEPT) {
      const old = this.#completed.shift();
      if (old !== undefined) this.#tasks.delete(old);
    }
  }

  /** Each tick: running tasks against their limits, recovered ones for their end. */
  monitor(): void {
    for (const t of this.#tasks.values()) {
      if (!t.terminal) void t.run.poll();
    }
  }

  // ---- checkpoints and recovery ----

  /** Writes a task's unacknowledged updates to its run's checkpoint; removes the run once all are acknowledged after its end. */
  checkpointUpdates(frameworkId: string, taskId: string, pending: readonly TaskStatus[]): void {
    const key = taskKey(frameworkId, taskId);
    const entry = this.#tasks.get(key);
    const files = entry?.run.files ?? this.#endedRuns.get(key);
    if (!files) return;
    if (pending.length === 0 && (!entry || entry.terminal)) {
      files.remove();
      this.#endedRuns.delete(key);
      return;
    }
    files.writeUpdates(pending);
  }

  /**
   * Picks up the runs a previous agent process checkpointed: running ones are watched again
   * (and reported TASK_RUNNING), ones that ended while the agent was down are reported with the
   * exit status their supervisor recorded, and unacknowledged updates are queued again.
   */
  async recover(): Promise<void> {
    const { updates, workDir } = this.#opts;
    const resumed: TaskEntry[] = [];
    let ended = 0;
    for (const files of listRuns(workDir)) {
      const rec = files.readRun();
      if (!rec) {
        this.#log('warn', 'removing an unreadable task checkpoint', { dir: files.dir });
        files.remove();
        continue;
      }
      const key = taskKey(rec.frameworkId, rec.taskId);
      const pending = files.readUpdates();
      const base = { frameworkId: rec.frameworkId, taskId: rec.taskId };
      if (files.isEnded() || pending.some((u) => isTerminal(u.state)) || this.#tasks.has(key)) {
        if (pending.length === 0) {
          files.remove();
          continue;
        }
        this.#endedRuns.set(key, files);
        updates.restore(pending);
        this.#log('info', 'resending updates of a task that ended before the restart', {
          ...base,
          updates: pending.length,
        });
        continue;
      }
      const run = this.#newRun(rec.frameworkId, rec.task, { recover: rec });
      const entry: TaskEntry = { frameworkId: rec.frameworkId, taskId: rec.taskId, run, terminal: false };
      this.#tasks.set(key, entry);
      updates.restore(pending);
      resumed.push(entry);
    }
    // Ends of tasks that exited while the agent was down are found now, before REGISTER.
    await Promise.all(resumed.map((e) => e.run.poll()));
    let running = 0;
    for (const e of resumed) {
      if (e.terminal) {
        ended++;
        continue;
      }
      running++;
      this.#log('info', 'recovered a running task', {
        frameworkId: e.frameworkId,
        taskId: e.taskId,
        pid: e.run.pid,
      });
      this.#update({
        frameworkId: e.frameworkId,
        taskId: e.taskId,
        state: 'TASK_RUNNING',
        message: `recovered after an agent restart (pid ${e.run.pid})`,
        source: 'SOURCE_AGENT',
      });
      this.#startHealthChecks(taskKey(e.frameworkId, e.taskId));
    }
    if (resumed.length > 0 || this.#endedRuns.size > 0) {
      this.#log('info', `recovered ${running} running task(s); ${ended} ended while the agent was down`, {
        pendingUpdates: updates.pending().length,
      });
    }
    this.#opts.events.emit('recovered', running, ended);
  }

  // ---- stopping ----

  stopHealthChecks(): void {
    for (const t of this.#tasks.values()) t.health?.stop();
  }

  /** Kills every running task and waits for them all to end. */
  async killAll(gracePeriodMs?: number): Promise<void> {
    const live = [...this.#tasks.values()].filter((t) => !t.terminal);
    for (const t of live) t.run.kill(gracePeriodMs);
    // Recovered tasks are not the agent's children: their end is seen by polling.
    const polling = setInterval(() => {
      for (const t of live) void t.run.poll();
    }, 50);
    try {
      await Promise.all(live.map((t) => t.run.terminated));
    } finally {
      clearInterval(polling);
    }
  }

  /** SIGKILLs every running task's process group, synchronously (for `process.on('exit')`). */
  killAllNow(): void {
    for (const t of this.#tasks.values()) if (!t.terminal) t.run.killNow();
  }
}
