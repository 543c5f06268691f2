/**
 * Container tasks (a TaskInfo with `container: { type: 'DOCKER', image }`) run through the node's
 * engine CLI, `docker run` or `podman run`, under the same supervisor as any task, with the
 * task's cpus, mem and the agent's pids limit, its sandbox mounted at `/mnt/mesos/sandbox` (the
 * working directory, and `MESOS_SANDBOX`), its environment, and the task user's uid:gid (root in
 * the container only with `--allow-root-tasks`), with no capabilities (`--cap-drop ALL`) and
 * `no-new-privileges`.
 *
 * The engine is found at agent start: `docker info` (then `podman info`) must answer within the
 * probe timeout. A node without a working engine fails container tasks at once with
 * TASK_FAILED / REASON_CONTAINER_LAUNCH_FAILED and a message saying so.
 *
 * Kill: SIGTERM reaches the `docker run` client in the task's process group, which passes it to
 * the container (`--sig-proxy`, the default); after the grace period, or when the task ends,
 * `docker rm -f` removes the container. An OOM kill is read from `docker inspect`
 * (`.State.OOMKilled`) and reported as REASON_CONTAINER_LIMITATION_MEMORY.
 */
import { execFile, spawn } from 'node:child_process';
import type { IsolationContext, Isolator, Limitation, SpawnSpec } from '../executor.ts';
import { DEFAULT_PATH, LaunchError } from '../executor.ts';
import { chownTree, which } from './user.ts';
import type { UserIsolator } from './user-isolator.ts';

export interface ContainerEngine {
  readonly name: 'docker' | 'podman';
  /** The CLI's path. */
  readonly path: string;
  /** The engine's server version, as `info` reported it. */
  readonly version: string;
}

export interface ContainerDetection {
  readonly engine?: ContainerEngine;
  /** Why there is none (for the log and for failed tasks' messages). */
  readonly notes: readonly string[];
}

/** Where the sandbox is mounted in a container (Mesos's path). */
export const CONTAINER_SANDBOX = '/mnt/mesos/sandbox';

function run(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ ok: boolean; out: string; err: string }> {
  return new Promise((done) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (e, out, err) =>
      done({
        ok: !e,
        out: String(out),
        err: String(err || (e?.killed ? `no answer within ${timeoutMs} ms` : (e?.message ?? ''))),
      }),
    );
  });
}

/**
 * Finds a working engine: its CLI on PATH and its daemon answering `info`.
 *
 * @example
 * const { engine, notes } = await detectContainerEngine('auto', { timeoutMs: 5000 });
 */
export async function detectContainerEngine(
  wanted: 'auto' | 'docker' | 'podman' | 'none',
  opts: { timeoutMs?: number; path?: string } = {},
): Promise<ContainerDetection> {
  if (wanted === 'none') return { notes: ['containers: disabled (--containers none)'] };
  const notes: string[] = [];
  const candidates: ('docker' | 'podman')[] = wanted === 'auto' ? ['docker', 'podman'] : [wanted];
  for (const name of candidates) {
    const path = which(name, opts.path);
    if (!path) {
      if (wanted !== 'auto' || name === 'docker') notes.push(`${name}: not installed`);
      continue;
    }
    const r = await run(path, ['info', '--format', '{{.ServerVersion}}'], opts.timeoutMs ?? 5000);
    const version = r.out.trim();
    if (r.ok && version !== '') return { engine: { name, path, version }, notes };
    const why = (r.err.trim() || r.out.trim()).split('\n').find((l) => l.trim() !== '') ?? 'failed';
    notes.push(`${name}: \`${name} info\` failed: ${why.trim()}`);
  }
  return { notes };
}

