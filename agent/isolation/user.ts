/**
 * The user tasks run as. An agent running as root runs tasks as an unprivileged user (`nobody`
 * unless configured), switching with util-linux's `setpriv` *inside* the supervisor, so the
 * supervisor can still join the task's cgroups (only root may) while the command never holds
 * root. Root tasks need the operator's explicit `--allow-root-tasks`; a task may name only the
 * users the operator allowed (`--allowed-task-users`, default `nobody`).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, lchownSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface TaskUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The user has a passwd entry, so its supplementary groups can be set. */
  readonly known: boolean;
}

/** Raised for a user that does not exist or may not be used; the task fails to launch. */
export class UserError extends Error {
  override name = 'UserError';
}

/** Finds a user by name or numeric uid in /etc/passwd, then through `id` (LDAP, sssd). */
export function resolveUser(nameOrUid: string, passwdFile = '/etc/passwd'): TaskUser {
  const numeric = /^\d+$/.test(nameOrUid);
  try {
    for (const line of readFileSync(passwdFile, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length < 4) continue;
      if ((numeric && f[2] === nameOrUid) || (!numeric && f[0] === nameOrUid)) {
        return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), known: true };
      }
    }
  } catch {
    // Fall through to `id`.
  }
  try {
    const id = (flag: '-u' | '-g') =>
      Number(
        execFileSync('id', [flag, nameOrUid], {
          encoding: 'utf8',
          timeout: 2000,
          stdio: ['ignore', 'pipe', 'ignore'],
        }).trim(),
      );
    const uid = id('-u');
    const gid = id('-g');
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { name: nameOrUid, uid, gid, known: true };
  } catch {
    // Unknown.
  }
  if (numeric) return { name: nameOrUid, uid: Number(nameOrUid), gid: Number(nameOrUid), known: false };
  throw new UserError(`no such user "${nameOrUid}" on this node`);
}

/** The first executable named `name` on `path` (PATH-style), or undefined. */
export function which(name: string, path = process.env.PATH ?? '/usr/bin:/bin'): string | undefined {
  const dirs = [...path.split(delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * The argv prefix that runs a command as `user` (`setpriv … --`): its uid and primary gid only,
 * no supplementary groups (a `sudo`, `wheel` or `docker` group is root), and no_new_privs, so
 * no setuid or file-capability program (sudo, su) can raise it again.
 */
export function switchUserArgv(setpriv: string, user: TaskUser): string[] {
  return [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--no-new-privs', '--'];
}

/** The agent's effective uid (0 when root); undefined where the platform has none. */
export function agentUid(): number | undefined {
  return typeof process.geteuid === 'function' ? process.geteuid() : undefined;
}

/** lchown of a directory and everything under it (symlinks themselves, never their targets). */
export function chownTree(dir: string, uid: number, gid: number): void {
  lchownSync(dir, uid, gid);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    lchownSync(join(entry.parentPath, entry.name), uid, gid);
  }
}
