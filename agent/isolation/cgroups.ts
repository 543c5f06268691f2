/**
 * Control groups for tasks: each task gets its own cgroup with its cpus and mem as limits.
 *
 * - **cgroup v2** (modern distributions): one directory per task under a parent with the
 *   `memory`, `cpu` and `pids` controllers enabled; `memory.max` (+ `memory.swap.max` 0 and
 *   `memory.oom.group` 1, so an OOM kill takes the whole task), `cpu.max`, `cpu.weight`,
 *   `pids.max`. v2 forbids processes in a cgroup whose controllers are enabled for children, so
 *   when the agent's own cgroup holds only the agent (a systemd unit with `Delegate=yes`) the
 *   agent moves itself into `<own>/agent` and puts tasks under `<own>/tasks`.
 * - **cgroup v1** (older distributions, and these machines): a directory per task in each of the
 *   `memory`, `cpu` and `pids` hierarchies, under `<agent's own cgroup>/meso`:
 *   `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`, so swap is no way out),
 *   `cpu.shares` + `cpu.cfs_quota_us`, `pids.max`.
 *
 * Tasks' cgroups sit below the agent's own cgroup, so whatever limits the agent (a systemd slice,
 * a container) also bounds its tasks. The per-task supervisor joins the task's cgroups before it
 * starts the command, so every process of the task is inside from its first instruction.
 * An OOM kill is read from `memory.oom_control` (v1) or `memory.events` (v2).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readText } from '../checkpoint.ts';

export type CgroupVersion = 1 | 2;
export type CgroupController = 'memory' | 'cpu' | 'pids';

export interface CgroupLimits {
  readonly memBytes?: number;
  /** Fractional cpus: a CFS quota of cpus × period, and a proportional weight. */
  readonly cpus?: number;
  readonly pidsMax?: number;
}

/** A task's cgroups, as checkpointed (plain JSON). */
export interface TaskCgroupState {
  readonly version: CgroupVersion;
  /** v2: one directory; v1: one directory per controller. */
  readonly dirs: Partial<Record<CgroupController, string>> & { readonly unified?: string };
}

export const CFS_PERIOD_US = 100_000;
/** The smallest CFS quota the kernel accepts, µs. */
const MIN_QUOTA_US = 1000;

/** The CFS quota per CFS_PERIOD_US that gives `cpus` cpus, µs. */
const cfsQuotaUs = (cpus: number): number => Math.max(MIN_QUOTA_US, Math.round(cpus * CFS_PERIOD_US));

/** Where the machine's cgroups are and which ones this process can use for its tasks. */
export interface CgroupEnvironment {
  /** cgroup2 mount point, if mounted. */
  readonly unifiedMount?: string;
  /** The agent's own cgroup path in the unified hierarchy (`0::<path>`). */
  readonly unifiedPath?: string;
  /** v1 controller → its mount point and the agent's path in it. */
  readonly v1: Partial<Record<CgroupController, { mount: string; path: string }>>;
}

/** Reads `/proc/self/mountinfo` and `/proc/self/cgroup`. */
export function readCgroupEnvironment(procSelf = '/proc/self'): CgroupEnvironment {
  let mountinfo = '';
  let cgroup = '';
  try {
    mountinfo = readFileSync(join(procSelf, 'mountinfo'), 'utf8');
    cgroup = readFileSync(join(procSelf, 'cgroup'), 'utf8');
  } catch {
    return { v1: {} };
  }
  return parseCgroupEnvironment(mountinfo, cgroup);
}

