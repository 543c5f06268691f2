/**
 * Health checks of running tasks, as Mesos's health checker:
 *
 * - The first check runs `delaySeconds` after the task starts, then one every `intervalSeconds`;
 *   a check that takes longer than `timeoutSeconds` fails (0: no timeout).
 * - COMMAND: the check's command in the task's sandbox, with the task's environment, inside the
 *   task (its PID namespace, cgroups and user, as TaskRun.execArgv puts it); exit 0 is healthy. HTTP: `GET <scheme>://127.0.0.1:<port><path>` (certificates
 *   are not verified, as Mesos); a status 200–399 is healthy. TCP: a connection to
 *   `127.0.0.1:<port>` that opens is healthy.
 * - Failures within `gracePeriodSeconds` of the task's start are ignored until the first success.
 * - The task's health is reported when it changes (the first result, then each flip) as a
 *   TASK_RUNNING update with `healthy` and REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.
 * - `consecutiveFailures` failures in a row (counted outside the grace period) get the task killed;
 *   it ends TASK_KILLED with `healthy: false` and REASON_TASK_UNHEALTHY.
 *
 * Defaults are Mesos's: delay 15 s, interval 10 s, timeout 20 s, 3 failures, grace 10 s.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { HealthCheck } from '../lib/protocol/common.ts';
import { ENV_FD, envScript, WRAPPER_ENV } from './executor.ts';

export const HEALTH_CHECK_DEFAULTS = {
  delaySeconds: 15,
  intervalSeconds: 10,
  timeoutSeconds: 20,
  consecutiveFailures: 3,
  gracePeriodSeconds: 10,
} as const;

/** One check's outcome. */
export interface CheckResult {
  readonly healthy: boolean;
  /** Why it failed (or what answered). */
  readonly detail: string;
}

export interface HealthCheckerOptions {
  readonly check: HealthCheck;
  /** When the task started, ms since the epoch (for the grace period). */
  readonly startedAt: number;
  /** For COMMAND checks. */
  readonly sandbox: string;
  readonly env: Readonly<Record<string, string>>;
  readonly user?: { readonly uid: number; readonly gid: number };
  /**
   * Puts a COMMAND check inside the task (its PID namespace, cgroups and user; TaskRun.execArgv):
   * argv for the check's argv, or undefined when the task cannot be entered (the check fails).
   * Without it the check runs as `user` beside the task.
   */
  readonly inTask?: (argv: readonly string[]) => string[] | undefined;
  readonly now?: () => number;
  /** The task's health changed (first result included). */
  readonly onChange: (healthy: boolean, result: CheckResult) => void;
  /** Too many failures in a row: the task should be killed. Called once. */
  readonly onUnhealthy: (failures: number, result: CheckResult) => void;
}

function timed<T>(ms: number, work: (done: (v: T) => void) => () => void, onTimeout: T): Promise<T> {
  return new Promise((resolve) => {
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (v: T) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      cancel();
      resolve(v);
    };
    const cancel = work(done);
    if (ms > 0) timer = setTimeout(() => done(onTimeout), ms);
  });
}

export function checkHttp(
  port: number,
  path: string,
  scheme: 'http' | 'https',
  timeoutMs: number,
): Promise<CheckResult> {
  const url = `${scheme}://127.0.0.1:${port}${path}`;
  return timed<CheckResult>(
    timeoutMs,
    (done) => {
      const mod = scheme === 'https' ? https : http;
      const req = mod.get(url, { agent: false, rejectUnauthorized: false }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        done({ healthy: status >= 200 && status < 400, detail: `GET ${url}: HTTP ${status}` });
      });
      req.on('error', (e: NodeJS.ErrnoException) =>
        done({ healthy: false, detail: `GET ${url}: ${e.code ?? e.message}` }),
      );
      return () => req.destroy();
    },
    { healthy: false, detail: `GET ${url}: no answer within ${timeoutMs / 1000} s` },
  );
}

export function checkTcp(port: number, timeoutMs: number): Promise<CheckResult> {
  return timed<CheckResult>(
    timeoutMs,
    (done) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => done({ healthy: true, detail: `connected to 127.0.0.1:${port}` }));
      socket.once('error', (e: NodeJS.ErrnoException) =>
        done({ healthy: false, detail: `127.0.0.1:${port}: ${e.code ?? e.message}` }),
      );
      return () => socket.destroy();
    },
    { healthy: false, detail: `127.0.0.1:${port}: no connection within ${timeoutMs / 1000} s` },
  );
}

