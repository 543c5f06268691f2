/**
 * Isolation with real processes: cgroups (v1 on these machines, v2 where the node has it), the
 * process-tree fallback, PID namespaces and the task user. Tests that need root or a cgroup
 * hierarchy are skipped (with the reason) on machines that lack them.
 */
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunTaskOptions, TaskRun } from '../../agent/executor.ts';
import { detectCgroups, parseCgroupEnvironment } from '../../agent/isolation/cgroups.ts';
import {
  detectIsolation,
  type Isolation,
  IsolationError,
  memLimitBytes,
} from '../../agent/isolation/index.ts';
import { parseStat, taskProcesses } from '../../agent/isolation/proc.ts';
import { parseStatusFile } from '../../agent/isolation/supervisor.ts';
import type { TaskInfo } from '../../lib/protocol/common.ts';
import { shellTask, taskRuns, tempDir } from './helpers.ts';

const root = process.getuid?.() === 0;
const cgroupsFound = root ? detectCgroups() : { ok: false as const, notes: ['not root'] };
// A process that holds ~100 MB until its input ends: `tail` keeps the whole unterminated line.
const HOG = '(head -c 100000000 /dev/zero; sleep 30) | tail -n 1 > /dev/null';

const dir = taskRuns();

function start(isolation: Isolation, task: TaskInfo, extra: Partial<RunTaskOptions> = {}): TaskRun {
  return dir.start(task, { isolators: isolation.isolatorsFor(task), ...extra });
}

/** Polls a run the way the agent's monitor does, until it ends. */
async function monitored(run: TaskRun, everyMs = 50) {
  const timer = setInterval(() => void run.poll(), everyMs);
  try {
    return await run.terminated;
  } finally {
    clearInterval(timer);
  }
}