/** The pure part of readCgroupEnvironment. */
export function parseCgroupEnvironment(mountinfo: string, procCgroup: string): CgroupEnvironment {
  let unifiedMount: string | undefined;
  let unifiedRoot = '/';
  const v1Mounts = new Map<CgroupController, { mount: string; root: string }>();
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    const root = unescapeMount(l[3] ?? '/');
    const mountPoint = unescapeMount(l[4] ?? '');
    const fstype = r[0];
    if (fstype === 'cgroup2' && unifiedMount === undefined) {
      unifiedMount = mountPoint;
      unifiedRoot = root;
    } else if (fstype === 'cgroup') {
      const opts = (r[2] ?? '').split(',');
      for (const c of ['memory', 'cpu', 'pids'] as const) {
        if (opts.includes(c) && !v1Mounts.has(c)) v1Mounts.set(c, { mount: mountPoint, root });
      }
    }
  }
  let unifiedPath: string | undefined;
  const v1: Partial<Record<CgroupController, { mount: string; path: string }>> = {};
  for (const line of procCgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const controllers = line.slice(first + 1, second).split(',');
    const path = line.slice(second + 1);
    if (id === '0' && controllers.length === 1 && controllers[0] === '') {
      unifiedPath = withinRoot(path, unifiedRoot);
      continue;
    }
    for (const c of ['memory', 'cpu', 'pids'] as const) {
      const m = v1Mounts.get(c);
      if (m && controllers.includes(c)) v1[c] = { mount: m.mount, path: withinRoot(path, m.root) };
    }
  }
  return {
    ...(unifiedMount !== undefined ? { unifiedMount } : {}),
    ...(unifiedMount !== undefined && unifiedPath !== undefined ? { unifiedPath } : {}),
    v1,
  };
}

/** A path in /proc/self/cgroup is relative to the hierarchy's root; the mount may show only a subtree. */
function withinRoot(path: string, root: string): string {
  if (root === '/' || root === '') return path;
  if (path === root) return '/';
  if (path.startsWith(`${root}/`)) return path.slice(root.length);
  return path;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** `key value` lines (memory.events, memory.oom_control) → the value of `key`. */
export function keyedValue(text: string | undefined, key: string): number | undefined {
  if (text === undefined) return undefined;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key) return Number(v);
  }
  return undefined;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** Task cgroups under a parent prepared for them; see detectCgroups. */
export class Cgroups {
  constructor(
    readonly version: CgroupVersion,
    /** Controllers limits are set in. */
    readonly controllers: readonly CgroupController[],
    /** v2: `{ unified: parent }`; v1: controller → parent directory. */
    readonly parents: TaskCgroupState['dirs'],
  ) {}

  /** A short description for logs and `meso agents`: `cgroups-v1 (memory,cpu,pids)`. */
  describe(): string {
    return `cgroups-v${this.version} (${this.controllers.join(',')})`;
  }

