/**
 * A hostile framework against the node: each test performs an attack for real (CI runs as root)
 * with the agent's own TaskRun, isolation and fetcher, and asserts it fails. A task may name any
 * environment, any URIs, any user and do anything in its sandbox; none of it may reach root,
 * files the task's user cannot read, or another task's sandbox.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PATH, type RunTaskOptions, type TaskRun } from '../../agent/executor.ts';
import { Fetcher } from '../../agent/fetcher.ts';
import { checkCommand } from '../../agent/health.ts';
import { detectCgroups } from '../../agent/isolation/cgroups.ts';
import { DockerIsolator } from '../../agent/isolation/containers.ts';
import { detectIsolation, type Isolation } from '../../agent/isolation/index.ts';
import {
  blockMetadata,
  METADATA_ADDRESSES_V4,
  METADATA_ADDRESSES_V6,
  unblockMetadata,
} from '../../agent/isolation/metadata.ts';
import { resolveUser, which } from '../../agent/isolation/user.ts';
import { ALLOWED_TASK_USERS_ENV, isolationOptions, withEnvDefaults } from '../../agent/main.ts';
import type { TaskInfo } from '../../lib/protocol/common.ts';
import { FRAMEWORK_ID, shellTask, taskRuns } from './helpers.ts';

const root = process.getuid?.() === 0;
const cc = which('cc') ?? which('gcc');
const dir = taskRuns();

/** A directory anyone may read (the tests' temporary directories are 0700). */
let pub: string;
/** A directory only root may enter, holding a secret. */
let secretDir: string;
let secretFile: string;
const SECRET = 'root-only-secret-6f1c';
let isolation: Isolation;
let fetcher: Fetcher;
let nobody: { uid: number; gid: number };

beforeAll(async () => {
  pub = await mkdtemp(join(tmpdir(), 'meso-attack-pub-'));
  await chmod(pub, 0o755);
  secretDir = await mkdtemp(join(tmpdir(), 'meso-attack-secret-'));
  secretFile = join(secretDir, 'secret');
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  if (!root) return;
  // As the agent does for a task user other than its own: the work directory is searchable.
  await chmod(dir.path, 0o711);
  isolation = await detectIsolation({ taskUser: 'nobody', containers: 'none', mode: 'none' });
  fetcher = new Fetcher({ cacheDir: join(dir.path, 'cache') });
  nobody = resolveUser('nobody');
});

afterAll(async () => {
  await rm(pub, { recursive: true, force: true });
  await rm(secretDir, { recursive: true, force: true });
});

/** A run with the agent's isolators and fetcher, wired as the agent wires them. */
function start(task: TaskInfo, extra: Partial<RunTaskOptions> = {}, iso = isolation): TaskRun {
  return dir.start(task, {
    isolators: iso.isolatorsFor(task),
    fetch: (ctx) =>
      fetcher.fetchAll(ctx.task.uris ?? [], ctx.sandbox, ctx.state.user as { uid: number; gid: number }),
    ...extra,
  });
}