/** The `docker run` arguments for a task (exported for tests). */
export function containerRunArgs(
  ctx: IsolationContext,
  spec: SpawnSpec,
  o: { name: string; user?: { uid: number; gid: number }; pidsMax: number },
): string[] {
  const { task } = ctx;
  const c = task.container!;
  // No capabilities and no way to gain any (setuid programs in the image stay powerless).
  const args = [
    'run',
    '--name',
    o.name,
    '--init',
    '--log-driver',
    'none',
    '--security-opt',
    'no-new-privileges',
    '--cap-drop',
    'ALL',
  ];
  args.push('--network', (c.network ?? 'HOST').toLowerCase());
  if (task.resources.cpus !== undefined && task.resources.cpus > 0)
    args.push('--cpus', String(task.resources.cpus));
  if (task.resources.mem !== undefined && task.resources.mem > 0) {
    const mem = `${Math.round(task.resources.mem)}m`;
    args.push('--memory', mem, '--memory-swap', mem);
  }
  args.push('--pids-limit', String(o.pidsMax));
  if (c.forcePullImage) args.push('--pull', 'always');
  if (o.user) args.push('--user', `${o.user.uid}:${o.user.gid}`);
  args.push('--volume', `${ctx.sandbox}:${CONTAINER_SANDBOX}`, '--workdir', CONTAINER_SANDBOX);
  const env: Record<string, string> = {
    ...spec.env,
    HOME: CONTAINER_SANDBOX,
    MESOS_SANDBOX: CONTAINER_SANDBOX,
    MESO_SANDBOX: CONTAINER_SANDBOX,
    ...task.command.environment,
  };
  delete env.PATH; // The image's own PATH.
  for (const [k, v] of Object.entries(env)) args.push('--env', `${k}=${v}`);
  args.push(c.image);
  if (task.command.shell === false) args.push(task.command.value, ...(task.command.arguments ?? []).slice(1));
  else args.push('/bin/sh', '-c', task.command.value);
  return args;
}

interface ContainerState {
  readonly engine: string;
  readonly name: string;
}

/** Runs a task with an image through the engine; see the module comment. */
export class DockerIsolator implements Isolator {
  readonly name = 'container';
  constructor(
    readonly engine: ContainerEngine | undefined,
    readonly user: UserIsolator,
    readonly pidsMax: number,
    /** Why there is no engine, for the task's message. */
    readonly problem?: string,
  ) {}

  /** The sandbox (mounted into the container) belongs to the task's user, as for any task. */
  claimSandbox(ctx: IsolationContext): void {
    const user = this.user.userFor(ctx.task);
    if (!user || user.uid === this.user.opts.agentUid || this.user.opts.agentUid !== 0) return;
    chownTree(ctx.sandbox, user.uid, user.gid);
    ctx.state.user = { name: user.name, uid: user.uid, gid: user.gid };
  }

  async prepare(ctx: IsolationContext, spec: SpawnSpec): Promise<SpawnSpec> {
    const image = ctx.task.container?.image ?? '?';
    if (!this.engine) {
      throw new LaunchError(
        'REASON_CONTAINER_LAUNCH_FAILED',
        `cannot run image ${image}: this agent has no container engine` +
          (this.problem ? ` (${this.problem})` : '') +
          '; install and start Docker or Podman on the node, or run the task without an image',
      );
    }
    const user = this.user.userFor(ctx.task);
    const name = `meso-${ctx.runId}`;
    const state: ContainerState = { engine: this.engine.path, name };
    ctx.state.container = state;
    return {
      file: this.engine.path,
      args: containerRunArgs(ctx, spec, {
        name,
        pidsMax: this.pidsMax,
        ...(user ? { user: { uid: user.uid, gid: user.gid } } : {}),
      }),
      // The engine's CLI runs as root: nothing of the task's (a PATH, or a HOME whose
      // .docker/config.json names a credential helper, would run the task's code as root).
      env: { PATH: DEFAULT_PATH, HOME: process.env.HOME ?? '/root' },
      cwd: spec.cwd,
    };
  }

  async watch(ctx: IsolationContext, final: boolean): Promise<Limitation | undefined> {
    const state = ctx.state.container as ContainerState | undefined;
    // The engine kills an over-limit container itself; ask once it has stopped.
    if (!state || !final) return undefined;
    const r = await run(state.engine, ['inspect', '--format', '{{.State.OOMKilled}}', state.name], 10_000);
    if (r.out.trim() !== 'true') return undefined;
    const mem = ctx.task.resources.mem;
    return {
      reason: 'REASON_CONTAINER_LIMITATION_MEMORY',
      message: `memory limit exceeded: the container reached its ${mem ?? '?'} MB limit and was OOM-killed`,
    };
  }

  killAll(ctx: IsolationContext): void {
    const state = ctx.state.container as ContainerState | undefined;
    if (!state) return;
    spawn(state.engine, ['kill', state.name], { stdio: 'ignore', detached: false }).on('error', () => {});
  }

  async cleanup(ctx: IsolationContext): Promise<void> {
    const state = ctx.state.container as ContainerState | undefined;
    if (state) await run(state.engine, ['rm', '--force', state.name], 30_000);
  }
}
