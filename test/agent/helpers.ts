/** Test helpers for the agent: tasks, temp dirs, process-group inspection, manual timers. */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type RunTaskOptions, TaskRun } from '../../agent/executor.ts';
import type { Timers } from '../../agent/status-updates.ts';
import type { CommandInfo, TaskInfo } from '../../lib/protocol/common.ts';

export const AGENT_ID = 'agent-1';
export const FRAMEWORK_ID = 'fw-1';

export function shellTask(taskId: string, value: string, extra: Partial<TaskInfo> = {}): TaskInfo {
  return command(taskId, { shell: true, value }, extra);
}

export function command(taskId: string, cmd: CommandInfo, extra: Partial<TaskInfo> = {}): TaskInfo {
  return { taskId, agentId: AGENT_ID, resources: { cpus: 0.1, mem: 32 }, command: cmd, ...extra };
}

export async function tempDir(
  prefix = 'meso-agent-test-',
): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * TaskRuns in one temporary work directory for a whole test file (call it at the file's top
 * level): whatever a test left running is killed after it, and the directory is removed at the end.
 */
export function taskRuns(): {
  readonly path: string;
  start(task: TaskInfo, extra?: Partial<RunTaskOptions>): TaskRun;
} {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const runs: TaskRun[] = [];
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterEach(() => {
    // Whatever a failed test left behind dies with it.
    for (const r of runs.splice(0)) r.killNow();
  });
  afterAll(async () => {
    await dir.remove();
  });
  return {
    get path() {
      return dir.path;
    },
    start(task, extra = {}) {
      const run = new TaskRun({
        workDir: dir.path,
        agentId: AGENT_ID,
        frameworkId: FRAMEWORK_ID,
        task,
        ...extra,
      });
      runs.push(run);
      return run;
    },
  };
}

/** Pids of processes in process group `pgid` that are alive (not zombies), read from /proc. */
export async function liveGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // Gone meanwhile.
    }
    // pid (comm) state ppid pgrp ... — comm may contain spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const pgrp = Number(fields[2]);
    if (pgrp === pgid && state !== 'Z' && state !== 'X') out.push(Number(name));
  }
  return out;
}

/** Whether a process is alive (exists and is not a zombie). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** A deferred: a promise and its resolver, for awaiting callbacks. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Timers driven by advance(): nothing runs until the test moves time on. */
export class ManualTimers implements Timers {
  now = 0;
  #next = 1;
  readonly #pending = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Runs every timer due within `ms`, in time order, moving `now` to each as it fires. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#pending)
        if (entry[1].at <= until && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.#pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = until;
  }
}