describe.runIf(root)("the task's environment never reaches the root wrappers", () => {
  it.runIf(cc)('LD_PRELOAD of a fetched library runs only as the task user, never as root', async () => {
    // The library records the effective uid of every process that loads it.
    const log = join(pub, 'preload-log');
    await mkdir(log, { mode: 0o777 });
    await chmod(log, 0o777);
    const src = join(pub, 'evil.c');
    await writeFile(
      src,
      `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
  char path[512];
  snprintf(path, sizeof path, "${log}/%d-%d", (int)geteuid(), (int)getpid());
  FILE *f = fopen(path, "w");
  if (f) fclose(f);
}
`,
    );
    const so = join(pub, 'evil.so');
    execFileSync(cc!, ['-shared', '-fPIC', '-o', so, src]);
    await chmod(so, 0o644);

    const run = start(
      shellTask('ld-preload', 'true', {
        uris: [{ value: so }],
        command: { shell: true, value: 'true', environment: { LD_PRELOAD: './evil.so' } },
      }),
    );
    const t = await run.terminated;
    expect(t.state).toBe('TASK_FINISHED');
    const uids = new Set(
      (execFileSync('ls', [log], { encoding: 'utf8' }).trim().split('\n') as string[])
        .filter(Boolean)
        .map((n) => Number(n.split('-')[0])),
    );
    // The attack was real: the task's own processes loaded it (as nobody)...
    expect(uids.has(nobody.uid)).toBe(true);
    // ...and no process running as root did (unshare, the supervisor, setpriv).
    expect(uids.has(0)).toBe(false);
  });

  it("a PATH of the task's own does not change which wrappers run", async () => {
    // Fake wrappers that would run as root if the supervisor looked them up on the task's PATH.
    const fake = join(pub, 'fakebin');
    await mkdir(fake, { recursive: true });
    const marker = join(pub, 'fake-wrapper-ran');
    for (const name of ['setpriv', 'unshare', 'cat', 'sh', 'env']) {
      await writeFile(join(fake, name), `#!/bin/sh\ntouch ${marker}\nexit 1\n`, { mode: 0o755 });
    }
    const run = start(
      shellTask('path-hijack', 'echo ok', {
        command: { shell: true, value: 'echo ok', environment: { PATH: fake, ENV: '/x', BASH_ENV: '/x' } },
      }),
    );
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_FINISHED', stdoutTail: 'ok\n' });
    expect(existsSync(marker)).toBe(false);
  });

  it("gives tasks a standard PATH of their own, not the agent's", async () => {
    const before = process.env.PATH;
    process.env.PATH = `/root/.local/bin:/root/bin:${before}`;
    try {
      const t = await start(shellTask('path', 'echo "$PATH"')).terminated;
      expect(t.stdoutTail).toBe(`${DEFAULT_PATH}\n`);
    } finally {
      process.env.PATH = before;
    }
  });

  it('still gives the task its whole environment, quotes and newlines included', async () => {
    const value = `it's "quoted" $HOME \`id\`\nline 2`;
    const t = await start(
      shellTask('env', 'printf %s "$WEIRD"', {
        command: { shell: true, value: 'printf %s "$WEIRD"', environment: { WEIRD: value } },
      }),
    ).terminated;
    expect(t).toMatchObject({ state: 'TASK_FINISHED', stdoutTail: value });
  });

  it('refuses an environment variable name no shell can hold', async () => {
    const t = await start(
      shellTask('bad-env', 'true', {
        command: { shell: true, value: 'true', environment: { 'A=B; touch /tmp/x': '1' } },
      }),
    ).terminated;
    expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_TASK_INVALID' });
    expect(t.message).toMatch(/invalid environment variable name/);
  });
});

