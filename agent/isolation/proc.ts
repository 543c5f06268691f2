/**
 * Reading processes from /proc: their parent, group, session, start time and resident memory.
 * Used to recognise a task's process after an agent restart (pid + start time, so a reused pid
 * is not mistaken for it) and, where no cgroup can be used, to measure a task's process tree.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** R, S, D, Z, T, X, … */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  /** Clock ticks after boot at which the process started: with the pid, a unique identity. */
  readonly startTime: number;
  /** Resident set size, pages. */
  readonly rssPages: number;
}

/** Parses the text of `/proc/<pid>/stat` (the command name may contain spaces and parentheses). */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // Fields after the name: state(3) ppid(4) pgrp(5) session(6) … starttime(22) vsize(23) rss(24).
  const f = text.slice(close + 2).split(' ');
  const field = (n: number) => Number(f[n - 3]);
  const stat: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0] ?? '?',
    ppid: field(4),
    pgrp: field(5),
    session: field(6),
    startTime: field(22),
    rssPages: field(24),
  };
  return Number.isFinite(stat.pid) && Number.isFinite(stat.startTime) ? stat : undefined;
}

/** One process's stat, or undefined when it does not exist. */
export function readStat(pid: number, procRoot = '/proc'): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether `pid` is still the process that started at `startTime` and has not exited (a zombie has). */
export function isSameLiveProcess(pid: number, startTime: number, procRoot = '/proc'): boolean {
  const s = readStat(pid, procRoot);
  return s !== undefined && s.startTime === startTime && s.state !== 'Z' && s.state !== 'X';
}

/** Every process's stat (those that vanish while being read are skipped). */
export function listProcesses(procRoot = '/proc'): ProcStat[] {
  const out: ProcStat[] = [];
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const s = readStat(Number(name), procRoot);
    if (s) out.push(s);
  }
  return out;
}

/**
 * The processes that belong to a task whose first process is `root`: that process, every
 * process in its session (it was started as a session leader, so this holds the processes that
 * double-forked away from their parents) and every descendant (even one that started a session
 * of its own). Zombies hold no memory and are left out.
 */
export function taskProcesses(root: number, all: readonly ProcStat[]): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of all) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const found = new Map<number, ProcStat>();
  for (const p of all) if (p.pid === root || p.session === root) found.set(p.pid, p);
  const stack = [...found.values()];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const c of children.get(p.pid) ?? []) {
      if (!found.has(c.pid)) {
        found.set(c.pid, c);
        stack.push(c);
      }
    }
  }
  return [...found.values()].filter((p) => p.state !== 'Z' && p.state !== 'X');
}

let pageSize: number | undefined;

/** The kernel's page size, bytes (4096 on most machines, 16 or 64 KiB on some arm64 kernels). */
export function systemPageSize(): number {
  if (pageSize === undefined) {
    try {
      pageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8', timeout: 2000 }).trim());
    } catch {
      pageSize = 4096;
    }
    if (!Number.isFinite(pageSize) || pageSize <= 0) pageSize = 4096;
  }
  return pageSize;
}

/** The summed resident memory of some processes, bytes. */
export function residentBytes(procs: readonly ProcStat[]): number {
  let pages = 0;
  for (const p of procs) pages += Math.max(p.rssPages, 0);
  return pages * systemPageSize();
}
