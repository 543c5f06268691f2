/** The user isolator: which user a task runs as, and the switch to it. */
import type { TaskInfo } from '../../lib/protocol/common.ts';
import type { IsolationContext, Isolator, SpawnSpec } from '../executor.ts';
import { LaunchError } from '../executor.ts';
import { chownTree, resolveUser, switchUserArgv, type TaskUser } from './user.ts';

function refuseRoot(): LaunchError {
  return new LaunchError(
    'REASON_CONTAINER_LAUNCH_FAILED',
    'refusing to run a task as root: the agent was not started with --allow-root-tasks',
  );
}

/** The users a task may name when the operator names none. */
export const DEFAULT_ALLOWED_TASK_USERS: readonly string[] = ['nobody'];

/**
 * Runs the command as the task's user (`setpriv` inside the supervisor) and gives it the sandbox
 * before anything is put in it (so URIs are fetched as that user).
 */
export class UserIsolator implements Isolator {
  readonly name = 'user';
  readonly #allowed: ReadonlySet<string>;
  constructor(
    readonly defaultUser: TaskUser | undefined,
    readonly opts: {
      allowRoot: boolean;
      setpriv?: string;
      agentUid?: number;
      /** Users `command.user` may name (names or uids). Default DEFAULT_ALLOWED_TASK_USERS. */
      allowedUsers?: readonly string[];
    },
  ) {
    this.#allowed = new Set(opts.allowedUsers ?? DEFAULT_ALLOWED_TASK_USERS);
  }

  /** The users `command.user` may name. */
  get allowedUsers(): readonly string[] {
    return [...this.#allowed];
  }

  /** The user a task runs as (undefined: the agent's own). Throws LaunchError when it may not. */
  userFor(task: TaskInfo): TaskUser | undefined {
    let user = this.defaultUser;
    const named = task.command.user;
    if (named !== undefined && named !== this.defaultUser?.name) {
      try {
        user = resolveUser(named);
      } catch (e) {
        throw new LaunchError('REASON_CONTAINER_LAUNCH_FAILED', (e as Error).message);
      }
      const isDefault = this.defaultUser !== undefined && user.uid === this.defaultUser.uid;
      if (user.uid === 0 && !this.opts.allowRoot) throw refuseRoot();
      if (!isDefault && !this.#allowed.has(user.name) && !this.#allowed.has(String(user.uid))) {
        throw new LaunchError(
          'REASON_CONTAINER_LAUNCH_FAILED',
          `user "${named}" is not allowed on this agent: tasks may run as ${[...this.#allowed].join(', ') || 'the default user only'} (--allowed-task-users)`,
        );
      }
    }
    const effective = user?.uid ?? this.opts.agentUid;
    if (effective === 0 && !this.opts.allowRoot) throw refuseRoot();
    return user;
  }

  /** The task's user, when it is not the agent's own; throws LaunchError when it may not run. */
  switchedUser(task: TaskInfo): TaskUser | undefined {
    const user = this.userFor(task);
    if (!user || user.uid === this.opts.agentUid) return undefined;
    if (this.opts.agentUid !== 0 || !this.opts.setpriv) {
      throw new LaunchError(
        'REASON_CONTAINER_LAUNCH_FAILED',
        this.opts.agentUid !== 0
          ? `cannot run the task as ${user.name}: the agent is not root`
          : `cannot run the task as ${user.name}: setpriv (util-linux) is not installed`,
      );
    }
    return user;
  }

  /** Gives the (still nearly empty) sandbox to the task's user before URIs are fetched into it. */
  claimSandbox(ctx: IsolationContext): void {
    const user = this.switchedUser(ctx.task);
    if (!user) return;
    chownTree(ctx.sandbox, user.uid, user.gid);
    ctx.state.user = { name: user.name, uid: user.uid, gid: user.gid };
  }

  async prepare(ctx: IsolationContext, spec: SpawnSpec): Promise<SpawnSpec> {
    const user = this.switchedUser(ctx.task);
    if (!user) return spec;
    chownTree(ctx.sandbox, user.uid, user.gid);
    ctx.state.user = { name: user.name, uid: user.uid, gid: user.gid };
    return {
      ...spec,
      env: { USER: user.name, LOGNAME: user.name, ...spec.env },
      inner: [switchUserArgv(this.opts.setpriv!, user), ...(spec.inner ?? [])],
    };
  }
}