describe.runIf(root)('the fetcher writes and reads only as the task user', () => {
  it('a symlink planted by an archive does not let a later URI write outside the sandbox', async () => {
    const victimDir = await mkdtemp(join(tmpdir(), 'meso-attack-victim-'));
    await chmod(victimDir, 0o755);
    const victim = join(victimDir, 'cron-job');
    const build = join(pub, 'build-symlink');
    await mkdir(build, { recursive: true });
    await symlink(victim, join(build, 'x'));
    const tar = join(pub, 'evil.tar');
    execFileSync('tar', ['-cf', tar, '-C', build, 'x']);
    await chmod(tar, 0o644);
    const payload = join(pub, 'payload.sh');
    await writeFile(payload, '#!/bin/sh\necho owned\n', { mode: 0o644 });
    try {
      const t = await start(
        shellTask('fetch-symlink', 'true', {
          uris: [{ value: tar }, { value: payload, outputFile: 'x', executable: true }],
        }),
      ).terminated;
      expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_FETCHER_FAILED' });
      expect(t.message).toMatch(/Permission denied/);
      expect(existsSync(victim)).toBe(false);
    } finally {
      await rm(victimDir, { recursive: true, force: true });
    }
  });

  it("an archive that replaces stdout with a symlink does not make the agent write the task's output there", async () => {
    const victimDir = await mkdtemp(join(tmpdir(), 'meso-attack-victim-'));
    await chmod(victimDir, 0o755);
    const victim = join(victimDir, 'cron-job');
    const build = join(pub, 'build-stdout');
    await mkdir(build, { recursive: true });
    await symlink(victim, join(build, 'stdout'));
    const tar = join(pub, 'evil-stdout.tar');
    execFileSync('tar', ['-cf', tar, '-C', build, 'stdout']);
    await chmod(tar, 0o644);
    try {
      const t = await start(
        shellTask('stdout-via-tar', 'echo "* * * * * root id"', { uris: [{ value: tar }] }),
      ).terminated;
      expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
      expect(existsSync(victim)).toBe(false);
    } finally {
      await rm(victimDir, { recursive: true, force: true });
    }
  });

  it('a cached download is not a way through a planted symlink either', async () => {
    const victimDir = await mkdtemp(join(tmpdir(), 'meso-attack-victim-'));
    const victim = join(victimDir, 'authorized_keys');
    const build = join(pub, 'build-symlink-2');
    await mkdir(build, { recursive: true });
    await symlink(victim, join(build, 'y'));
    const tar = join(pub, 'evil2.tar');
    execFileSync('tar', ['-cf', tar, '-C', build, 'y']);
    await chmod(tar, 0o644);
    const f = new Fetcher({
      cacheDir: join(dir.path, 'cache'),
      fetch: async () => new Response('ssh-ed25519 AAAA attacker'),
    });
    try {
      const t = await start(
        shellTask('fetch-symlink-http', 'true', {
          uris: [{ value: tar }, { value: 'http://example.invalid/key', outputFile: 'y', cache: true }],
        }),
        {
          fetch: (ctx) =>
            f.fetchAll(ctx.task.uris ?? [], ctx.sandbox, ctx.state.user as { uid: number; gid: number }),
        },
      ).terminated;
      expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_FETCHER_FAILED' });
      expect(existsSync(victim)).toBe(false);
    } finally {
      await rm(victimDir, { recursive: true, force: true });
    }
  });

  it("does not copy a file the task's user cannot read, nor one in a directory it cannot enter", async () => {
    const open = join(secretDir, 'world-readable-inside-0700');
    await writeFile(open, SECRET, { mode: 0o644 });
    for (const [taskId, path] of [
      ['fetch-0600', secretFile],
      ['fetch-0700-dir', open],
    ] as const) {
      const run = start(
        shellTask(taskId, 'cat secret || true', { uris: [{ value: path, outputFile: 'secret' }] }),
      );
      const t = await run.terminated;
      expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_FETCHER_FAILED' });
      expect(t.stdoutTail).not.toContain(SECRET);
      const copied = await readFile(join(run.sandbox, 'secret'), 'utf8').catch(() => '');
      expect(copied).not.toContain(SECRET);
    }
  });

  it('fetches nothing for a task whose user may not run (no fetch as root)', async () => {
    const run = start(
      shellTask('fetch-as-root', 'true', {
        uris: [{ value: secretFile, outputFile: 'secret' }],
        command: { shell: true, value: 'true', user: 'root' },
      }),
    );
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
    expect(existsSync(join(run.sandbox, 'secret'))).toBe(false);
  });
});

