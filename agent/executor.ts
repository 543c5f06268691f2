/**
 * The executor: runs one task as a real process in its own sandbox directory and process group,
 * and reports what happened to it through callbacks (and the `terminated` promise).
 *
 * - Sandbox: `<workDir>/sandboxes/<frameworkId>/<taskId>/<runId>`, holding `stdout` and `stderr`.
 *   The child writes to those files directly (not through pipes), so its output survives the
 *   agent and costs the agent nothing while the task runs.
 * - Command: `command.shell !== false` → `/bin/sh -c value` (arguments ignored, as Mesos);
 *   `shell === false` → `value` is the executable and `arguments` its whole argv, *including*
 *   argv[0], as in Mesos's CommandInfo (no arguments → argv is `[value]`).
 * - Environment: a clean base (PATH, HOME = sandbox, MESOS_SANDBOX, MESO_SANDBOX, MESO_TASK_ID,
 *   MESO_FRAMEWORK_ID, MESO_AGENT_ID) overlaid with `command.environment`; cwd = sandbox.
 * - Process group: spawned detached, so the task leads its own group and a kill reaches every
 *   process it started (unless one calls setsid itself; cgroup/PID-namespace isolation closes
 *   that gap later). When the task's main process exits, what is left of its group is SIGKILLed,
 *   as Mesos destroys the container when the task ends.
 * - Kill: SIGTERM to the group, SIGKILL to the group after the grace period.
 *
 * Isolation (cgroups, namespaces, user switching) plugs in through `Isolator`s: each may rewrite
 * the spawn spec before launch and clean up after exit. `command.user` is not honoured yet: tasks
 * run as the agent's user until a user-switching isolator exists (Mesos's `--no-switch_user`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { TaskInfo, TaskReason } from '../lib/protocol/common.ts';

export const DEFAULT_KILL_GRACE_PERIOD_MS = 3000;
/** How much of each output file terminal updates carry. */
export const TAIL_BYTES = 4096;
/** How many of stderr's last lines a failure message quotes. */
export const MESSAGE_STDERR_LINES = 20;
const MESSAGE_MAX = 8192;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type TerminalTaskState = 'TASK_FINISHED' | 'TASK_FAILED' | 'TASK_KILLED';

/** How a task ended, ready to become a terminal status update. */
export interface TaskTermination {
  readonly state: TerminalTaskState;
  readonly reason?: TaskReason;
  readonly message: string;
  /** The main process's exit code, when it exited (not when a signal ended it). */
  readonly exitCode?: number;
  /** The signal that ended the main process, if one did. */
  readonly signal?: NodeJS.Signals;
  /** After a kill: whether SIGKILL was needed (the task outlived its grace period). */
  readonly sigkilled?: boolean;
  /** The last TAIL_BYTES of the sandbox's stdout and stderr files. */
  readonly stdoutTail: string;
  readonly stderrTail: string;
}

/** How a task's process is started; isolators may rewrite it. */
export interface SpawnSpec {
  readonly file: string;
  readonly args: readonly string[];
  readonly argv0?: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly uid?: number;
  readonly gid?: number;
}

export interface IsolationContext {
  readonly agentId: string;
  readonly frameworkId: string;
  readonly task: TaskInfo;
  readonly runId: string;
  readonly sandbox: string;
}

/** A piece of isolation (cgroups, namespaces, user switching). Nothing uses one yet. */
export interface Isolator {
  readonly name: string;
  /** Before launch: may rewrite the spawn spec (wrap in `unshare`, set uid/gid). Throwing fails the launch. */
  prepare?(ctx: IsolationContext, spec: SpawnSpec): Promise<SpawnSpec>;
  /** After the task's process group is gone. */
  cleanup?(ctx: IsolationContext): Promise<void>;
}