  /**
   * Creates the task's cgroup(s) and sets their limits; synchronous (a few small writes).
   * Throws if the kernel refuses (the task is then not launched).
   */
  create(name: string, limits: CgroupLimits): TaskCgroupState {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`invalid cgroup name ${name}`);
    const state: TaskCgroupState =
      this.version === 2
        ? { version: 2, dirs: { unified: join(this.parents.unified!, name) } }
        : {
            version: 1,
            dirs: Object.fromEntries(
              this.controllers.map((c) => [c, join(this.parents[c]!, name)]),
            ) as TaskCgroupState['dirs'],
          };
    try {
      for (const dir of dirsOf(state)) mkdirSync(dir);
      this.#limit(state, limits);
    } catch (e) {
      this.destroyNow(state);
      throw e;
    }
    return state;
  }

  #limit(state: TaskCgroupState, limits: CgroupLimits): void {
    const { memBytes, cpus, pidsMax } = limits;
    if (state.version === 2) {
      const dir = state.dirs.unified!;
      if (memBytes !== undefined && this.controllers.includes('memory')) {
        writeFileSync(join(dir, 'memory.max'), String(Math.floor(memBytes)));
        writeIfExists(join(dir, 'memory.swap.max'), '0');
        writeIfExists(join(dir, 'memory.oom.group'), '1');
      }
      if (cpus !== undefined && cpus > 0 && this.controllers.includes('cpu')) {
        writeFileSync(join(dir, 'cpu.max'), `${cfsQuotaUs(cpus)} ${CFS_PERIOD_US}`);
        writeIfExists(join(dir, 'cpu.weight'), String(Math.min(10_000, Math.max(1, Math.round(cpus * 100)))));
      }
      if (pidsMax !== undefined && this.controllers.includes('pids'))
        writeFileSync(join(dir, 'pids.max'), String(pidsMax));
      return;
    }
    const { memory, cpu, pids } = state.dirs;
    if (memory && memBytes !== undefined) {
      const bytes = String(Math.floor(memBytes));
      writeFileSync(join(memory, 'memory.limit_in_bytes'), bytes);
      // Without swap accounting the file is absent; with it, swap must not extend the limit.
      writeIfExists(join(memory, 'memory.memsw.limit_in_bytes'), bytes);
    }
    if (cpu && cpus !== undefined && cpus > 0) {
      writeFileSync(join(cpu, 'cpu.shares'), String(Math.max(2, Math.round(cpus * 1024))));
      writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(cfsQuotaUs(cpus)));
    }
    if (pids && pidsMax !== undefined) writeFileSync(join(pids, 'pids.max'), String(pidsMax));
  }

  /** The files a process writes its pid to, to join the task's cgroups. */
  procsFiles(state: TaskCgroupState): string[] {
    return dirsOf(state).map((d) => join(d, 'cgroup.procs'));
  }

  /** How many times the kernel's OOM killer acted in the task's cgroup. */
  oomKills(state: TaskCgroupState): number {
    if (state.version === 2) {
      const events = readText(join(state.dirs.unified!, 'memory.events'));
      return keyedValue(events, 'oom_kill') ?? 0;
    }
    if (!state.dirs.memory) return 0;
    return keyedValue(readText(join(state.dirs.memory, 'memory.oom_control')), 'oom_kill') ?? 0;
  }

  /** The most memory the task's cgroup used, bytes (when the kernel reports it). */
  peakMemoryBytes(state: TaskCgroupState): number | undefined {
    const file =
      state.version === 2
        ? join(state.dirs.unified!, 'memory.peak')
        : state.dirs.memory && join(state.dirs.memory, 'memory.max_usage_in_bytes');
    const text = file ? readText(file) : undefined;
    const n = text === undefined ? Number.NaN : Number(text.trim());
    return Number.isFinite(n) ? n : undefined;
  }

  /** Pids in the task's cgroups (empty when the cgroups are gone). */
  pids(state: TaskCgroupState): number[] {
    const out = new Set<number>();
    for (const dir of dirsOf(state)) {
      for (const line of (readText(join(dir, 'cgroup.procs')) ?? '').split('\n')) {
        const pid = Number(line);
        if (line !== '' && Number.isInteger(pid) && pid > 0) out.add(pid);
      }
    }
    return [...out];
  }

  /** SIGKILLs every process in the task's cgroups. */
  killAll(state: TaskCgroupState): void {
    if (state.version === 2 && writeIfExists(join(state.dirs.unified!, 'cgroup.kill'), '1')) return;
    for (const pid of this.pids(state)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }

  /**
   * Kills what is left and removes the task's cgroups, retrying while the kernel still counts
   * exiting processes. Resolves true when they are gone.
   */
  async destroy(state: TaskCgroupState, attempts = 50): Promise<boolean> {
    for (let i = 0; i < attempts; i++) {
      if (this.destroyNow(state)) return true;
      this.killAll(state);
      await new Promise((r) => setTimeout(r, Math.min(100, 5 * 2 ** i)));
    }
    return this.destroyNow(state);
  }

  /** One attempt to remove the task's cgroups; true when none is left. */
  destroyNow(state: TaskCgroupState): boolean {
    let left = false;
    for (const dir of dirsOf(state)) {
      try {
        rmdirSync(dir);
      } catch (e) {
        if (errno(e) !== 'ENOENT') left = true;
      }
    }
    return !left;
  }
}

export function dirsOf(state: TaskCgroupState): string[] {
  return Object.values(state.dirs).filter((d): d is string => typeof d === 'string');
}

