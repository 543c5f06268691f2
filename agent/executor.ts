/**
 * The executor: runs one task as real processes in its own sandbox directory, under a per-task
 * supervisor, and reports what happened to it through callbacks (and the `terminated` promise).
 *
 * - Sandbox: `<workDir>/sandboxes/<frameworkId>/<taskId>/<runId>`, holding `stdout` and `stderr`
 *   and the fetched URIs. The task writes to those files directly (not through pipes), so its
 *   output survives the agent and costs the agent nothing while the task runs.
 * - Checkpoint: `<workDir>/meta/runs/<runId>/` (see checkpoint.ts): the task before launch, the
 *   supervisor's pid and start time after, the exit status the supervisor writes.
 * - Command: `command.shell !== false` → `/bin/sh -c value` (arguments ignored, as Mesos);
 *   `shell === false` → `value` is the executable and `arguments` its whole argv, *including*
 *   argv[0], as in Mesos's CommandInfo (no arguments → argv is `[value]`). A missing or
 *   non-executable `value` fails the launch before anything runs.
 * - Environment: a clean base (PATH = a standard one, never the agent's; HOME = sandbox,
 *   MESOS_SANDBOX, MESO_SANDBOX, MESO_TASK_ID, MESO_FRAMEWORK_ID, MESO_AGENT_ID) overlaid with
 *   `command.environment`; cwd = sandbox. The wrappers that still run as root (`unshare`, the
 *   supervisor, `setpriv`) never see it: they run with WRAPPER_ENV only, and the task's
 *   environment is applied by the last wrapper, after the user switch (ENV_LOADER, reading it
 *   from a pipe on fd 3 so it is never in any argv).
 * - Processes: `[outer wrappers (unshare)] sh <supervisor> [inner wrappers (setpriv)] command`,
 *   spawned detached so the supervisor leads a new session and process group that every process
 *   of the task inherits. When the task's command exits, what is left of it (its group, its
 *   cgroup) is SIGKILLed, as Mesos destroys the container when the task ends.
 * - Kill: SIGTERM to the group, SIGKILL to the group (and the cgroup) after the grace period.
 *
 * Isolation (cgroups, PID namespace, user switching, containers, the process-tree fallback) plugs
 * in through `Isolator`s: each may rewrite the spawn spec before launch, report a limit the task
 * broke while it runs, and clean up after it ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  fstatSync,
  mkdirSync,
  openSync,
  statSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, delimiter, dirname, join, resolve, sep } from 'node:path';
import type { TaskInfo, TaskReason } from '../lib/protocol/common.ts';
import { type RunCheckpoint, RunFiles, readText, runMetaDir } from './checkpoint.ts';
import { isSameLiveProcess, listProcesses, readStat } from './isolation/proc.ts';
import { parseStatusFile, type SupervisedExit, supervisorArgv } from './isolation/supervisor.ts';
import { switchUserArgv, which } from './isolation/user.ts';

export const DEFAULT_KILL_GRACE_PERIOD_MS = 3000;
/** How much of each output file terminal updates carry. */
export const TAIL_BYTES = 4096;
/** How many of stderr's last lines a failure message quotes. */
export const MESSAGE_STDERR_LINES = 20;
const MESSAGE_MAX = 8192;
/** Tasks' PATH unless the agent is configured with another: never the agent's own PATH. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The whole environment of the wrappers that run before the user switch (as root): nothing a
 * task chose (LD_PRELOAD, PATH, ENV, … would otherwise run the task's code as root).
 */
export const WRAPPER_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: DEFAULT_PATH });

/** The file descriptor on which the task's environment reaches ENV_LOADER. */
export const ENV_FD = 3;

/**
 * The last wrapper, run as the task's user: reads `export NAME='value'` lines from fd 3 (a
 * socket Node creates; `/dev/fd/3` cannot be opened), closes it, then execs the command. Its own environment is WRAPPER_ENV, so what the task set only
 * takes effect from here on.
 */
export const ENV_LOADER = `e=$(cat <&${ENV_FD}) || exit 126; exec ${ENV_FD}<&-; eval "$e" || exit 126; unset e; exec "$@"`;

