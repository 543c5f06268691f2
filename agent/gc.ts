/**
 * Garbage collection of old sandboxes, as Mesos's agent: a sandbox whose task has ended is kept
 * for `maxAgeMs` (Mesos `--gc_delay`, one week), less when the disk fills up — the allowed age is
 * `maxAgeMs × max(0, 1 − headroom − used fraction)` (Mesos `--gc_disk_headroom`, 0.1) — so a
 * full disk removes ended sandboxes at once. Sandboxes of tasks that still run are never touched.
 * A sandbox's age is the time since anything in its top level last changed (its stdout, stderr,
 * files it wrote).
 */
import { statfsSync } from 'node:fs';
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const DEFAULT_GC_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_GC_DISK_HEADROOM = 0.1;

export interface GcOptions {
  readonly workDir: string;
  /** Default one week. */
  readonly maxAgeMs?: number;
  /** Default 0.1. */
  readonly diskHeadroom?: number;
  /** Sandboxes in use (running tasks, tasks whose end is not yet acknowledged). */
  readonly keep: ReadonlySet<string>;
  /** Default Date.now(). */
  readonly now?: number;
  /** Fraction of the work directory's file system in use, 0–1. Default: measured. */
  readonly diskUsage?: number;
}

export interface GcResult {
  /** The age a sandbox could reach this time, ms. */
  readonly allowedAgeMs: number;
  readonly diskUsage: number;
  readonly removed: string[];
}

export function diskUsageOf(path: string): number {
  const s = statfsSync(path);
  return s.blocks > 0 ? 1 - s.bavail / s.blocks : 0;
}

/** The age an ended sandbox may reach with the disk this full. */
export function allowedAge(maxAgeMs: number, headroom: number, usage: number): number {
  return Math.max(0, maxAgeMs * Math.max(0, 1 - headroom - usage));
}

async function newestChange(dir: string): Promise<number> {
  let newest = (await stat(dir)).mtimeMs;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s && s.mtimeMs > newest) newest = s.mtimeMs;
  }
  return newest;
}

async function children(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name));
  } catch {
    return [];
  }
}

/**
 * Removes ended sandboxes older than allowed, and framework/task directories left empty.
 *
 * @example
 * await collectSandboxes({ workDir, keep: new Set(agent.runningTasks().map((t) => t.sandbox)) });
 */
export async function collectSandboxes(o: GcOptions): Promise<GcResult> {
  const root = join(o.workDir, 'sandboxes');
  const now = o.now ?? Date.now();
  let usage = o.diskUsage;
  if (usage === undefined) {
    try {
      usage = diskUsageOf(o.workDir);
    } catch {
      usage = 0;
    }
  }
  const limit = allowedAge(
    o.maxAgeMs ?? DEFAULT_GC_MAX_AGE_MS,
    o.diskHeadroom ?? DEFAULT_GC_DISK_HEADROOM,
    usage,
  );
  const removed: string[] = [];
  for (const fw of await children(root)) {
    for (const task of await children(fw)) {
      for (const run of await children(task)) {
        if (o.keep.has(run)) continue;
        const age = now - (await newestChange(run).catch(() => now));
        if (age < limit) continue;
        await rm(run, { recursive: true, force: true });
        removed.push(run);
      }
      await rmdir(task).catch(() => {}); // Only when empty.
    }
    await rmdir(fw).catch(() => {});
  }
  return { allowedAgeMs: limit, diskUsage: usage, removed };
}