function writeIfExists(file: string, value: string): boolean {
  if (!existsSync(file)) return false;
  try {
    writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

export interface DetectCgroupsOptions {
  /** Only this version (`--isolation cgroups-v1|cgroups-v2`); default: v2, else v1. */
  readonly version?: CgroupVersion;
  readonly env?: CgroupEnvironment;
  /** Name of the parent directory of task cgroups (v1, and v2 at the root). Default `meso`. */
  readonly parentName?: string;
  /** The agent's pid (moved into `<own>/agent` on v2 when needed). Default process.pid. */
  readonly pid?: number;
}

export type CgroupDetection =
  | { readonly ok: true; readonly cgroups: Cgroups; readonly notes: readonly string[] }
  | { readonly ok: false; readonly notes: readonly string[] };

/**
 * Finds a cgroup hierarchy the agent can put tasks in, creating the parent directory and
 * proving it works with a probe cgroup that has a memory limit. Tries v2, then v1.
 */
export function detectCgroups(opts: DetectCgroupsOptions = {}): CgroupDetection {
  const env = opts.env ?? readCgroupEnvironment();
  const notes: string[] = [];
  const parentName = opts.parentName ?? 'meso';
  if (opts.version !== 1) {
    const v2 = tryV2(env, parentName, opts.pid ?? process.pid, notes);
    if (v2) return { ok: true, cgroups: v2, notes };
  }
  if (opts.version !== 2) {
    const v1 = tryV1(env, parentName, notes);
    if (v1) return { ok: true, cgroups: v1, notes };
  }
  return { ok: false, notes };
}

function probe(cgroups: Cgroups, notes: string[]): boolean {
  const name = `probe-${process.pid}-${Date.now()}`;
  try {
    const state = cgroups.create(name, { memBytes: 64 * 1024 * 1024, cpus: 0.5, pidsMax: 64 });
    cgroups.destroyNow(state);
    return true;
  } catch (e) {
    notes.push(`cgroups-v${cgroups.version}: cannot create a limited cgroup (${(e as Error).message})`);
    return false;
  }
}

function tryV1(env: CgroupEnvironment, parentName: string, notes: string[]): Cgroups | undefined {
  const memory = env.v1.memory;
  if (!memory) {
    notes.push('cgroups-v1: no memory controller mounted');
    return undefined;
  }
  const parents: Record<string, string> = {};
  const controllers: CgroupController[] = [];
  for (const c of ['memory', 'cpu', 'pids'] as const) {
    const m = env.v1[c];
    if (!m) {
      if (c !== 'memory') notes.push(`cgroups-v1: no ${c} controller mounted`);
      continue;
    }
    const parent = join(m.mount, m.path, parentName);
    try {
      mkdirSync(parent, { recursive: true });
      parents[c] = parent;
      controllers.push(c);
    } catch (e) {
      notes.push(`cgroups-v1: cannot create ${parent} (${errno(e) ?? (e as Error).message})`);
      if (c === 'memory') return undefined;
    }
  }
  const cgroups = new Cgroups(1, controllers, parents);
  if (!probe(cgroups, notes)) {
    // Maybe cpu or pids is the one that refuses: try memory alone before giving up.
    if (controllers.length === 1) return undefined;
    const memOnly = new Cgroups(1, ['memory'], { memory: parents.memory! });
    return probe(memOnly, notes) ? memOnly : undefined;
  }
  return cgroups;
}

function controllersAt(dir: string): Set<string> {
  return new Set((readText(join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean));
}

function enable(dir: string, controllers: readonly string[]): void {
  writeFileSync(join(dir, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' '));
}

function tryV2(
  env: CgroupEnvironment,
  parentName: string,
  pid: number,
  notes: string[],
): Cgroups | undefined {
  if (env.unifiedMount === undefined || env.unifiedPath === undefined) {
    notes.push('cgroups-v2: not mounted');
    return undefined;
  }
  const own = join(env.unifiedMount, env.unifiedPath);
  const available = controllersAt(own);
  if (!available.has('memory')) {
    notes.push(`cgroups-v2: the memory controller is not available in ${own}`);
    return undefined;
  }
  const wanted = (['memory', 'cpu', 'pids'] as const).filter((c) => available.has(c));
  let parent: string;
  try {
    if (relative(env.unifiedMount, own) === '') {
      // The root cgroup may hold processes and enable controllers for its children.
      enable(own, wanted);
      parent = join(own, parentName);
    } else {
      try {
        enable(own, wanted);
      } catch (e) {
        if (errno(e) !== 'EBUSY') throw e;
        // "No internal processes": move the agent into a leaf of its own, then enable.
        const leaf = join(own, 'agent');
        mkdirSync(leaf, { recursive: true });
        writeFileSync(join(leaf, 'cgroup.procs'), String(pid));
        enable(own, wanted);
        notes.push(`cgroups-v2: moved the agent into ${leaf}`);
      }
      parent = join(own, 'tasks');
    }
    mkdirSync(parent, { recursive: true });
    enable(parent, wanted);
  } catch (e) {
    notes.push(
      `cgroups-v2: cannot enable ${wanted.join(',')} below ${own} (${errno(e) ?? (e as Error).message})`,
    );
    return undefined;
  }
  const cgroups = new Cgroups(2, wanted, { unified: parent });
  return probe(cgroups, notes) ? cgroups : undefined;
}