/** Joins the cgroups named by its arguments (count first), then execs the rest. */
const JOIN_SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done',
  'exec "$@"',
].join('\n');

/** How a command is put inside a running task (see TaskRun.execArgv). */
interface ExecWrappers {
  readonly joinCgroups: readonly string[];
  readonly inner: readonly (readonly string[])[];
  readonly nsenter?: string;
}

/** A name a POSIX shell can export. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The script ENV_LOADER reads: one `export NAME='value'` per variable; LaunchError for a name or value no environment can hold. */
export function envScript(env: Readonly<Record<string, string>>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) {
      throw new LaunchError(
        'REASON_TASK_INVALID',
        `invalid environment variable name ${JSON.stringify(name.slice(0, 64))}: use letters, digits and _ (not starting with a digit)`,
      );
    }
    if (value.includes('\0')) {
      throw new LaunchError('REASON_TASK_INVALID', `environment variable ${name} contains a NUL character`);
    }
    lines.push(`export ${name}='${value.replaceAll("'", "'\\''")}'`);
  }
  return `${lines.join('\n')}\n`;
}

export type TerminalTaskState = 'TASK_FINISHED' | 'TASK_FAILED' | 'TASK_KILLED';

/** How a task ended, ready to become a terminal status update. */
export interface TaskTermination {
  readonly state: TerminalTaskState;
  readonly reason?: TaskReason;
  readonly message: string;
  /** The command's exit code, when it exited (not when a signal ended it). */
  readonly exitCode?: number;
  /** The signal that ended the command, if one did. */
  readonly signal?: NodeJS.Signals;
  /** After a kill: whether SIGKILL was needed (the task outlived its grace period). */
  readonly sigkilled?: boolean;
  /** Set when health checks decided the task's end. */
  readonly healthy?: boolean;
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
  /** Commands wrapped around the supervisor, outermost first (`unshare … --`). */
  readonly outer?: readonly (readonly string[])[];
  /** Commands between the supervisor and the task's command (`setpriv … --`). */
  readonly inner?: readonly (readonly string[])[];
  /** cgroup.procs files the supervisor joins before it starts the command. */
  readonly joinCgroups?: readonly string[];
}

export interface IsolationContext {
  readonly agentId: string;
  readonly frameworkId: string;
  readonly task: TaskInfo;
  readonly runId: string;
  readonly sandbox: string;
  /** What isolators record to find their resources again after an agent restart (JSON). */
  readonly state: Record<string, unknown>;
  /** The supervisor's pid (its process group and session), once spawned. */
  pid?: number;
}

/** A limit a task broke; the task is stopped and ends TASK_FAILED with this reason. */
export interface Limitation {
  readonly reason: TaskReason;
  readonly message: string;
}

/** A piece of isolation (cgroups, namespaces, user switching, containers). */
export interface Isolator {
  readonly name: string;
  /** Before launch: may rewrite the spawn spec. Throwing fails the launch (a LaunchError names the reason). */
  prepare?(ctx: IsolationContext, spec: SpawnSpec): Promise<SpawnSpec>;
  /**
   * While the task runs (each monitor tick, `final` false) and once when its command has ended
   * (`final` true): a limit it broke, if any.
   */
  watch?(ctx: IsolationContext, final: boolean): Limitation | undefined | Promise<Limitation | undefined>;
  /** SIGKILL every process of the task, synchronously (beyond its process group). */
  killAll?(ctx: IsolationContext): void;
  /** The task's processes it knows of (a cgroup's members), for signals beyond the process group. */
  pids?(ctx: IsolationContext): number[];
  /**
   * Before anything is put in the sandbox (URIs fetched): may give the sandbox to the task's
   * user and record it in `ctx.state.user`. Throwing fails the launch.
   */
  claimSandbox?(ctx: IsolationContext): void;
  /** After the task's processes are gone. */
  cleanup?(ctx: IsolationContext): Promise<void>;
}

/** A launch that cannot go ahead, with the reason its TASK_FAILED carries. */
export class LaunchError extends Error {
  override name = 'LaunchError';
  constructor(
    readonly reason: TaskReason,
    message: string,
  ) {
    super(message);
  }
}