describe.runIf(root)("the agent reads a task's output files safely", () => {
  it('a stdout replaced by a symlink to a root-only file does not leak it', async () => {
    const t = await start(shellTask('stdout-symlink', `rm -f stdout && ln -s ${secretFile} stdout`))
      .terminated;
    expect(t.state).toBe('TASK_FINISHED');
    expect(t.stdoutTail).not.toContain(SECRET);
  });

  it('a stdout replaced by a FIFO does not hang the agent', async () => {
    const t = await start(shellTask('stdout-fifo', 'rm -f stdout && mkfifo stdout')).terminated;
    expect(t).toMatchObject({ state: 'TASK_FINISHED', stdoutTail: '' });
    expect((await lstat(join(dir.path, 'sandboxes', FRAMEWORK_ID, 'stdout-fifo'))).isDirectory()).toBe(true);
  });
});

describe('allowed task users', () => {
  it('are set by the operator (flag, else the config file), and default to nobody', async () => {
    expect(isolationOptions(withEnvDefaults({}, {})).allowedTaskUsers).toBeUndefined();
    expect(
      isolationOptions(withEnvDefaults({}, { [ALLOWED_TASK_USERS_ENV]: 'nobody, svc-web' })).allowedTaskUsers,
    ).toEqual(['nobody', 'svc-web']);
    expect(
      isolationOptions(withEnvDefaults({ allowedTaskUsers: 'a' }, { [ALLOWED_TASK_USERS_ENV]: 'b' }))
        .allowedTaskUsers,
    ).toEqual(['a']);
    const iso = await detectIsolation({ mode: 'none', containers: 'none', allowRootTasks: true });
    expect(iso.user.allowedUsers).toEqual(['nobody']);
  });
});

describe.runIf(root)('task users', () => {
  it('refuses a user the operator did not allow, and root', async () => {
    for (const user of ['daemon', 'root', '0']) {
      const t = await start(
        shellTask(`user-${user}`, 'id -u', { command: { shell: true, value: 'id -u', user } }),
      ).terminated;
      expect(t).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
      expect(t.message).toMatch(/not allowed on this agent|refusing to run a task as root/);
    }
  });

  it('drops supplementary groups (sudo, docker) and can never gain privileges', async () => {
    // A user in some group besides its own, if this node has one (ssl-cert, docker, sudo…).
    const member = readFileSync('/etc/group', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f.length >= 4 && f[3] !== '' && f[3] !== 'root')?.[3]
      ?.split(',')[0];
    const name = member ?? 'nobody';
    const user = resolveUser(name);
    const iso = await detectIsolation({
      taskUser: 'nobody',
      containers: 'none',
      mode: 'none',
      allowedTaskUsers: ['nobody', name],
    });
    const t = await start(
      shellTask('groups', 'id -G; grep -E "^(Groups|NoNewPrivs):" /proc/self/status', {
        command: {
          shell: true,
          value: 'id -G; grep -E "^(Groups|NoNewPrivs):" /proc/self/status',
          user: name,
        },
      }),
      {},
      iso,
    ).terminated;
    expect(t.state).toBe('TASK_FINISHED');
    const [gids, groups, nnp] = t.stdoutTail.trim().split('\n');
    expect(gids).toBe(String(user.gid));
    expect(groups?.replace(/\s+/g, ' ').trim()).toBe('Groups:');
    expect(nnp?.replace(/\s+/g, ' ')).toBe('NoNewPrivs: 1');
  });
});

