/**
 * What the agent writes to its work directory so that it can pick up its tasks after a restart
 * (crash, upgrade), as Mesos's agent checkpoints under `meta/`:
 *
 * ```
 * <workDir>/meta/runs/<runId>/
 *   run.json       the task, its framework, sandbox, launch time, isolation state (cgroups,
 *                  user), and once spawned the supervisor's pid and its start time (so a reused
 *                  pid is never mistaken for the task)
 *   exit           written by the task's supervisor when the command ends: its exit status
 *   killed         a KILL was being carried out (the task ends as TASK_KILLED)
 *   updates.json   status updates not yet acknowledged, in order, with their uuids
 *   ended.json     the task has ended and its terminal update was created
 * ```
 *
 * Files are replaced atomically (write to a temporary file, rename), synchronously: they are a
 * few hundred bytes and the order of writes must match the order of events.
 * A run's directory is removed once its terminal update has been acknowledged.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { TaskInfo, TaskStatus } from '../lib/protocol/common.ts';

export const CHECKPOINT_VERSION = 1;

export interface RunCheckpoint {
  readonly v: typeof CHECKPOINT_VERSION;
  readonly frameworkId: string;
  readonly taskId: string;
  readonly runId: string;
  readonly sandbox: string;
  readonly task: TaskInfo;
  /** ms since the epoch. */
  readonly launchedAt: number;
  /** The supervisor's pid (also its process group and session id), once spawned. */
  readonly pid?: number;
  /** Its start time in clock ticks after boot (/proc/<pid>/stat field 22). */
  readonly startTime?: number;
  /** What each isolator recorded (cgroup directories, the user, the container name). */
  readonly isolation: Record<string, unknown>;
}

export interface KillCheckpoint {
  readonly at: number;
  readonly gracePeriodMs: number;
}

export function metaRoot(workDir: string): string {
  return join(workDir, 'meta', 'runs');
}

export function runMetaDir(workDir: string, runId: string): string {
  const root = resolve(metaRoot(workDir));
  const dir = resolve(root, runId);
  if (!dir.startsWith(root + sep)) throw new Error(`invalid run id ${runId}`);
  return dir;
}

/**
 * Writes JSON to `file` atomically (temporary file + rename), creating its directory. Files are
 * 0600 and directories 0700: a run's checkpoint holds the whole task, environment included.
 */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  }
  renameSync(tmp, file);
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The files of one run's checkpoint. */
export class RunFiles {
  constructor(readonly dir: string) {}

  get runFile(): string {
    return join(this.dir, 'run.json');
  }
  get exitFile(): string {
    return join(this.dir, 'exit');
  }
  get killedFile(): string {
    return join(this.dir, 'killed');
  }
  get updatesFile(): string {
    return join(this.dir, 'updates.json');
  }
  get endedFile(): string {
    return join(this.dir, 'ended.json');
  }

  writeRun(run: RunCheckpoint): void {
    writeJsonAtomic(this.runFile, run);
  }
  readRun(): RunCheckpoint | undefined {
    const r = readJson<RunCheckpoint>(this.runFile);
    return r && r.v === CHECKPOINT_VERSION && typeof r.runId === 'string' ? r : undefined;
  }
  writeKilled(k: KillCheckpoint): void {
    writeJsonAtomic(this.killedFile, k);
  }
  readKilled(): KillCheckpoint | undefined {
    return readJson<KillCheckpoint>(this.killedFile);
  }
  writeUpdates(pending: readonly TaskStatus[]): void {
    writeJsonAtomic(this.updatesFile, pending);
  }
  readUpdates(): TaskStatus[] {
    const u = readJson<TaskStatus[]>(this.updatesFile);
    return Array.isArray(u) ? u : [];
  }
  writeEnded(at: number): void {
    writeJsonAtomic(this.endedFile, { at });
  }
  isEnded(): boolean {
    return readJson(this.endedFile) !== undefined;
  }
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Every run directory under the work directory's checkpoint root. */
export function listRuns(workDir: string): RunFiles[] {
  const root = metaRoot(workDir);
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => new RunFiles(join(root, d.name)));
  } catch {
    return [];
  }
}
