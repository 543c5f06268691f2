/**
 * The services framework end to end on the local stack: the control plane's handlers and the
 * framework's handler behind local event-source mappings, real agents running real processes,
 * and the `meso app` commands as a user types them. Three instances with UNIQUE hostname over
 * three agents reach 3/3; a killed process is replaced; an agent marked gone has its instance
 * moved to another.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.ts';
import { openServices } from '../../lib/cli/apps.ts';
import { type Instance, isReady } from '../../lib/frameworks/services/instance.ts';
import { quietLogger } from '../../lib/local/control-plane.ts';
import { type LocalServices, startLocalServices } from '../../lib/local/services.ts';
import { eventually, type Harness, startHarness } from '../integration/harness.ts';
import { mesoCli } from './meso-cli.ts';

const cli = (h: Harness) =>
  mesoCli(() => ({
    apps: { open: () => openServices(h.cluster) },
    agentGone: { loadConfig: () => h.cluster },
  }));

describe('meso app on the local stack', () => {
  let h: Harness;
  let services: LocalServices;
  let meso: ReturnType<typeof cli>;
  const byHost = new Map<string, Agent>();

  beforeAll(async () => {
    h = await startHarness({ agents: 0, agentResources: 'cpus:1;mem:512;disk:512;ports:[31000-31050]' });
    for (const host of ['host-a', 'host-b', 'host-c'])
      byHost.set(host, await h.startAgent({ hostname: host }));
    services = await startLocalServices({
      cluster: h.cluster,
      log: quietLogger,
      tickIntervalMs: 2000,
      retryDelaySeconds: 1,
    });
    meso = cli(h);
  });
  afterAll(async () => {
    await services?.stop();
    await h?.stop();
  });

  const live = async (): Promise<Instance[]> =>
    (await services.deps.store.listInstances()).filter((i) => i.appId === 'web' && i.phase !== 'killing');
  const healthy = (want: string) =>
    eventually(
      async () => (await meso('apps')).out.match(new RegExp(`^web\\s+${want}\\s`, 'm')),
      `web ${want}`,
      60_000,
    );

  it('deploys 3 instances with UNIQUE hostname over 3 agents: 3/3, one per host, PORT set', async () => {
    const r = await meso(
      'app',
      'deploy',
      '--name',
      'web',
      '--instances',
      '3',
      '--cpus',
      '0.1',
      '--mem',
      '32',
      '--ports',
      '1',
      '--constraint',
      'hostname:UNIQUE',
      '--cmd',
      'echo "listening on $PORT0"; exec sleep 600',
    );
    expect(r.code, r.out).toBe(0);
    await healthy('3/3');
    const instances = await live();
    expect(new Set(instances.map((i) => i.hostname))).toEqual(new Set(['host-a', 'host-b', 'host-c']));
    const endpoints = (await meso('app', 'endpoints', 'web')).out.trim().split('\n').sort();
    expect(endpoints).toEqual(instances.map((i) => `${i.hostname}:${i.ports[0]}`).sort());
    expect((await meso('apps')).out).toMatch(/^web\s+3\/3\s+\S+\s+stable/m);
  });

  it('replaces an instance whose process was killed', async () => {
    const [victim] = await live();
    const agent = byHost.get(victim!.hostname)!;
    const pid = agent.runningTasks().find((t) => t.taskId === victim!.taskId)?.pid;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    await eventually(
      async () => {
        const now = await live();
        return (
          !now.some((i) => i.taskId === victim!.taskId) &&
          now.length === 3 &&
          now.every((i) => i.phase === 'running')
        );
      },
      'a replacement to run',
      60_000,
    );
    const now = await live();
    expect(now.filter((i) => i.hostname === victim!.hostname)).toHaveLength(1);
    // The crash counts for the backoff, and the running replacement reset it.
    await healthy('3/3');
  });

  it('moves the instance of an agent marked gone to another agent', async () => {
    byHost.set('host-d', await h.startAgent({ hostname: 'host-d' }));
    const gone = byHost.get('host-b')!;
    const r = await meso('mark-agent-gone', gone.agentId);
    expect(r.code, r.out).toBe(0);
    await eventually(
      async () => {
        const now = await live();
        return (
          now.length === 3 &&
          now.every((i) => i.phase === 'running') &&
          !now.some((i) => i.hostname === 'host-b')
        );
      },
      'the instance to move',
      60_000,
    );
    expect(new Set((await live()).map((i) => i.hostname))).toEqual(new Set(['host-a', 'host-c', 'host-d']));
    await healthy('3/3');
  });

  it('scales, suspends and deletes: instances follow', async () => {
    expect((await meso('app', 'scale', 'web', '2')).code).toBe(0);
    await healthy('2/2');
    await eventually(async () => (await live()).length === 2, 'scale down to 2');
    expect((await meso('app', 'suspend', 'web')).code).toBe(0);
    await eventually(async () => (await services.deps.store.listInstances()).length === 0, 'all killed');
    expect((await meso('app', 'delete', 'web')).code).toBe(0);
    expect((await meso('apps')).out).toMatch(/no apps/);
    const bad = await meso('app', 'deploy', '--name', 'Bad_Name', '--cmd', 'true');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/id/);
  });
});

describe('meso app when its Lambda dies mid-batch and messages come twice', () => {
  let h: Harness;
  let services: LocalServices;
  let invocations = 0;

  beforeAll(async () => {
    h = await startHarness({ agents: 0, agentResources: 'cpus:1;mem:512;disk:512;ports:[31000-31050]' });
    for (const host of ['host-a', 'host-b']) await h.startAgent({ hostname: host });
    services = await startLocalServices({
      cluster: h.cluster,
      log: quietLogger,
      tickIntervalMs: 2000,
      retryDelaySeconds: 1,
      // Every batch is handled twice; every third invocation dies after doing its work, so the
      // batch comes back once more.
      wrapHandler: (handler) => async (event, context) => {
        await handler(event, context);
        invocations += 1;
        if (invocations % 3 === 0) throw new Error('the function died before it returned');
        return handler(event, context);
      },
    });
  });
  afterAll(async () => {
    await services?.stop();
    await h?.stop();
  });

  it('reaches exactly 4/4: no instance lost, none launched twice', async () => {
    const meso = cli(h);
    const r = await meso(
      'app',
      'deploy',
      '--name',
      'dup',
      '--instances',
      '4',
      '--cpus',
      '0.1',
      '--mem',
      '16',
      '--cmd',
      'exec sleep 600',
    );
    expect(r.code, r.out).toBe(0);
    await eventually(async () => (await meso('apps')).out.match(/^dup\s+4\/4\s/m), 'dup 4/4', 60_000);
    expect(invocations).toBeGreaterThan(3);
    // What really runs on the agents: exactly the four instances the framework knows.
    const running = h.agents.flatMap((a) => a.runningTasks().filter((t) => t.taskId.startsWith('dup.')));
    const known = (await services.deps.store.listInstances()).filter((i) => i.appId === 'dup');
    expect(running).toHaveLength(4);
    expect(new Set(running.map((t) => t.taskId))).toEqual(new Set(known.map((i) => i.taskId)));
  });

  it('a rolling restart never drops below the minimum healthy count (sampled throughout)', async () => {
    const meso = cli(h);
    const file = join(await mkdtemp(join(tmpdir(), 'meso-app-')), 'roll.json');
    await writeFile(
      file,
      JSON.stringify({
        id: 'roll',
        cmd: 'exec sleep 600',
        instances: 3,
        cpus: 0.1,
        mem: 16,
        upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 0.34 },
      }),
    );
    expect((await meso('app', 'deploy', file)).code).toBe(0);
    await eventually(
      async () => (await meso('apps')).out.match(/^roll\s+3\/3\s+\S+\s+stable/m),
      'roll 3/3',
      60_000,
    );
    const before = (await services.deps.store.getApp('roll'))!.version;
    const ready = async () =>
      (await services.deps.store.listInstances()).filter((i) => i.appId === 'roll' && isReady(i, false))
        .length;
    expect((await meso('app', 'restart', 'roll')).code).toBe(0);
    const samples: number[] = [];
    await eventually(
      async () => {
        samples.push(await ready());
        const app = (await services.deps.store.getApp('roll'))!;
        const live = (await services.deps.store.listInstances()).filter((i) => i.appId === 'roll');
        return live.length === 3 && live.every((i) => i.version === app.version && i.phase === 'running');
      },
      'the restart to finish',
      90_000,
    );
    expect((await services.deps.store.getApp('roll'))!.version).not.toBe(before);
    expect(samples.length).toBeGreaterThan(5);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(3);
  });
});