describe.runIf(root)('tasks do not reach each other', () => {
  it("another user's task cannot read a sandbox; a task of the same user cannot find it", async () => {
    const victim = start(shellTask('victim', `echo ${SECRET}-task`));
    expect((await victim.terminated).state).toBe('TASK_FINISHED');
    const s = await stat(victim.sandbox);
    expect(s.mode & 0o777).toBe(0o700);
    expect(s.uid).toBe(nobody.uid);
    expect((await stat(join(victim.sandbox, '..'))).mode & 0o777).toBe(0o711);
    expect((await stat(victim.files.runFile)).mode & 0o777).toBe(0o600);

    const iso = await detectIsolation({
      taskUser: 'nobody',
      containers: 'none',
      mode: 'none',
      allowedTaskUsers: ['nobody', 'daemon'],
    });
    const byPath = `cat ${join(victim.sandbox, 'stdout')} ${victim.files.runFile}`;
    const other = await start(
      shellTask('other-user', byPath, { command: { shell: true, value: byPath, user: 'daemon' } }),
      {},
      iso,
    ).terminated;
    expect(other.state).toBe('TASK_FAILED');
    expect(`${other.stdoutTail}${other.stderrTail}`).not.toContain(SECRET);

    const sandboxes = join(dir.path, 'sandboxes');
    const search = `ls ${sandboxes} ${join(sandboxes, FRAMEWORK_ID)} ${join(sandboxes, FRAMEWORK_ID, 'victim')}; cat ${sandboxes}/*/victim/*/stdout`;
    const same = await start(shellTask('same-user', search)).terminated;
    expect(same.state).toBe('TASK_FAILED');
    expect(same.stdoutTail).not.toContain(SECRET);
    expect(same.stdoutTail).not.toContain(victim.runId);
  });
});

describe.runIf(root)('COMMAND health checks run inside the task', () => {
  it("in its PID namespace and cgroup, as its user, with the task's environment applied last", async () => {
    const full = await detectIsolation({ taskUser: 'nobody', containers: 'none' });
    const run = start(shellTask('checked', 'sleep 30'), {}, full);
    const started = await new Promise<number>((resolve) => {
      const timer = setInterval(() => {
        if (run.pid !== undefined && run.execArgv(['true'])) {
          clearInterval(timer);
          resolve(run.pid);
        }
      }, 10);
    });
    expect(started).toBeGreaterThan(0);
    const out = join(pub, 'check-out');
    await mkdir(out, { recursive: true, mode: 0o777 });
    await chmod(out, 0o777);
    const probe = [
      'id -u > "$OUT/uid"',
      'ls /proc | grep -c "^[0-9]" > "$OUT/procs"',
      'cat /proc/self/cgroup > "$OUT/cgroup"',
      'echo "$SECRET_FLAG" > "$OUT/env"',
    ].join('; ');
    const r = await checkCommand(
      {
        sandbox: run.sandbox,
        env: { PATH: DEFAULT_PATH, OUT: out, LD_PRELOAD: '/nonexistent-preload.so' },
        inTask: (argv) => run.execArgv(argv),
        check: { shell: true, value: probe, environment: { SECRET_FLAG: 'from-the-check' } },
      },
      10_000,
    );
    expect(r).toMatchObject({ healthy: true });
    expect((await readFile(join(out, 'uid'), 'utf8')).trim()).toBe(String(nobody.uid));
    expect((await readFile(join(out, 'env'), 'utf8')).trim()).toBe('from-the-check');
    if (full.pidNamespace) {
      // The namespace holds the supervisor, the task's sleep and the check's own few processes.
      expect(Number((await readFile(join(out, 'procs'), 'utf8')).trim())).toBeLessThan(10);
    }
    if (detectCgroups().ok) {
      const cgroup = await readFile(join(out, 'cgroup'), 'utf8');
      expect(cgroup).toContain(run.runId);
    }
    // A run recovered from an agent that recorded no wrappers: still the task's namespace and user.
    delete (run.isolationState as Record<string, unknown>).wrappers;
    const legacy = await checkCommand(
      {
        sandbox: run.sandbox,
        env: { PATH: DEFAULT_PATH, OUT: out },
        inTask: (argv) => run.execArgv(argv),
        check: { shell: true, value: 'id -u > "$OUT/uid-legacy"' },
      },
      10_000,
    );
    expect(legacy).toMatchObject({ healthy: true });
    expect((await readFile(join(out, 'uid-legacy'), 'utf8')).trim()).toBe(String(nobody.uid));
    run.kill(0);
    await run.terminated;
  });
});

