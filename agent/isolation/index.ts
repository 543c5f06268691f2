/**
 * How this agent isolates its tasks, chosen once at start from what the node offers:
 *
 * | mode           | memory                                 | cpus                  | when                                  |
 * | -------------- | -------------------------------------- | --------------------- | ------------------------------------- |
 * | `cgroups-v2`   | `memory.max`, OOM kill → limitation    | `cpu.max` quota       | a cgroup2 hierarchy with controllers  |
 * | `cgroups-v1`   | `memory.limit_in_bytes`, OOM kill      | CFS quota + shares    | v1 memory controller usable           |
 * | `process-tree` | the agent sums the task's RSS and kills | not enforced         | no cgroup controller usable           |
 * | `none`         | not enforced                           | not enforced          | asked for (tests, the in-process harness) |
 *
 * plus, independently: a PID namespace per task (`unshare --pid --fork --mount-proc`) where the
 * agent may create one (root), and a task user (`setpriv`) when the agent runs as root.
 * `describe()` is what the agent logs at start and what `meso agents` shows (the `meso.isolation`
 * attribute).
 */
import { execFile } from 'node:child_process';
import type { TaskInfo } from '../../lib/protocol/common.ts';
import type { IsolationContext, Isolator, Limitation, SpawnSpec } from '../executor.ts';
import { type Cgroups, detectCgroups, type TaskCgroupState } from './cgroups.ts';
import { type ContainerDetection, DockerIsolator, detectContainerEngine } from './containers.ts';
import { blockMetadata } from './metadata.ts';
import { listProcesses, type ProcStat, residentBytes, taskProcesses } from './proc.ts';
import { agentUid, resolveUser, type TaskUser, type UserError, which } from './user.ts';
import { UserIsolator } from './user-isolator.ts';

export { DEFAULT_ALLOWED_TASK_USERS, UserIsolator } from './user-isolator.ts';

export type IsolationMode = 'cgroups-v2' | 'cgroups-v1' | 'process-tree' | 'none';

export interface IsolationOptions {
  /** `auto` (default): cgroups v2, else v1, else process-tree. An explicit mode that is not available is an error. */
  readonly mode?: 'auto' | IsolationMode;
  /** A PID namespace per task. `auto` (default): when the node allows it. */
  readonly pidNamespace?: 'auto' | boolean;
  /**
   * The user tasks run as when they name none (`command.user` overrides). Default: the agent's
   * own user. Root is refused unless `allowRootTasks`.
   */
  readonly taskUser?: string;
  readonly allowRootTasks?: boolean;
  /**
   * The users a task may name in `command.user` (names or uids), besides `taskUser`. Default
   * `['nobody']`. Root needs `allowRootTasks` as well.
   */
  readonly allowedTaskUsers?: readonly string[];
  /**
   * Refuse the task users' connections to the instance metadata service (metadata.ts). `auto`:
   * where the agent can (root, iptables), else a note; true: or fail. Default false (libraries
   * and tests leave the host's firewall alone).
   */
  readonly blockMetadata?: 'auto' | boolean;
  /** Processes per task (cgroup `pids.max`, containers' `--pids-limit`). Default 4096. */
  readonly pidsMax?: number;
  /** Container engine for tasks with an image. `auto` (default): docker, else podman, if its `info` works. */
  readonly containers?: 'auto' | 'docker' | 'podman' | 'none';
  /** Seconds `docker info` may take. Default 5. */
  readonly containerProbeTimeoutSeconds?: number;
}

/** Raised when the isolation asked for cannot be had on this node. */
export class IsolationError extends Error {
  override name = 'IsolationError';
}

const MB = 1024 * 1024;
export const DEFAULT_PIDS_MAX = 4096;

/** The memory limit of a task, bytes, or undefined when it asks for no memory. */
export function memLimitBytes(task: TaskInfo): number | undefined {
  const mem = task.resources.mem;
  return mem !== undefined && mem > 0 ? Math.round(mem * MB) : undefined;
}