export interface RunTaskOptions {
  readonly workDir: string;
  readonly agentId: string;
  readonly frameworkId: string;
  readonly task: TaskInfo;
  /** Default: a random uuid. */
  readonly runId?: string;
  /** SIGTERM→SIGKILL grace when neither kill() nor the task names one. Default 3000 (Mesos's 3 s). */
  readonly defaultKillGracePeriodMs?: number;
  /** PATH in the task's base environment. Default: the agent's PATH, else a standard one. */
  readonly path?: string;
  readonly isolators?: readonly Isolator[];
  /** The task's process is running (the agent reports TASK_STARTING, then TASK_RUNNING). */
  readonly onStarted?: (pid: number) => void;
  /** Called once, with how the task ended. */
  readonly onTerminated?: (t: TaskTermination) => void;
}

/** `<workDir>/sandboxes/<frameworkId>/<taskId>/<runId>`; ids never contain `/` (protocol Id). */
export function sandboxPath(workDir: string, frameworkId: string, taskId: string, runId: string): string {
  const root = resolve(workDir, 'sandboxes');
  const dir = resolve(root, frameworkId, taskId, runId);
  if (!dir.startsWith(root + sep))
    throw new Error(`invalid sandbox path for ${frameworkId}/${taskId}/${runId}`);
  return dir;
}

/** The spawn spec for a task before isolators see it. */
export function buildSpawnSpec(o: {
  task: TaskInfo;
  sandbox: string;
  agentId: string;
  frameworkId: string;
  path?: string;
}): SpawnSpec {
  const { command } = o.task;
  const env: Record<string, string> = {
    PATH: o.path ?? process.env.PATH ?? DEFAULT_PATH,
    HOME: o.sandbox,
    MESOS_SANDBOX: o.sandbox,
    MESO_SANDBOX: o.sandbox,
    MESO_TASK_ID: o.task.taskId,
    MESO_FRAMEWORK_ID: o.frameworkId,
    MESO_AGENT_ID: o.agentId,
    ...command.environment,
  };
  if (command.shell === false) {
    const argv = command.arguments ?? [];
    return {
      file: command.value,
      args: argv.slice(1),
      ...(argv.length > 0 ? { argv0: argv[0] } : {}),
      env,
      cwd: o.sandbox,
    };
  }
  return { file: '/bin/sh', args: ['-c', command.value], env, cwd: o.sandbox };
}

/** The last `maxBytes` of a file ('' when it is missing). */
export async function readTail(path: string, maxBytes = TAIL_BYTES): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    // A cut through a multi-byte character decodes as replacement characters: drop them.
    return start > 0 ? text.replace(/^\uFFFD+/, '') : text;
  } catch {
    return '';
  } finally {
    await fh?.close();
  }
}

/** The last `lines` lines of a text (ignoring one trailing newline). */
export function lastLines(text: string, lines: number): string {
  const trimmed = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (trimmed === '') return '';
  return trimmed.split('\n').slice(-lines).join('\n');
}

function withStderr(head: string, stderrTail: string): string {
  const quoted = lastLines(stderrTail, MESSAGE_STDERR_LINES);
  const message = quoted ? `${head}\n--- last lines of stderr ---\n${quoted}` : head;
  return message.length > MESSAGE_MAX ? message.slice(0, MESSAGE_MAX) : message;
}

function describeSpawnError(e: unknown, spec: SpawnSpec | undefined): string {
  const err = e as NodeJS.ErrnoException;
  const what = spec ? `"${spec.file}"` : 'the task';
  switch (err?.code) {
    case 'ENOENT':
      return `cannot launch ${what}: no such executable or sandbox directory (ENOENT)`;
    case 'EACCES':
      return `cannot launch ${what}: permission denied (EACCES)`;
    default:
      return `cannot launch ${what}: ${err?.message ?? String(e)}`;
  }
}

/**
 * One run of one task. Construction starts it (asynchronously: the sandbox is created first);
 * kill() may be called at any time, also before the process exists.
 *
 * @example
 * const run = new TaskRun({ workDir, agentId, frameworkId, task, onStarted: (pid) => log(pid) });
 * const t = await run.terminated; // { state: 'TASK_FINISHED', exitCode: 0, stdoutTail: 'hi\n', ... }
 */