describe.runIf(root && which('iptables') && which('ip'))('the instance metadata service', () => {
  // A stand-in on a link-local address of its own (not 169.254.169.254: other software on this
  // machine may look for a real metadata service there).
  const STAND_IN = '169.254.77.1';
  const CHAIN = `MESO-TEST-MD-${process.pid}`;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    execFileSync('ip', ['addr', 'add', `${STAND_IN}/32`, 'dev', 'lo']);
    server = http.createServer((_req, res) => res.end('role-credentials'));
    await new Promise<void>((r) => server.listen(0, STAND_IN, r));
    url = `http://${STAND_IN}:${(server.address() as AddressInfo).port}/latest/meta-data/iam/`;
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await unblockMetadata(CHAIN);
    execFileSync('ip', ['addr', 'del', `${STAND_IN}/32`, 'dev', 'lo']);
  });

  it('blocks 169.254.169.254 and fd00:ec2::254 by default', () => {
    expect(METADATA_ADDRESSES_V4).toEqual(['169.254.169.254']);
    expect(METADATA_ADDRESSES_V6).toEqual(['fd00:ec2::254']);
  });

  it('a task cannot reach it; the agent still can', async () => {
    const curl = `curl -sS -m 5 ${url}`;
    // Before: the task reaches the stand-in (so the attack is real).
    const before = await start(shellTask('imds-before', curl)).terminated;
    expect(before).toMatchObject({ state: 'TASK_FINISHED', stdoutTail: 'role-credentials' });

    const note = await blockMetadata({ uids: [nobody.uid], v4: [STAND_IN], v6: [], chain: CHAIN });
    expect(note).toMatch(/blocked for uids/);
    const after = await start(shellTask('imds-after', curl)).terminated;
    expect(after.state).toBe('TASK_FAILED');
    expect(after.stdoutTail).not.toContain('role-credentials');
    expect(after.stderrTail).toMatch(/refused|Failed to connect/i);
    // The agent (root) keeps it.
    expect(await (await fetch(url)).text()).toBe('role-credentials');
    // Refreshing (an agent restart) leaves one rule, not two.
    await blockMetadata({ uids: [nobody.uid], v4: [STAND_IN], v6: [], chain: CHAIN });
    const rules = execFileSync('iptables', ['-S', CHAIN], { encoding: 'utf8' });
    expect(rules.split('\n').filter((l) => l.startsWith('-A'))).toHaveLength(1);
  });
});

describe('container tasks', () => {
  it("the engine's CLI (root) gets neither the task's PATH nor the sandbox as HOME", async () => {
    // A HOME in the sandbox would let a fetched .docker/config.json name a credential helper,
    // which the CLI runs as root from PATH.
    const iso = await detectIsolation({ mode: 'none', containers: 'none', allowRootTasks: true });
    const docker = new DockerIsolator(
      { name: 'docker', path: '/usr/bin/docker', version: '27' },
      iso.user,
      4096,
    );
    const task = shellTask('c', 'true', {
      container: { type: 'DOCKER', image: 'busybox:1.36' },
      command: { shell: true, value: 'true', environment: { PATH: '/sandbox/bin', HOME: '/sandbox' } },
    });
    const sandbox = join(dir.path, 'sandboxes', 'c-sandbox');
    const spec = await docker.prepare(
      { agentId: 'a', frameworkId: 'f', task, runId: 'r', sandbox, state: {} },
      { file: '/bin/sh', args: [], env: { PATH: '/sandbox/bin', HOME: sandbox }, cwd: sandbox },
    );
    expect(spec.env.PATH).toBe(DEFAULT_PATH);
    expect(spec.env.HOME).not.toContain(sandbox);
    expect(Object.keys(spec.env).sort()).toEqual(['HOME', 'PATH']);
    expect(spec.args).toEqual(
      expect.arrayContaining(['--cap-drop', 'ALL', '--security-opt', 'no-new-privileges']),
    );
  });
});