export function checkCommand(
  o: Pick<HealthCheckerOptions, 'sandbox' | 'env' | 'user' | 'inTask'> & {
    check: NonNullable<HealthCheck['command']>;
  },
  timeoutMs: number,
): Promise<CheckResult> {
  const { check } = o;
  const [file, args, argv0] =
    check.shell === false
      ? [check.value, (check.arguments ?? []).slice(1), check.arguments?.[0]]
      : ['/bin/sh', ['-c', check.value], undefined];
  const env = { ...o.env, ...check.environment };
  let wrapped: string[] | undefined;
  let envText: string | undefined;
  if (o.inTask) {
    const command =
      argv0 !== undefined && argv0 !== file
        ? ['/bin/bash', '-c', 'exec -a "$0" "$@"', argv0, file, ...args]
        : [file, ...args];
    wrapped = o.inTask(command);
    if (!wrapped)
      return Promise.resolve({ healthy: false, detail: 'the task cannot be entered (not running?)' });
    try {
      envText = envScript(env);
    } catch (e) {
      return Promise.resolve({ healthy: false, detail: (e as Error).message });
    }
  }
  return timed<CheckResult>(
    timeoutMs,
    (done) => {
      const child = wrapped
        ? // The wrappers run as root: only the fixed environment; the check's comes on fd 3.
          spawn(wrapped[0]!, wrapped.slice(1), {
            cwd: o.sandbox,
            env: WRAPPER_ENV,
            stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
            detached: true,
          })
        : spawn(file, args, {
            cwd: o.sandbox,
            env,
            stdio: 'ignore',
            detached: true,
            ...(argv0 !== undefined ? { argv0 } : {}),
            ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
          });
      if (wrapped) {
        const pipe = child.stdio[ENV_FD] as import('node:stream').Writable | null;
        pipe?.on('error', () => {});
        pipe?.end(envText);
      }
      child.once('error', (e: NodeJS.ErrnoException) =>
        done({ healthy: false, detail: `${file}: ${e.code ?? e.message}` }),
      );
      child.once('exit', (code, signal) =>
        done({
          healthy: code === 0,
          detail: code !== null ? `command exited with code ${code}` : `command killed by ${signal}`,
        }),
      );
      return () => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // Gone.
          }
        }
      };
    },
    { healthy: false, detail: `command did not finish within ${timeoutMs / 1000} s` },
  );
}

/**
 * Runs one task's health checks until stopped.
 *
 * @example
 * const checker = new HealthChecker({ check, startedAt: Date.now(), sandbox, env,
 *   onChange: (healthy) => sendRunning(healthy), onUnhealthy: () => run.kill() });
 * checker.start();
 */
export class HealthChecker {
  readonly #o: HealthCheckerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #healthy: boolean | undefined;
  #succeededOnce = false;
  #failures = 0;

  constructor(o: HealthCheckerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** The last reported health; undefined before the first result. */
  get healthy(): boolean | undefined {
    return this.#healthy;
  }

  start(): void {
    const c = this.#o.check;
    const delayMs = (c.delaySeconds ?? HEALTH_CHECK_DEFAULTS.delaySeconds) * 1000;
    // A recovered task was started long ago: its first check is due already.
    const firstIn = Math.max(0, this.#o.startedAt + delayMs - this.#now());
    this.#schedule(firstIn);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref();
  }

  /** One check now (exported through the class for tests). */
  async runCheck(): Promise<CheckResult> {
    const c = this.#o.check;
    const timeoutMs = (c.timeoutSeconds ?? HEALTH_CHECK_DEFAULTS.timeoutSeconds) * 1000;
    if (c.type === 'HTTP' && c.http)
      return checkHttp(c.http.port, c.http.path ?? '/', c.http.scheme ?? 'http', timeoutMs);
    if (c.type === 'TCP' && c.tcp) return checkTcp(c.tcp.port, timeoutMs);
    if (c.type === 'COMMAND' && c.command) return checkCommand({ ...this.#o, check: c.command }, timeoutMs);
    return { healthy: false, detail: `a ${c.type} check without its settings` };
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const c = this.#o.check;
    const result = await this.runCheck();
    if (this.#stopped) return;
    const intervalMs = Math.max(10, (c.intervalSeconds ?? HEALTH_CHECK_DEFAULTS.intervalSeconds) * 1000);
    if (result.healthy) {
      this.#succeededOnce = true;
      this.#failures = 0;
      this.#report(true, result);
    } else {
      const graceMs = (c.gracePeriodSeconds ?? HEALTH_CHECK_DEFAULTS.gracePeriodSeconds) * 1000;
      const inGrace = !this.#succeededOnce && this.#now() - this.#o.startedAt < graceMs;
      if (!inGrace) {
        this.#failures++;
        this.#report(false, result);
        const limit = c.consecutiveFailures ?? HEALTH_CHECK_DEFAULTS.consecutiveFailures;
        if (this.#failures >= limit) {
          this.stop();
          this.#o.onUnhealthy(this.#failures, result);
          return;
        }
      }
    }
    this.#schedule(intervalMs);
  }

  #report(healthy: boolean, result: CheckResult): void {
    if (this.#healthy === healthy) return;
    this.#healthy = healthy;
    this.#o.onChange(healthy, result);
  }
}