export class TaskRun {
  readonly runId: string;
  readonly sandbox: string;
  /** Resolves once, with how the task ended; never rejects. */
  readonly terminated: Promise<TaskTermination>;

  readonly #opts: RunTaskOptions;
  readonly #ctx: IsolationContext;
  #resolve!: (t: TaskTermination) => void;
  #pid: number | undefined;
  #spec: SpawnSpec | undefined;
  #done = false;
  #killRequested = false;
  #sigtermSent = false;
  #sigkilled = false;
  #killedNow = false;
  #graceMs = 0;
  #graceTimer: NodeJS.Timeout | undefined;
  #sigkillAt = 0;

  constructor(opts: RunTaskOptions) {
    this.#opts = opts;
    this.runId = opts.runId ?? randomUUID();
    this.sandbox = sandboxPath(opts.workDir, opts.frameworkId, opts.task.taskId, this.runId);
    this.#ctx = {
      agentId: opts.agentId,
      frameworkId: opts.frameworkId,
      task: opts.task,
      runId: this.runId,
      sandbox: this.sandbox,
    };
    this.terminated = new Promise((r) => {
      this.#resolve = r;
    });
    void this.#start();
  }

  get taskId(): string {
    return this.#opts.task.taskId;
  }

  get frameworkId(): string {
    return this.#opts.frameworkId;
  }

  /** The task's process id (also its process group id), once spawned. */
  get pid(): number | undefined {
    return this.#pid;
  }

  get isTerminated(): boolean {
    return this.#done;
  }

  /** The grace period used when kill() is given none: the task's, else the default. */
  get defaultGracePeriodMs(): number {
    const s = this.#opts.task.killGracePeriodSeconds;
    return s !== undefined ? s * 1000 : (this.#opts.defaultKillGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS);
  }

  /**
   * SIGTERM to the task's process group, SIGKILL after `gracePeriodMs` if it has not exited.
   * A second kill with a shorter grace period brings the SIGKILL forward. The task ends as
   * TASK_KILLED whatever its exit status.
   */
  kill(gracePeriodMs: number = this.defaultGracePeriodMs): void {
    if (this.#done) return;
    const grace = Math.max(0, gracePeriodMs);
    if (!this.#killRequested) {
      this.#killRequested = true;
      this.#graceMs = grace;
    }
    if (this.#pid === undefined) return; // #start() sees the request before spawning.
    if (!this.#sigtermSent) {
      this.#sigtermSent = true;
      this.#graceMs = grace;
      this.#signalGroup('SIGTERM');
      this.#armSigkill(grace);
    } else if (!this.#sigkilled && Date.now() + grace < this.#sigkillAt) {
      this.#armSigkill(grace);
    }
  }

  /** SIGKILL to the whole process group now, synchronously (for the agent's own exit). */
  killNow(): void {
    if (this.#done) return;
    this.#killRequested = true;
    if (this.#pid === undefined) return; // #start() sees the request before spawning.
    this.#sigtermSent = true;
    this.#sigkilled = true;
    this.#killedNow = true;
    this.#signalGroup('SIGKILL');
  }

  #armSigkill(ms: number): void {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#sigkillAt = Date.now() + ms;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#done) return;
      this.#sigkilled = true;
      this.#signalGroup('SIGKILL');
    }, ms);
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.#pid === undefined) return;
    try {
      process.kill(-this.#pid, signal);
    } catch {
      // ESRCH: the group is already gone. (EPERM cannot happen for a group the agent started.)
    }
  }

  async #start(): Promise<void> {
    try {
      await mkdir(this.sandbox, { recursive: true });
      let spec = buildSpawnSpec({
        task: this.#opts.task,
        sandbox: this.sandbox,
        agentId: this.#opts.agentId,
        frameworkId: this.#opts.frameworkId,
        path: this.#opts.path,
      });
      this.#spec = spec;
      for (const iso of this.#opts.isolators ?? []) {
        if (iso.prepare) spec = await iso.prepare(this.#ctx, spec);
        this.#spec = spec;
      }
      if (this.#killRequested) {
        await this.#finish({
          state: 'TASK_KILLED',
          reason: 'REASON_TASK_KILLED_DURING_LAUNCH',
          message: 'killed before its process was started',
        });
        return;
      }
      // From here to the spawn nothing awaits, so no kill() can slip in unseen.
      const out = openSync(join(this.sandbox, 'stdout'), 'a');
      let err: number;
      try {
        err = openSync(join(this.sandbox, 'stderr'), 'a');
      } catch (e) {
        closeSync(out);
        throw e;
      }
      let child: ChildProcess;
      try {
        child = spawn(spec.file, [...spec.args], {
          cwd: spec.cwd,
          env: spec.env,
          detached: true,
          stdio: ['ignore', out, err],
          ...(spec.argv0 !== undefined ? { argv0: spec.argv0 } : {}),
          ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
          ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
        });
      } finally {
        // The child holds its own copies now (or never will).
        closeSync(out);
        closeSync(err);
      }
      child.once('error', (e) => {
        // Emitted when the spawn itself failed (ENOENT, EACCES): no process exists.
        if (this.#pid === undefined) void this.#launchFailed(e);
      });
      if (child.pid === undefined) return; // The 'error' event follows.
      this.#pid = child.pid;
      child.once('exit', (code, signal) => void this.#exited(code, signal));
      this.#opts.onStarted?.(child.pid);
    } catch (e) {
      await this.#launchFailed(e);
    }
  }

  async #launchFailed(e: unknown): Promise<void> {
    await this.#finish({
      state: 'TASK_FAILED',
      reason: 'REASON_CONTAINER_LAUNCH_FAILED',
      message: describeSpawnError(e, this.#spec),
    });
  }

  async #exited(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    // The main process is gone; take down whatever it left behind in its group.
    this.#signalGroup('SIGKILL');
    const status = code !== null ? `exited with code ${code}` : `killed by signal ${signal}`;
    const exit = {
      ...(code !== null ? { exitCode: code } : {}),
      ...(signal !== null ? { signal } : {}),
    };
    if (this.#killRequested) {
      const message = this.#killedNow
        ? `killed with SIGKILL as the agent shut down (${status})`
        : this.#sigkilled
          ? `killed with SIGKILL: still running ${this.#graceMs / 1000} s after SIGTERM (${status})`
          : `killed with SIGTERM (${status})`;
      await this.#finish({ state: 'TASK_KILLED', message, sigkilled: this.#sigkilled, ...exit });
    } else if (code === 0) {
      await this.#finish({ state: 'TASK_FINISHED', message: 'exited with code 0', ...exit });
    } else {
      await this.#finish({ state: 'TASK_FAILED', message: status, ...exit }, true);
    }
  }

  async #finish(t: Omit<TaskTermination, 'stdoutTail' | 'stderrTail'>, quoteStderr = false): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    for (const iso of this.#opts.isolators ?? []) {
      try {
        await iso.cleanup?.(this.#ctx);
      } catch {
        // A failed cleanup does not change how the task ended.
      }
    }
    const [stdoutTail, stderrTail] = await Promise.all([
      readTail(join(this.sandbox, 'stdout')),
      readTail(join(this.sandbox, 'stderr')),
    ]);
    const termination: TaskTermination = {
      ...t,
      message: quoteStderr ? withStderr(t.message, stderrTail) : t.message,
      stdoutTail,
      stderrTail,
    };
    this.#resolve(termination);
    try {
      this.#opts.onTerminated?.(termination);
    } catch {
      // A throwing callback must not turn into an unhandled rejection here.
    }
  }
}

/** Starts a task; see TaskRun. */
export function runTask(opts: RunTaskOptions): TaskRun {
  return new TaskRun(opts);
}
