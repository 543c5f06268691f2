/**
 * The agent's task features end to end, with real processes, against the SQS emulator (the test
 * plays the control plane): the fetcher (a loopback HTTP server this test starts), memory
 * limits, health checks, and the clear failures — failed fetch, missing command, no container
 * engine.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../agent/isolation/cgroups.ts';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import { createTestCluster, type TestCluster } from '../setup/cluster.ts';
import { TestControlPlane } from './control-plane.ts';
import { tempDir } from './helpers.ts';
import { AgentFixture } from './sqs-agent.ts';

const root = process.getuid?.() === 0;
const cgroups = root && detectCgroups().ok;

let cluster: TestCluster;
let control: TestControlPlane;
let fixture: AgentFixture;
let dir: Awaited<ReturnType<typeof tempDir>>;
let server: http.Server;
let base: string;
const hits = new Map<string, number>();
let healthStatus = 200;
let files: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  cluster = await createTestCluster();
  control = new TestControlPlane(cluster.sqs, cluster.config.queues.agentCalls);
  fixture = new AgentFixture(cluster, control);
  // What the server serves: a script, a tar.gz and a zip, made with the system's tools.
  files = await tempDir('meso-fetch-src-');
  await mkdir(join(files.path, 'tree/conf'), { recursive: true });
  await writeFile(join(files.path, 'tree/conf/app.conf'), 'answer=42\n');
  execFileSync('tar', ['-czf', join(files.path, 'bundle.tgz'), '-C', join(files.path, 'tree'), 'conf']);
  execFileSync('sh', [
    '-c',
    `cd ${join(files.path, 'tree')} && zip -q -r ${join(files.path, 'bundle.zip')} conf`,
  ]);
  server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/hello.sh') return void res.end('#!/bin/sh\necho hello from a fetched script\n');
    if (path === '/bundle.tgz' || path === '/bundle.zip') {
      res.setHeader('content-type', 'application/octet-stream');
      return void res.end(execFileSync('cat', [join(files.path, path.slice(1))]));
    }
    if (path === '/health') {
      res.statusCode = healthStatus;
      return void res.end(healthStatus === 200 ? 'ok' : 'sick');
    }
    res.statusCode = 404;
    res.end('not here');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await control?.stop();
  await new Promise((r) => server?.close(r));
  await files?.remove();
  await cluster?.destroy();
});

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await fixture.stopAll();
  await dir.remove();
});

const states = (updates: TaskStatus[]) => updates.map((s) => s.state);

describe('fetcher', () => {
  it('fetches, extracts and marks executable before the command starts (reporting TASK_STARTING as the fetch begins), caching by URI', async () => {
    const a = await fixture.start(dir.path);
    const uris = [
      { value: `${base}/hello.sh`, executable: true, cache: true },
      { value: `${base}/bundle.tgz` },
      { value: `${base}/bundle.zip`, outputFile: 'again.zip', extract: false },
    ];
    await fixture.launch(a, {
      taskId: 'fetch-1',
      uris,
      command: { shell: true, value: './hello.sh && cat conf/app.conf && ls again.zip' },
    });
    const updates = await fixture.follow(a, 'fetch-1');
    // A task with URIs is STARTING while they are fetched, then RUNNING once its process is spawned.
    expect(states(updates)).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
    expect(updates[0]).toMatchObject({ message: 'fetching 3 URIs', source: 'SOURCE_EXECUTOR' });
    expect(updates[1]?.message).toMatch(/^pid \d+$/);
    expect(updates.at(-1)?.stdoutTail).toBe('hello from a fetched script\nanswer=42\nagain.zip\n');

    // The cached script is not downloaded again; the others are.
    await fixture.launch(a, { taskId: 'fetch-2', uris, command: { shell: true, value: './hello.sh' } });
    expect(states(await fixture.follow(a, 'fetch-2')).at(-1)).toBe('TASK_FINISHED');
    expect(hits.get('/hello.sh')).toBe(1);
    expect(hits.get('/bundle.tgz')).toBe(2);
  });

  it('fails a task whose URI cannot be fetched with REASON_FETCHER_FAILED and the cause', async () => {
    const a = await fixture.start(dir.path);
    await fixture.launch(a, {
      taskId: 'fetch-404',
      uris: [{ value: `${base}/nope.tar.gz` }],
      command: { shell: true, value: 'echo should not run' },
    });
    const updates = await fixture.follow(a, 'fetch-404');
    // The fetch began (STARTING) and failed: the process never ran, so no RUNNING.
    expect(states(updates)).toEqual(['TASK_STARTING', 'TASK_FAILED']);
    expect(updates[0]?.message).toBe('fetching 1 URI');
    expect(updates[1]).toMatchObject({ reason: 'REASON_FETCHER_FAILED', source: 'SOURCE_AGENT' });
    expect(updates[1]?.message).toBe(`failed to fetch ${base}/nope.tar.gz: HTTP 404 Not Found`);

    await fixture.launch(a, {
      taskId: 'fetch-file',
      uris: [{ value: 'file:///nonexistent/meso-artifact.tgz' }],
      command: { shell: true, value: 'true' },
    });
    const fileUpdates = await fixture.follow(a, 'fetch-file');
    expect(states(fileUpdates)).toEqual(['TASK_STARTING', 'TASK_FAILED']);
    const failed = fileUpdates.at(-1);
    expect(failed).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_FETCHER_FAILED' });
    expect(failed?.message).toMatch(/^failed to fetch file:\/\/\/nonexistent\/meso-artifact.tgz: ENOENT/);
  });
});

describe('clear failures', () => {
  it('a missing command: not found before launch (argv), or exit 127 named as such (shell)', async () => {
    const a = await fixture.start(dir.path);
    await fixture.launch(a, { taskId: 'no-exe', command: { shell: false, value: 'meso-no-such-command' } });
    const [failed] = await fixture.follow(a, 'no-exe');
    expect(failed).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
    expect(failed?.message).toBe(
      'cannot launch "meso-no-such-command": not found on the task\'s PATH (ENOENT)',
    );

    await fixture.launch(a, {
      taskId: 'no-cmd',
      command: { shell: true, value: 'meso-no-such-command --x' },
    });
    const updates = await fixture.follow(a, 'no-cmd');
    expect(updates.at(-1)).toMatchObject({ state: 'TASK_FAILED', exitCode: 127 });
    expect(updates.at(-1)?.message).toMatch(
      /^exited with code 127 \(command not found\)\n--- last lines of stderr ---\n.*meso-no-such-command.*not found/,
    );
  });

  it('a task with an image on a node without a container engine fails at once, saying so', async () => {
    const a = await fixture.start(dir.path, {
      isolation: { mode: 'none', containers: 'auto', pidNamespace: false, allowRootTasks: true },
    });
    if (a.isolation.containers) return; // This node has a working engine: nothing to show here.
    await fixture.launch(a, {
      taskId: 'image',
      container: { type: 'DOCKER', image: 'busybox:1.36' },
      command: { shell: true, value: 'echo hi' },
    });
    const updates = await fixture.follow(a, 'image');
    expect(states(updates)).toEqual(['TASK_FAILED']);
    expect(updates[0]).toMatchObject({ reason: 'REASON_CONTAINER_LAUNCH_FAILED', source: 'SOURCE_AGENT' });
    expect(updates[0]?.message).toMatch(
      /^cannot run image busybox:1\.36: this agent has no container engine \(docker: /,
    );
  });
});

describe.runIf(cgroups)('limits', () => {
  it('stops a task over its memory with TASK_FAILED / REASON_CONTAINER_LIMITATION_MEMORY', async () => {
    const a = await fixture.start(dir.path, { isolation: { taskUser: 'nobody', containers: 'none' } });
    expect(a.isolation.mode).toMatch(/^cgroups-v[12]$/);
    await fixture.launch(a, {
      taskId: 'hog',
      resources: { cpus: 0.5, mem: 32 },
      command: { shell: true, value: '(head -c 100000000 /dev/zero; sleep 30) | tail -n 1 > /dev/null' },
    });
    const updates = await fixture.follow(a, 'hog');
    expect(states(updates)).toEqual(['TASK_RUNNING', 'TASK_FAILED']);
    expect(updates.at(-1)).toMatchObject({
      reason: 'REASON_CONTAINER_LIMITATION_MEMORY',
      source: 'SOURCE_AGENT',
    });
    expect(updates.at(-1)?.message).toMatch(/^memory limit exceeded: the task reached its 32 MB limit/);
  });
});

describe('health checks', () => {
  it('reports health changes and kills a task whose HTTP check keeps failing', async () => {
    healthStatus = 200;
    const a = await fixture.start(dir.path);
    const port = (server.address() as AddressInfo).port;
    await fixture.launch(a, {
      taskId: 'web',
      command: { shell: true, value: 'sleep 30' },
      killGracePeriodSeconds: 1,
      healthCheck: {
        type: 'HTTP',
        http: { port, path: '/health' },
        delaySeconds: 0,
        intervalSeconds: 0.1,
        timeoutSeconds: 1,
        consecutiveFailures: 2,
        gracePeriodSeconds: 0,
      },
    });
    const updates = await fixture.follow(a, 'web', (s) => {
      // Healthy first; then the service starts failing its checks.
      if (s.healthy === true) healthStatus = 503;
    });
    // Nothing to fetch: STAGING → RUNNING, no STARTING.
    expect(states(updates)).toEqual(['TASK_RUNNING', 'TASK_RUNNING', 'TASK_RUNNING', 'TASK_KILLED']);
    expect(updates[1]).toMatchObject({ healthy: true, reason: 'REASON_TASK_HEALTH_CHECK_STATUS_UPDATED' });
    expect(updates[2]).toMatchObject({ healthy: false, reason: 'REASON_TASK_HEALTH_CHECK_STATUS_UPDATED' });
    expect(updates[2]?.message).toBe(`GET http://127.0.0.1:${port}/health: HTTP 503`);
    expect(updates[3]).toMatchObject({ healthy: false, reason: 'REASON_TASK_UNHEALTHY' });
    expect(updates[3]?.message).toMatch(
      /^failed 2 health checks in a row \(last: GET .*HTTP 503\); killed with SIGTERM/,
    );
  });
});
