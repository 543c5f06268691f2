/**
 * The built-in frameworks while the control plane fails over: an app with four instances and a
 * job run on the local stack with real agents, while the control plane's handlers die half-way
 * through batches, and then the whole control plane is stopped mid-flight and a new one started
 * on the same tables and queues (what a Lambda redeploy or a lost execution environment does).
 * Afterwards exactly four instances run — the four the framework knows, none lost, none doubled —
 * and the job's run is recorded once, with one attempt, succeeded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openServices } from '../../lib/cli/apps.ts';
import { openJobs } from '../../lib/cli/jobs.ts';
import type { SqsHandler } from '../../lib/lambda/lambda.ts';
import {
  type LocalControlPlane,
  quietLogger,
  startLocalControlPlane,
} from '../../lib/local/control-plane.ts';
import { type LocalJobs, startLocalJobs } from '../../lib/local/jobs.ts';
import { type LocalServices, startLocalServices } from '../../lib/local/services.ts';
import { checkingStore } from '../../lib/testing/invariants.ts';
import { eventually, type Harness, startHarness } from '../integration/harness.ts';
import { mesoCli } from './meso-cli.ts';

describe('services and jobs while the control plane fails over', () => {
  let h: Harness;
  let services: LocalServices;
  let jobs: LocalJobs;
  let second: LocalControlPlane | undefined;
  let invocations = 0;
  let died = 0;

  /** Every third invocation of a control-plane handler handles half its batch, then dies. */
  const dyingMidBatch =
    (_queue: string, handler: SqsHandler): SqsHandler =>
    async (event, context) => {
      invocations += 1;
      if (invocations % 3 === 0 && event.Records.length > 0) {
        await handler({ Records: event.Records.slice(0, Math.ceil(event.Records.length / 2)) }, context);
        died += 1;
        throw new Error('the function died half-way through its batch');
      }
      return handler(event, context);
    };

  const meso = mesoCli(() => ({
    apps: { open: () => openServices(h.cluster) },
    jobs: { open: () => openJobs(h.cluster) },
  }));

  beforeAll(async () => {
    h = await startHarness({
      agents: 0,
      agentResources: 'cpus:1;mem:512;disk:512;ports:[31000-31050]',
      controlPlane: { wrapHandlers: dyingMidBatch },
    });
    for (const host of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) await h.startAgent({ hostname: host });
    const fw = { cluster: h.cluster, log: quietLogger, tickIntervalMs: 2000, retryDelaySeconds: 1 };
    services = await startLocalServices(fw);
    jobs = await startLocalJobs(fw);
  });
  afterAll(async () => {
    await jobs?.stop();
    await services?.stop();
    await second?.stop();
    await h?.stop();
  });

  it('ends with exactly the four instances the framework knows, and the job run recorded once', async () => {
    const deploy = await meso(
      'app',
      'deploy',
      '--name',
      'steady',
      '--instances',
      '4',
      '--cpus',
      '0.1',
      '--mem',
      '16',
      '--cmd',
      'exec sleep 600',
    );
    expect(deploy.code, deploy.out).toBe(0);
    expect((await meso('job', 'create', 'once', '--cmd', 'sleep 2; echo done', '--mem', '16')).code).toBe(0);
    expect((await meso('job', 'run', 'once')).code).toBe(0);

    // Mid-flight — launches accepted, tasks starting — the control plane goes away and another
    // one takes over the same tables and queues.
    await eventually(
      async () => (await services.deps.store.listInstances()).length > 0,
      'the first launches',
      60_000,
    );
    await h.controlPlane.stop();
    second = startLocalControlPlane({
      cluster: h.cluster,
      config: { offerTimeoutSeconds: 30 },
      sweepIntervalMs: 0,
      retryDelaySeconds: 1,
      wrap: { store: (s) => checkingStore(s, h.violations) },
      wrapHandlers: dyingMidBatch,
    });

    await eventually(
      async () => (await meso('apps')).out.match(/^steady\s+4\/4\s+\S+\s+stable/m),
      'steady 4/4 after the failover',
      180_000,
    );
    const [run] = await eventually(
      async () => {
        const runs = await jobs.deps.store.listRuns('once');
        return runs[0]?.state === 'succeeded' ? runs : undefined;
      },
      'the job run to succeed',
      180_000,
    );
    expect(died).toBeGreaterThan(0);

    // What really runs on the agents: exactly the four instances the framework knows.
    const running = h.agents.flatMap((a) => a.runningTasks().filter((t) => t.taskId.startsWith('steady.')));
    const known = (await services.deps.store.listInstances()).filter((i) => i.appId === 'steady');
    expect(known).toHaveLength(4);
    expect(running).toHaveLength(4);
    expect(new Set(running.map((t) => t.taskId))).toEqual(new Set(known.map((i) => i.taskId)));
    // The job: one run, one attempt, finished.
    expect(await jobs.deps.store.listRuns('once')).toHaveLength(1);
    expect(run!.attempts).toHaveLength(1);
    expect(run!.attempts[0]!.state).toBe('TASK_FINISHED');
    expect(run!.attempts[0]!.stdoutTail).toContain('done');
    expect(h.violations).toEqual([]);
  }, 300_000);
});