/** Why a running task is being killed, when it is not the framework's KILL. */
export interface KillCause {
  readonly reason: TaskReason;
  readonly message: string;
  readonly healthy?: boolean;
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
  /** PATH in the task's base environment. Default: DEFAULT_PATH (never the agent's own PATH). */
  readonly path?: string;
  readonly isolators?: readonly Isolator[];
  /**
   * Fetches the task's URIs into the sandbox (the agent reports TASK_STARTING as it begins);
   * throwing fails the launch (LaunchError's reason, else FETCHER_FAILED).
   */
  readonly fetch?: (ctx: IsolationContext) => Promise<void>;
  /** Resume a run the agent started before it restarted, from its checkpoint (nothing is spawned). */
  readonly recover?: RunCheckpoint;
  /** Milliseconds since the epoch. Default Date.now. */
  readonly now?: () => number;
  /** The task's process is running (the agent reports TASK_RUNNING). */
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
    PATH: o.path ?? DEFAULT_PATH,
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

/**
 * Where `file` resolves for a task (a name without `/` is looked up on the task's PATH), or a
 * LaunchError saying why it cannot be run — checked before launch so that a missing command is
 * a clear TASK_FAILED and not a shell's exit status 127.
 */
export function resolveExecutable(file: string, spec: Pick<SpawnSpec, 'env' | 'cwd'>): string {
  const candidates = file.includes('/')
    ? [resolve(spec.cwd, file)]
    : (spec.env.PATH ?? DEFAULT_PATH)
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(resolve(spec.cwd, d), file));
  let denied: string | undefined;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied ??= c;
    }
  }
  if (denied !== undefined) {
    throw new LaunchError(
      'REASON_CONTAINER_LAUNCH_FAILED',
      `cannot launch "${file}": ${denied} is not executable (EACCES)`,
    );
  }
  throw new LaunchError(
    'REASON_CONTAINER_LAUNCH_FAILED',
    file.includes('/')
      ? `cannot launch "${file}": no such executable (ENOENT)`
      : `cannot launch "${file}": not found on the task's PATH (ENOENT)`,
  );
}

/**
 * The last `maxBytes` of a file ('' when it is missing). The file is in a directory the task
 * owns, and the agent reading it may be root: a symlink is not followed, a FIFO or device is not
 * opened for reading (O_NONBLOCK, then it must be a regular file), and a file with other names
 * (a hard link to someone else's file) is not read.
 */
export async function readTail(path: string, maxBytes = TAIL_BYTES): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile() || st.nlink !== 1) return '';
    const { size } = st;
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

/**
 * Opens a task's output file for appending, as root, after the task's user has had the sandbox
 * (URIs were fetched into it as that user): never through a symlink, never a FIFO or device,
 * never a file with other names.
 */