function mbText(bytes: number): string {
  return `${Math.round((bytes / MB) * 10) / 10} MB`;
}

/** Puts each task in its own cgroup(s) with its cpus and mem as limits. */
export class CgroupIsolator implements Isolator {
  readonly name = 'cgroups';
  constructor(
    readonly cgroups: Cgroups,
    readonly pidsMax: number,
  ) {}

  async prepare(ctx: IsolationContext, spec: SpawnSpec): Promise<SpawnSpec> {
    const memBytes = memLimitBytes(ctx.task);
    const state = this.cgroups.create(ctx.runId, {
      ...(memBytes !== undefined ? { memBytes } : {}),
      ...(ctx.task.resources.cpus !== undefined ? { cpus: ctx.task.resources.cpus } : {}),
      pidsMax: this.pidsMax,
    });
    ctx.state.cgroups = state;
    return { ...spec, joinCgroups: [...(spec.joinCgroups ?? []), ...this.cgroups.procsFiles(state)] };
  }

  watch(ctx: IsolationContext, _final: boolean): Limitation | undefined {
    const state = ctx.state.cgroups as TaskCgroupState | undefined;
    if (!state || this.cgroups.oomKills(state) === 0) return undefined;
    const limit = memLimitBytes(ctx.task);
    const peak = this.cgroups.peakMemoryBytes(state);
    return {
      reason: 'REASON_CONTAINER_LIMITATION_MEMORY',
      message:
        `memory limit exceeded: the task reached its ${limit !== undefined ? mbText(limit) : ''} limit ` +
        `and the kernel's OOM killer stopped it${peak !== undefined ? ` (peak ${mbText(peak)})` : ''}`,
    };
  }

  killAll(ctx: IsolationContext): void {
    const state = ctx.state.cgroups as TaskCgroupState | undefined;
    if (state) this.cgroups.killAll(state);
  }

  pids(ctx: IsolationContext): number[] {
    const state = ctx.state.cgroups as TaskCgroupState | undefined;
    return state ? this.cgroups.pids(state) : [];
  }

  async cleanup(ctx: IsolationContext): Promise<void> {
    const state = ctx.state.cgroups as TaskCgroupState | undefined;
    if (state) await this.cgroups.destroy(state);
  }
}

/**
 * Where no cgroup can be used: the agent sums the resident memory of each task's processes (its
 * session and descendants, from /proc) every monitor tick and stops a task over its limit. A
 * spike shorter than the tick can go unseen; cpus are not enforced.
 */
export class ProcessTreeIsolator implements Isolator {
  readonly name = 'process-tree';
  #snapshot: { at: number; procs: ProcStat[] } | undefined;

  constructor(
    /** How long one /proc scan serves all tasks, ms. */
    readonly snapshotMaxAgeMs = 50,
    readonly scan: () => ProcStat[] = () => listProcesses(),
  ) {}