describe('pure parts', () => {
  it('parses /proc/<pid>/stat with spaces and parentheses in the name', () => {
    const s = parseStat(
      '4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 10000000 321 18446744073709551615',
    );
    expect(s).toMatchObject({
      pid: 4242,
      comm: 'my (odd) name',
      state: 'S',
      ppid: 1,
      pgrp: 4242,
      session: 4242,
    });
    expect(s?.startTime).toBe(987654);
    expect(s?.rssPages).toBe(321);
  });

  it("finds a task's processes by session and descent, without zombies", () => {
    const p = (pid: number, ppid: number, session: number, state = 'S') => ({
      pid,
      ppid,
      session,
      state,
      pgrp: session,
      comm: 'x',
      startTime: 1,
      rssPages: 1,
    });
    const all = [p(10, 1, 10), p(11, 10, 10), p(12, 1, 10), p(13, 11, 13), p(14, 10, 10, 'Z'), p(20, 1, 20)];
    expect(
      taskProcesses(10, all)
        .map((x) => x.pid)
        .sort(),
    ).toEqual([10, 11, 12, 13]);
  });

  it('reads the supervisor status file', () => {
    expect(parseStatusFile('0\n')).toEqual({ kind: 'exited', code: 0 });
    expect(parseStatusFile('3')).toEqual({ kind: 'exited', code: 3 });
    expect(parseStatusFile('137\n')).toEqual({ kind: 'signaled', signal: 'SIGKILL', code: 137 });
    expect(parseStatusFile('launch-failed')).toEqual({ kind: 'launch-failed' });
    expect(parseStatusFile('')).toBeUndefined();
    expect(parseStatusFile('garbage')).toBeUndefined();
  });

  it('finds cgroup mounts and the own cgroup, v1 and v2, from mountinfo', () => {
    const mountinfo = [
      '30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw',
      '31 30 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
      '33 30 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
    ].join('\n');
    const cgroup = ['4:memory:/svc/a', '2:cpu,cpuacct:/svc/b', '0::/svc/c'].join('\n');
    expect(parseCgroupEnvironment(mountinfo, cgroup)).toEqual({
      unifiedMount: '/sys/fs/cgroup/unified',
      unifiedPath: '/svc/c',
      v1: {
        memory: { mount: '/sys/fs/cgroup/memory', path: '/svc/a' },
        cpu: { mount: '/sys/fs/cgroup/cpu,cpuacct', path: '/svc/b' },
      },
    });
  });

  it('cgroup v2: enables the controllers, creates the task cgroup with its limits, reads its OOM kills', async () => {
    // A stand-in for a cgroup2 mount (plain files): the root cgroup, with its controllers.
    const fake = await tempDir('meso-cgroup2-');
    try {
      await writeFile(join(fake.path, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
      const found = detectCgroups({ version: 2, env: { unifiedMount: fake.path, unifiedPath: '/', v1: {} } });
      expect(found.ok).toBe(true);
      if (!found.ok) return;
      const cg = found.cgroups;
      expect(cg.describe()).toBe('cgroups-v2 (memory,cpu,pids)');
      expect(await readFile(join(fake.path, 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu +pids');
      expect(await readFile(join(fake.path, 'meso', 'cgroup.subtree_control'), 'utf8')).toBe(
        '+memory +cpu +pids',
      );
      const state = cg.create('run-1', { memBytes: 64 * 1024 * 1024, cpus: 0.5, pidsMax: 100 });
      const dir = join(fake.path, 'meso', 'run-1');
      expect(state).toEqual({ version: 2, dirs: { unified: dir } });
      expect(await readFile(join(dir, 'memory.max'), 'utf8')).toBe(String(64 * 1024 * 1024));
      expect(await readFile(join(dir, 'cpu.max'), 'utf8')).toBe('50000 100000');
      expect(await readFile(join(dir, 'pids.max'), 'utf8')).toBe('100');
      expect(cg.procsFiles(state)).toEqual([join(dir, 'cgroup.procs')]);
      expect(cg.oomKills(state)).toBe(0);
      await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
      expect(cg.oomKills(state)).toBe(1);
    } finally {
      await fake.remove();
    }
  });

  it('limits memory in whole bytes', () => {
    expect(memLimitBytes(shellTask('m', 'true', { resources: { mem: 32 } }))).toBe(32 * 1024 * 1024);
    expect(memLimitBytes(shellTask('m', 'true', { resources: { cpus: 1 } }))).toBeUndefined();
  });
});

describe.runIf(root && cgroupsFound.ok)('cgroups', () => {
  let isolation: Isolation;
  beforeAll(async () => {
    isolation = await detectIsolation({ taskUser: 'nobody', containers: 'none' });
  });

  it('chooses a cgroup mode and says which', () => {
    expect(isolation.mode).toMatch(/^cgroups-v[12]$/);
    expect(isolation.describe()).toMatch(/^cgroups-v[12] \(memory[^)]*\), pid namespace, tasks as nobody/);
    expect(isolation.attributes()['meso.isolation']).toBe(`${isolation.mode}+pidns`);
  });

  it('stops a task over its memory limit with REASON_CONTAINER_LIMITATION_MEMORY', async () => {
    const run = start(isolation, shellTask('hog', HOG, { resources: { cpus: 0.5, mem: 32 } }));
    const t = await monitored(run);
    expect(t.state).toBe('TASK_FAILED');
    expect(t.reason).toBe('REASON_CONTAINER_LIMITATION_MEMORY');
    expect(t.message).toMatch(/memory limit exceeded: the task reached its 32 MB limit/);
    // The task's cgroup is gone with it.
    const state = run.isolationState.cgroups as { dirs: Record<string, string> };
    for (const d of Object.values(state.dirs)) expect(existsSync(d)).toBe(false);
  });

  it('runs a task as nobody, in its own PID namespace, with its limits set', async () => {
    const script =
      'id -u; echo "pid=$$"; ls /proc | grep -c "^[0-9]"; ' +
      'cat /proc/self/cgroup | grep -E "memory|^0::" | head -1';
    const run = start(isolation, shellTask('who', script, { resources: { cpus: 0.25, mem: 64 } }));
    const t = await monitored(run);
    expect(t.state).toBe('TASK_FINISHED');
    const [uid, pid, count, cgroup] = t.stdoutTail.trim().split('\n');
    expect(uid).toBe('65534');
    // The shell is pid 2 (the supervisor is the namespace's init); few processes are visible.
    expect(pid).toBe('pid=2');
    expect(Number(count)).toBeLessThan(10);
    expect(cgroup).toContain(run.runId);
    expect((await stat(join(run.sandbox, 'stdout'))).uid).toBe(65534);
  });

  it('kills a task with SIGTERM through the namespace and records its real exit status', async () => {
    const run = start(
      isolation,
      shellTask('term', 'trap "echo bye; exit 9" TERM; echo ready; sleep 60 & wait'),
    );
    await expectFile(join(run.sandbox, 'stdout'), 'ready');
    run.kill(5000);
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_KILLED', exitCode: 9, sigkilled: false });
    expect(t.stdoutTail).toBe('ready\nbye\n');
    expect((await readFile(run.files.exitFile, 'utf8')).trim()).toBe('9');
  });
});

describe.runIf(root)('process-tree fallback', () => {
  it('measures the task and stops it over its memory limit', async () => {
    const isolation = await detectIsolation({
      mode: 'process-tree',
      pidNamespace: false,
      taskUser: 'nobody',
      containers: 'none',
    });
    expect(isolation.describe()).toMatch(/^process-tree, tasks as nobody/);
    const run = start(isolation, shellTask('hog-tree', HOG, { resources: { cpus: 0.5, mem: 40 } }));
    const t = await monitored(run, 100);
    expect(t.state).toBe('TASK_FAILED');
    expect(t.reason).toBe('REASON_CONTAINER_LIMITATION_MEMORY');
    expect(t.message).toMatch(/over its 40 MB limit \(measured by the agent: no cgroup on this node\)/);
  });
});

describe.runIf(root)('task user', () => {
  it('refuses root tasks unless allowed', async () => {
    await expect(detectIsolation({ mode: 'none', containers: 'none' })).rejects.toThrow(IsolationError);
    await expect(detectIsolation({ mode: 'none', taskUser: 'root', containers: 'none' })).rejects.toThrow(
      /--allow-root-tasks/,
    );
    const isolation = await detectIsolation({ mode: 'none', taskUser: 'nobody', containers: 'none' });
    const run = start(
      isolation,
      shellTask('as-root', 'id -u', { command: { shell: true, value: 'id -u', user: 'root' } }),
    );
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
    expect(t.message).toMatch(/refusing to run a task as root/);
  });

  it('fails a task whose user does not exist', async () => {
    const isolation = await detectIsolation({ mode: 'none', taskUser: 'nobody', containers: 'none' });
    const run = start(
      isolation,
      shellTask('ghost', 'true', { command: { shell: true, value: 'true', user: 'meso-no-such-user' } }),
    );
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
    expect(t.message).toContain('no such user "meso-no-such-user"');
  });
});

async function expectFile(file: string, text: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await readFile(file, 'utf8').catch(() => '')).includes(text)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${file} never contained ${text}`);
}