function openOutput(path: string): number {
  const fd = openSync(
    path,
    fsConstants.O_WRONLY |
      fsConstants.O_APPEND |
      fsConstants.O_CREAT |
      fsConstants.O_NOFOLLOW |
      fsConstants.O_NONBLOCK,
    0o600,
  );
  const st = fstatSync(fd);
  if (!st.isFile() || st.nlink !== 1) {
    closeSync(fd);
    throw new LaunchError(
      'REASON_CONTAINER_LAUNCH_FAILED',
      `${basename(path)} in the sandbox is not a regular file of its own (replaced by a fetched URI?)`,
    );
  }
  return fd;
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

/** The full argv: outer wrappers, the supervisor, inner wrappers, then the command itself. */
export function supervisedArgv(spec: SpawnSpec, statusFile: string): string[] {
  let command = [spec.file, ...spec.args];
  if (spec.argv0 !== undefined && spec.argv0 !== spec.file) {
    // argv[0] other than the file: only bash's `exec -a` can set it from a shell.
    command = ['/bin/bash', '-c', 'exec -a "$0" "$@"', spec.argv0, spec.file, ...spec.args];
  }
  return [
    ...(spec.outer ?? []).flat(),
    ...supervisorArgv(statusFile, spec.joinCgroups ?? [], [
      ...(spec.inner ?? []).flat(),
      '/bin/sh',
      '-c',
      ENV_LOADER,
      'meso-env',
      ...command,
    ]),
  ];
}

/**
 * One run of one task. Construction starts it (asynchronously: the sandbox is created, URIs are
 * fetched and isolators prepared first); kill() may be called at any time, also before the
 * process exists. With `recover`, construction instead resumes watching a run a previous agent
 * process started: its exit is noticed by poll() (it is no longer the agent's child).
 *
 * @example
 * const run = new TaskRun({ workDir, agentId, frameworkId, task, onStarted: (pid) => log(pid) });
 * const t = await run.terminated; // { state: 'TASK_FINISHED', exitCode: 0, stdoutTail: 'hi\n', ... }
 */
export class TaskRun {
  readonly runId: string;
  readonly sandbox: string;
  /** The run's checkpoint files. */
  readonly files: RunFiles;
  /** Resolves once, with how the task ended; never rejects. */
  readonly terminated: Promise<TaskTermination>;
  /** When the task's process started (ms since the epoch); for a recovered run, when it was launched. */
  startedAt: number | undefined;

  readonly #opts: RunTaskOptions;
  readonly #ctx: IsolationContext;
  readonly #now: () => number;
  #resolve!: (t: TaskTermination) => void;
  #pid: number | undefined;
  #startTime: number | undefined;
  #recovered = false;
  /** A recovered run whose command had already ended when this agent process picked it up. */
  #endedWhileDown = false;
  #spec: SpawnSpec | undefined;
  #done = false;
  #exiting = false;
  #killRequested = false;
  #killCause: KillCause | undefined;
  #sigtermSent = false;
  #sigkilled = false;
  #killedNow = false;
  #graceMs = 0;
  #graceTimer: NodeJS.Timeout | undefined;
  #sigkillAt = 0;
  #limitation: Limitation | undefined;
  #polling = false;
  #launchedAt: number;

  constructor(opts: RunTaskOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const rec = opts.recover;
    this.runId = rec?.runId ?? opts.runId ?? randomUUID();
    this.sandbox = rec?.sandbox ?? sandboxPath(opts.workDir, opts.frameworkId, opts.task.taskId, this.runId);
    this.files = new RunFiles(runMetaDir(opts.workDir, this.runId));
    this.#launchedAt = rec?.launchedAt ?? this.#now();
    this.#ctx = {
      agentId: opts.agentId,
      frameworkId: opts.frameworkId,
      task: opts.task,
      runId: this.runId,
      sandbox: this.sandbox,
      state: { ...(rec?.isolation ?? {}) },
    };
    this.terminated = new Promise((r) => {
      this.#resolve = r;
    });
    if (rec) this.#resume(rec);
    else void this.#start();
  }

  get taskId(): string {
    return this.#opts.task.taskId;
  }

  get frameworkId(): string {
    return this.#opts.frameworkId;
  }

  get task(): TaskInfo {
    return this.#opts.task;
  }

  /** The supervisor's process id (also the task's process group id), once spawned. */
  get pid(): number | undefined {
    return this.#pid;
  }

  get isTerminated(): boolean {
    return this.#done;
  }

  /** Whether this run was started by an earlier agent process and picked up from its checkpoint. */
  get isRecovered(): boolean {
    return this.#recovered;
  }

  /** What the isolators recorded (the task user, cgroup directories). */
  get isolationState(): Readonly<Record<string, unknown>> {
    return this.#ctx.state;
  }

  /** For a run checkpointed by an agent that recorded no wrappers: its user and namespace (not its cgroups). */
  #legacyWrappers(): ExecWrappers | undefined {
    const user = this.#ctx.state.user as { uid: number; gid: number } | undefined;
    const setpriv = user ? which('setpriv') : undefined;
    if (user && !setpriv) return undefined;
    return {
      joinCgroups: [],
      inner: user && setpriv ? [switchUserArgv(setpriv, { name: '', known: false, ...user })] : [],
      ...(this.#ctx.state.pidNamespace === true ? { nsenter: which('nsenter') ?? 'nsenter' } : {}),
    };
  }

  /**
   * The argv that runs `command` (argv[0] included) inside this running task, as its own
   * processes run: in its PID (and /proc mount) namespace, its cgroups, as its user, with the
   * environment ENV_LOADER reads on fd ENV_FD applied last. Spawn it with WRAPPER_ENV. Undefined
   * when the task is not running or its namespace cannot be entered.
   */
  execArgv(command: readonly string[]): string[] | undefined {
    const wrappers = (this.#ctx.state.wrappers as ExecWrappers | undefined) ?? this.#legacyWrappers();
    if (this.#done || this.#pid === undefined || !wrappers) return undefined;
    const outer: string[] = [];
    if (this.#ctx.state.pidNamespace === true) {
      // The namespace's init is `unshare`'s child (the supervisor).
      const init = listProcesses().find((p) => p.ppid === this.#pid);
      if (!init || !wrappers.nsenter) return undefined;
      outer.push(wrappers.nsenter, `--target=${init.pid}`, '--pid', '--mount', `--wd=${this.sandbox}`, '--');
    }
    const join = wrappers.joinCgroups;
    return [
      ...outer,
      '/bin/sh',
      '-c',
      JOIN_SCRIPT,
      'meso-exec',
      String(join.length),
      ...join,
      ...wrappers.inner.flat(),
      '/bin/sh',
      '-c',
      ENV_LOADER,
      'meso-env',
      ...command,
    ];
  }

  /** The grace period used when kill() is given none: the task's, else the default. */
  get defaultGracePeriodMs(): number {
    const s = this.#opts.task.killGracePeriodSeconds;
    return s !== undefined ? s * 1000 : (this.#opts.defaultKillGracePeriodMs ?? DEFAULT_KILL_GRACE_PERIOD_MS);
  }

  /**
   * SIGTERM to the task's process group, SIGKILL after `gracePeriodMs` if it has not exited.
   * A second kill with a shorter grace period brings the SIGKILL forward. The task ends as
   * TASK_KILLED whatever its exit status (with `cause`'s reason and health when given).
   */
  kill(gracePeriodMs: number = this.defaultGracePeriodMs, cause?: KillCause): void {
    if (this.#done) return;
    const grace = Math.max(0, gracePeriodMs);
    if (!this.#killRequested) {
      this.#killRequested = true;
      this.#killCause = cause;
      this.#graceMs = grace;
      this.#checkpointKill(grace);
    }
    if (this.#pid === undefined) return; // #start() sees the request before spawning.
    if (!this.#sigtermSent) {
      this.#sigtermSent = true;
      this.#graceMs = grace;
      this.#terminate(0);
      this.#armSigkill(grace);
    } else if (!this.#sigkilled && this.#now() + grace < this.#sigkillAt) {
      this.#armSigkill(grace);
    }
  }

  /** SIGKILL to the whole task now, synchronously (for the agent's own exit). */
  killNow(): void {
    if (this.#done) return;
    this.#killRequested = true;
    if (this.#pid === undefined) return; // #start() sees the request before spawning.
    this.#sigtermSent = true;
    this.#sigkilled = true;
    this.#killedNow = true;
    this.#killEverything();
  }

  /**
   * Called periodically by the agent: asks the isolators whether the task broke a limit (and
   * stops it if so) and, for a recovered run, whether its process has ended.
   */
  async poll(): Promise<void> {
    if (this.#done || this.#polling || this.#pid === undefined || this.#exiting) return;
    this.#polling = true;
    try {
      if (this.#limitation === undefined) {
        const l = await this.#watch(false);
        if (l && !this.#done && !this.#exiting) this.#limit(l);
      }
      if (!this.#done && !this.#exiting && this.#recoveredGone()) await this.#ended(undefined, undefined);
    } finally {
      this.#polling = false;
    }
  }

  /** A recovered run whose supervisor has ended (it is not the agent's child: /proc tells). */
  #recoveredGone(): boolean {
    return (
      this.#recovered &&
      this.#pid !== undefined &&
      this.#startTime !== undefined &&
      !isSameLiveProcess(this.#pid, this.#startTime)
    );
  }

  #limit(l: Limitation): void {
    this.#limitation = l;
    this.#sigtermSent = true;
    this.#sigkilled = true;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#killEverything();
  }

  async #watch(final: boolean): Promise<Limitation | undefined> {
    for (const iso of this.#opts.isolators ?? []) {
      try {
        const l = await iso.watch?.(this.#ctx, final);
        if (l) return l;
      } catch {
        // A failing measurement is not a limitation.
      }
    }
    return undefined;
  }

  #checkpointKill(grace: number): void {
    try {
      this.files.writeKilled({ at: this.#now(), gracePeriodMs: grace });
    } catch {
      // Best effort: without it a kill in progress reads as a failure after an agent restart.
    }
  }

  #armSigkill(ms: number): void {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#sigkillAt = this.#now() + ms;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#done) return;
      this.#sigkilled = true;
      this.#killEverything();
    }, ms);
  }

  #killEverything(): void {
    this.#signalGroup('SIGKILL');
    for (const iso of this.#opts.isolators ?? []) {
      try {
        iso.killAll?.(this.#ctx);
      } catch {
        // Nothing more to do.
      }
    }
  }

  /**
   * SIGTERM to every process of the task but the supervisor (and an `unshare` around it): the
   * members of its process group and of its cgroup. Right after launch the command may not be
   * forked yet; then this tries again shortly, for up to half a second.
   */
  #terminate(attempt: number): void {
    if (this.#done || this.#exiting || this.#pid === undefined || this.#sigkilled) return;
    const supervisor = this.#pid;
    if (this.#recoveredGone()) return; // poll() will notice the end.
    const targets = new Set<number>();
    const procs = listProcesses();
    for (const p of procs) if (p.pgrp === supervisor && p.state !== 'Z') targets.add(p.pid);
    for (const iso of this.#opts.isolators ?? []) {
      try {
        for (const pid of iso.pids?.(this.#ctx) ?? []) targets.add(pid);
      } catch {
        // Nothing known.
      }
    }
    targets.delete(supervisor);
    if (this.#ctx.state.pidNamespace === true) {
      // The supervisor runs as `unshare`'s child, the namespace's init: it ignores SIGTERM, and
      // counting it would hide that the command has not started yet.
      const byPid = new Map(procs.map((p) => [p.pid, p]));
      for (const pid of targets) {
        const p = byPid.get(pid) ?? readStat(pid);
        if (!p || p.ppid === supervisor) targets.delete(pid);
      }
    }
    let sent = 0;
    for (const pid of targets) {
      try {
        process.kill(pid, 'SIGTERM');
        sent++;
      } catch {
        // Gone meanwhile.
      }
    }
    if (sent === 0 && attempt < 50) {
      setTimeout(() => this.#terminate(attempt + 1), 10).unref();
    }
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.#pid === undefined) return;
    if (this.#recovered && this.#startTime !== undefined) {
      // Not our child: the pid may have been reused by another process since ours exited.
      // Its group id stays reserved while any member lives, so only a *different* live process
      // holding the number makes the signal unsafe.
      const s = readStat(this.#pid);
      if (s && s.startTime !== this.#startTime) return;
    }
    try {
      process.kill(-this.#pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  #checkpoint(): void {
    this.files.writeRun({
      v: 1,
      frameworkId: this.#opts.frameworkId,
      taskId: this.#opts.task.taskId,
      runId: this.runId,
      sandbox: this.sandbox,
      task: this.#opts.task,
      launchedAt: this.#launchedAt,
      ...(this.#pid !== undefined ? { pid: this.#pid } : {}),
      ...(this.#startTime !== undefined ? { startTime: this.#startTime } : {}),
      isolation: this.#ctx.state,
    });
  }

  #resume(rec: RunCheckpoint): void {
    this.#recovered = true;
    this.#pid = rec.pid;
    this.#startTime = rec.startTime;
    this.#ctx.pid = rec.pid;
    this.startedAt = rec.launchedAt;
    const killed = this.files.readKilled();
    if (killed) {
      this.#killRequested = true;
      this.#graceMs = killed.gracePeriodMs;
    }
    // Only an end that came before this agent process is an end "while the agent was down"; one
    // that comes later is seen by the restarted agent like any other.
    this.#endedWhileDown =
      parseStatusFile(readText(this.files.exitFile)) !== undefined ||
      rec.pid === undefined ||
      rec.startTime === undefined ||
      !isSameLiveProcess(rec.pid, rec.startTime);
    if (rec.pid === undefined || rec.startTime === undefined) {
      // The agent went down between checkpointing the task and recording its process.
      void this.#ended(undefined, undefined);
      return;
    }
    if (killed) {
      // Carry the kill on: the grace period counts from when it was asked for.
      this.#sigtermSent = true;
      this.#terminate(0);
      this.#armSigkill(Math.max(0, killed.at + killed.gracePeriodMs - this.#now()));
    }
  }

  async #start(): Promise<void> {
    // Never spawn inside the constructor: a kill() right after it must still find nothing started.
    await Promise.resolve();
    try {
      // Synchronous: a few microseconds, and no trip through libuv's thread pool on the launch path.
      // The directories above the sandbox are searchable only; the sandbox is the task's alone.
      mkdirSync(dirname(this.sandbox), { recursive: true, mode: 0o711 });
      mkdirSync(this.sandbox, { mode: 0o700 });
      this.#checkpoint();
      // Created now, so the user isolator gives them to the task's user with the rest.
      closeSync(openSync(join(this.sandbox, 'stdout'), 'a'));
      closeSync(openSync(join(this.sandbox, 'stderr'), 'a'));
      for (const iso of this.#opts.isolators ?? []) iso.claimSandbox?.(this.#ctx);
      let spec = buildSpawnSpec({
        task: this.#opts.task,
        sandbox: this.sandbox,
        agentId: this.#opts.agentId,
        frameworkId: this.#opts.frameworkId,
        path: this.#opts.path,
      });
      this.#spec = spec;
      if (this.#opts.fetch && !this.#killRequested) {
        try {
          await this.#opts.fetch(this.#ctx);
        } catch (e) {
          if (e instanceof LaunchError) throw e;
          throw new LaunchError('REASON_FETCHER_FAILED', (e as Error).message ?? String(e));
        }
      }
      if (!this.#opts.task.container && this.#opts.task.command.shell === false)
        resolveExecutable(spec.file, spec);
      for (const iso of this.#opts.isolators ?? []) {
        if (this.#killRequested) break;
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
      // What execArgv needs to run a command inside the task (checkpointed with the run).
      this.#ctx.state.wrappers = {
        joinCgroups: spec.joinCgroups ?? [],
        inner: spec.inner ?? [],
        ...(this.#ctx.state.pidNamespace === true ? { nsenter: which('nsenter') ?? 'nsenter' } : {}),
      } satisfies ExecWrappers;
      // From here to the spawn nothing awaits, so no kill() can slip in unseen.
      const argv = supervisedArgv(spec, this.files.exitFile);
      const envText = envScript(spec.env);
      const out = openOutput(join(this.sandbox, 'stdout'));
      let err: number;
      try {
        err = openOutput(join(this.sandbox, 'stderr'));
      } catch (e) {
        closeSync(out);
        throw e;
      }
      let child: ChildProcess;
      try {
        child = spawn(argv[0]!, argv.slice(1), {
          cwd: spec.cwd,
          env: WRAPPER_ENV,
          detached: true,
          stdio: ['ignore', out, err, 'pipe'],
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
      const envPipe = child.stdio[ENV_FD] as import('node:stream').Writable | null;
      envPipe?.on('error', () => {}); // EPIPE: the task ended before reading it.
      envPipe?.end(envText);
      if (child.pid === undefined) return; // The 'error' event follows.
      this.#pid = child.pid;
      this.#ctx.pid = child.pid;
      this.#startTime = readStat(child.pid)?.startTime;
      this.startedAt = this.#now();
      child.once('exit', (code, signal) => void this.#ended(code, signal));
      this.#checkpoint();
      this.#opts.onStarted?.(child.pid);
    } catch (e) {
      await this.#launchFailed(e);
    }
  }

  async #launchFailed(e: unknown): Promise<void> {
    await this.#finish(
      e instanceof LaunchError
        ? { state: 'TASK_FAILED', reason: e.reason, message: e.message }
        : {
            state: 'TASK_FAILED',
            reason: 'REASON_CONTAINER_LAUNCH_FAILED',
            message: describeSpawnError(e, this.#spec),
          },
    );
  }

  /**
   * The supervisor ended (`code`/`signal` as Node saw it; both undefined for a recovered run,
   * whose end poll() noticed). The status file tells how the task's command ended.
   */
  async #ended(code: number | null | undefined, signal: NodeJS.Signals | null | undefined): Promise<void> {
    if (this.#done || this.#exiting) return;
    this.#exiting = true;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    const recorded = parseStatusFile(readText(this.files.exitFile));
    // What the command's end was, as far as anyone knows.
    const exit: SupervisedExit | undefined =
      recorded ??
      (code !== null && code !== undefined
        ? { kind: 'exited', code }
        : signal
          ? { kind: 'signaled', signal, code: 0 }
          : undefined);
    // The limit check comes before the leftovers are killed (the cgroup still tells).
    if (this.#limitation === undefined && this.#pid !== undefined) this.#limitation = await this.#watch(true);
    // The command is gone; take down whatever it left behind.
    this.#killEverything();
    const exitFields = {
      ...(exit?.kind === 'exited' ? { exitCode: exit.code } : {}),
      ...(exit?.kind === 'signaled' ? { signal: exit.signal } : {}),
    };
    const status =
      exit?.kind === 'exited'
        ? `exited with code ${exit.code}`
        : exit?.kind === 'signaled'
          ? `killed by signal ${exit.signal}`
          : 'exit status unknown';
    const restarted = this.#endedWhileDown ? ' while the agent was down' : '';
    if (this.#limitation) {
      await this.#finish(
        {
          state: 'TASK_FAILED',
          reason: this.#limitation.reason,
          message: `${this.#limitation.message} (${status})`,
          ...exitFields,
        },
        true,
      );
    } else if (exit?.kind === 'launch-failed') {
      await this.#finish(
        {
          state: 'TASK_FAILED',
          reason: 'REASON_CONTAINER_LAUNCH_FAILED',
          message: 'the supervisor could not put the task in its cgroups',
        },
        true,
      );
    } else if (this.#killRequested) {
      const how = this.#killedNow
        ? `killed with SIGKILL as the agent shut down (${status})`
        : this.#sigkilled
          ? `killed with SIGKILL: still running ${this.#graceMs / 1000} s after SIGTERM (${status})`
          : `killed with SIGTERM (${status})`;
      const cause = this.#killCause;
      await this.#finish({
        state: 'TASK_KILLED',
        ...(cause ? { reason: cause.reason, healthy: cause.healthy } : {}),
        message: cause ? `${cause.message}; ${how}` : how,
        sigkilled: this.#sigkilled,
        ...exitFields,
      });
    } else if (exit === undefined) {
      await this.#finish(
        {
          state: 'TASK_FAILED',
          reason: 'REASON_AGENT_RESTARTED',
          message: this.#endedWhileDown
            ? 'the task ended while the agent was down and left no exit status'
            : 'the task ended without an exit status',
        },
        true,
      );
    } else if (exit.kind === 'exited' && exit.code === 0) {
      await this.#finish({
        state: 'TASK_FINISHED',
        message: `exited with code 0${restarted}`,
        ...exitFields,
      });
    } else {
      const hint =
        exit.kind === 'exited' && exit.code === 127 && this.#opts.task.command.shell !== false
          ? ' (command not found)'
          : '';
      await this.#finish(
        { state: 'TASK_FAILED', message: `${status}${hint}${restarted}`, ...exitFields },
        true,
      );
    }
  }

  async #finish(t: Omit<TaskTermination, 'stdoutTail' | 'stderrTail'>, quoteStderr = false): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
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