  /** The resident memory of a task's processes now, bytes. */
  residentBytes(pid: number): number {
    const now = Date.now();
    if (!this.#snapshot || now - this.#snapshot.at > this.snapshotMaxAgeMs) {
      this.#snapshot = { at: now, procs: this.scan() };
    }
    return residentBytes(taskProcesses(pid, this.#snapshot.procs));
  }

  watch(ctx: IsolationContext, final: boolean): Limitation | undefined {
    // At the end the processes are gone: only running tasks can be measured.
    if (final) return undefined;
    const limit = memLimitBytes(ctx.task);
    if (limit === undefined || ctx.pid === undefined) return undefined;
    const used = this.residentBytes(ctx.pid);
    if (used <= limit) return undefined;
    return {
      reason: 'REASON_CONTAINER_LIMITATION_MEMORY',
      message: `memory limit exceeded: the task's processes used ${mbText(used)}, over its ${mbText(limit)} limit (measured by the agent: no cgroup on this node)`,
    };
  }

  killAll(ctx: IsolationContext): void {
    if (ctx.pid === undefined) return;
    for (const p of taskProcesses(ctx.pid, this.scan())) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
  }
}

/** Runs the supervisor as init of a new PID namespace: the task sees only its own processes. */
export class PidNamespaceIsolator implements Isolator {
  readonly name = 'pid-namespace';
  constructor(readonly unshare: string) {}

  async prepare(ctx: IsolationContext, spec: SpawnSpec): Promise<SpawnSpec> {
    ctx.state.pidNamespace = true;
    return {
      ...spec,
      outer: [[this.unshare, '--pid', '--fork', '--kill-child', '--mount-proc', '--'], ...(spec.outer ?? [])],
    };
  }
}

/** The isolation an agent uses for all its tasks. */
export class Isolation {
  constructor(
    readonly mode: IsolationMode,
    readonly pidNamespace: boolean,
    readonly user: UserIsolator,
    readonly containerDetection: ContainerDetection,
    readonly notes: readonly string[] = [],
    readonly cgroups?: Cgroups,
    readonly pidsMax = DEFAULT_PIDS_MAX,
    readonly unshare = 'unshare',
  ) {
    this.#cgroupIsolator = cgroups ? new CgroupIsolator(cgroups, pidsMax) : undefined;
    this.#processTree = mode === 'process-tree' ? new ProcessTreeIsolator() : undefined;
    this.#pidNs = pidNamespace ? new PidNamespaceIsolator(unshare) : undefined;
  }

  readonly #cgroupIsolator: CgroupIsolator | undefined;
  readonly #processTree: ProcessTreeIsolator | undefined;
  readonly #pidNs: PidNamespaceIsolator | undefined;

  /** No limits, no namespace, the agent's own user: the library's default. */
  static none(containers: ContainerDetection = { notes: ['not probed'] }): Isolation {
    return new Isolation(
      'none',
      false,
      new UserIsolator(undefined, { allowRoot: true, agentUid: agentUid() }),
      containers,
    );
  }

  /** The container engine, if the node has a working one. */
  get containers(): ContainerDetection['engine'] {
    return this.containerDetection.engine;
  }

  /** `cgroups-v1 (memory,cpu,pids), pid namespace, tasks as nobody, containers: none`. */
  describe(): string {
    const parts = [this.cgroups ? this.cgroups.describe() : this.mode];
    if (this.pidNamespace) parts.push('pid namespace');
    parts.push(`tasks as ${this.user.defaultUser?.name ?? "the agent's user"}`);
    parts.push(`containers: ${this.containers ? this.containers.name : 'none'}`);
    return parts.join(', ');
  }

  /** Attributes the agent registers with, so operators (`meso agents`) and frameworks see them. */
  attributes(): Record<string, string> {
    return {
      'meso.isolation': `${this.mode}${this.pidNamespace ? '+pidns' : ''}`,
      'meso.containers': this.containers?.name ?? 'none',
    };
  }

  /** The isolators for one task, in the order they prepare its launch. */
  isolatorsFor(task: TaskInfo): Isolator[] {
    if (task.container) {
      const problem = this.containerDetection.notes.join('; ') || undefined;
      return [new DockerIsolator(this.containers, this.user, this.pidsMax, problem)];
    }
    const out: Isolator[] = [this.user];
    if (this.#cgroupIsolator) out.push(this.#cgroupIsolator);
    if (this.#processTree) out.push(this.#processTree);
    if (this.#pidNs) out.push(this.#pidNs);
    return out;
  }
}

function probePidNamespace(unshare: string): Promise<string | undefined> {
  return new Promise((done) => {
    execFile(
      unshare,
      ['--pid', '--fork', '--kill-child', '--mount-proc', '--', 'true'],
      { timeout: 5000 },
      (e, _out, err) => done(e ? (String(err).trim().split('\n')[0] ?? e.message) || e.message : undefined),
    );
  });
}

/**
 * Chooses the isolation for this node. Throws IsolationError when something explicitly asked for
 * cannot be had (a mode, a PID namespace, a task user).
 *
 * @example
 * const isolation = await detectIsolation({ taskUser: 'nobody' });
 * log('info', `isolation: ${isolation.describe()}`);
 */
export async function detectIsolation(opts: IsolationOptions = {}): Promise<Isolation> {
  const notes: string[] = [];
  const uid = agentUid();
  const wanted = opts.mode ?? 'auto';
  const pidsMax = opts.pidsMax ?? DEFAULT_PIDS_MAX;

  let taskUser: TaskUser | undefined;
  if (opts.taskUser !== undefined) {
    try {
      taskUser = resolveUser(opts.taskUser);
    } catch (e) {
      throw new IsolationError(`--task-user: ${(e as UserError).message}`);
    }
  }
  const effectiveUid = taskUser?.uid ?? uid;
  if (effectiveUid === 0 && !opts.allowRootTasks) {
    throw new IsolationError(
      'tasks would run as root: give --task-user (e.g. nobody), or --allow-root-tasks to really allow it',
    );
  }
  const setpriv = which('setpriv');
  if (taskUser && taskUser.uid !== uid) {
    if (uid !== 0)
      throw new IsolationError(
        `--task-user ${taskUser.name}: only an agent running as root can switch users`,
      );
    if (!setpriv)
      throw new IsolationError(`--task-user ${taskUser.name}: setpriv (util-linux) is not installed`);
  }
  const user = new UserIsolator(taskUser, {
    allowRoot: !!opts.allowRootTasks,
    ...(opts.allowedTaskUsers ? { allowedUsers: opts.allowedTaskUsers } : {}),
    agentUid: uid,
    ...(setpriv ? { setpriv } : {}),
  });

  if (opts.blockMetadata === true || opts.blockMetadata === 'auto') {
    const uids = new Set<number>();
    if (taskUser) uids.add(taskUser.uid);
    for (const name of user.allowedUsers) {
      try {
        uids.add(resolveUser(name).uid);
      } catch {
        // A user this node does not have cannot run tasks here either.
      }
    }
    try {
      if (uid !== 0) throw new Error('the agent is not root');
      notes.push(await blockMetadata({ uids: [...uids] }));
    } catch (e) {
      const why = `cannot keep tasks from the instance metadata service: ${(e as Error).message}`;
      if (opts.blockMetadata === true) throw new IsolationError(why);
      notes.push(why);
    }
  }

  let mode: IsolationMode;
  let cgroups: Cgroups | undefined;
  if (wanted === 'none' || wanted === 'process-tree') {
    mode = wanted;
  } else {
    const version = wanted === 'cgroups-v1' ? 1 : wanted === 'cgroups-v2' ? 2 : undefined;
    const found = detectCgroups(version !== undefined ? { version } : {});
    notes.push(...found.notes);
    if (found.ok) {
      cgroups = found.cgroups;
      mode = cgroups.version === 2 ? 'cgroups-v2' : 'cgroups-v1';
    } else if (wanted === 'auto') {
      mode = 'process-tree';
    } else {
      throw new IsolationError(`--isolation ${wanted} is not available here: ${found.notes.join('; ')}`);
    }
  }

  let pidNamespace = false;
  const unshare = which('unshare');
  if (opts.pidNamespace !== false && wanted !== 'none') {
    const problem = unshare ? await probePidNamespace(unshare) : 'unshare (util-linux) is not installed';
    if (problem === undefined) pidNamespace = true;
    else if (opts.pidNamespace === true) throw new IsolationError(`cannot create PID namespaces: ${problem}`);
    else notes.push(`pid namespace: ${problem}`);
  } else if (opts.pidNamespace === true) {
    throw new IsolationError('a PID namespace needs an isolation mode other than none');
  }

  const containers = await detectContainerEngine(opts.containers ?? 'auto', {
    timeoutMs: (opts.containerProbeTimeoutSeconds ?? 5) * 1000,
  });
  notes.push(...containers.notes);
  return new Isolation(mode, pidNamespace, user, containers, notes, cgroups, pidsMax, unshare ?? 'unshare');
}
