/** Health checks against real sockets and processes, with short intervals. */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckResult, checkCommand, checkTcp, HealthChecker } from '../../agent/health.ts';
import type { HealthCheck } from '../../lib/protocol/common.ts';
import { deferred, tempDir } from './helpers.ts';

let listener: net.Server;
let openPort: number;
let closedPort: number;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  dir = await tempDir();
  listener = net.createServer((s) => s.end());
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  openPort = (listener.address() as net.AddressInfo).port;
  // A port that was free a moment ago: nothing listens there.
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as net.AddressInfo).port;
  await new Promise((r) => tmp.close(r));
});

afterAll(async () => {
  await new Promise((r) => listener.close(r));
  await dir.remove();
});

function checker(check: HealthCheck, extra: { startedAt?: number; now?: () => number } = {}) {
  const changes: boolean[] = [];
  const unhealthy = deferred<{ failures: number; result: CheckResult }>();
  const c = new HealthChecker({
    check,
    startedAt: extra.startedAt ?? Date.now(),
    sandbox: dir.path,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...(extra.now ? { now: extra.now } : {}),
    onChange: (healthy) => changes.push(healthy),
    onUnhealthy: (failures, result) => unhealthy.resolve({ failures, result }),
  });
  return { c, changes, unhealthy: unhealthy.promise };
}

const fast = { delaySeconds: 0, intervalSeconds: 0.02, timeoutSeconds: 1, gracePeriodSeconds: 0 };

describe('checks', () => {
  it('TCP: a listening port is healthy, a closed one is not', async () => {
    expect((await checkTcp(openPort, 1000)).healthy).toBe(true);
    const closed = await checkTcp(closedPort, 1000);
    expect(closed).toEqual({ healthy: false, detail: `127.0.0.1:${closedPort}: ECONNREFUSED` });
  });

  it('COMMAND: exit 0 is healthy; a command that overruns its timeout fails', async () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    expect(
      (await checkCommand({ sandbox: dir.path, env, check: { shell: true, value: 'test -d .' } }, 1000))
        .healthy,
    ).toBe(true);
    expect(
      await checkCommand({ sandbox: dir.path, env, check: { shell: true, value: 'exit 4' } }, 1000),
    ).toEqual({
      healthy: false,
      detail: 'command exited with code 4',
    });
    const slow = await checkCommand(
      { sandbox: dir.path, env, check: { shell: true, value: 'sleep 5' } },
      100,
    );
    expect(slow).toEqual({ healthy: false, detail: 'command did not finish within 0.1 s' });
  });
});

describe('HealthChecker', () => {
  it('reports the first result and each change, and gives up after consecutive failures', async () => {
    const { c, changes, unhealthy } = checker({
      type: 'TCP',
      tcp: { port: closedPort },
      consecutiveFailures: 3,
      ...fast,
    });
    c.start();
    const { failures, result } = await unhealthy;
    expect(failures).toBe(3);
    expect(result.detail).toContain('ECONNREFUSED');
    expect(changes).toEqual([false]);
  });

  it('ignores failures during the grace period until the first success', async () => {
    let now = 1_000_000;
    const { c, changes, unhealthy } = checker(
      { type: 'TCP', tcp: { port: closedPort }, ...fast, consecutiveFailures: 1, gracePeriodSeconds: 60 },
      { startedAt: now, now: () => now },
    );
    c.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(changes).toEqual([]); // several failures, all within the grace period
    now += 61_000;
    expect((await unhealthy).failures).toBe(1);
    c.stop();
  });

  it('uses the Mesos defaults', async () => {
    const { c } = checker({ type: 'TCP', tcp: { port: openPort } });
    c.start();
    // The first check is 15 s away: nothing has been decided yet.
    await new Promise((r) => setTimeout(r, 50));
    expect(c.healthy).toBeUndefined();
    c.stop();
  });
});
