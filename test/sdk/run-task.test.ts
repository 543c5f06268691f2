import { describe, expect, it } from 'vitest';
import type { TaskState, TaskStatus } from '../../lib/protocol/common.ts';
import type { Offer, SchedulerCall } from '../../lib/protocol/scheduler.ts';
import type { MesoSdkError } from '../../lib/sdk/errors.ts';
import {
  LAUNCHED_REFUSE_SECONDS,
  NO_FIT_REFUSE_SECONDS,
  type RunTaskOptions,
  runTask,
} from '../../lib/sdk/run-task.ts';
import { CALLS_URL, FakeTransport, subscribed } from './fake-transport.ts';

const FW = 'fw-run';

const offer = (id: string, resources: Offer['resources']): Offer => ({
  offerId: id,
  frameworkId: FW,
  agentId: `agent-${id}`,
  hostname: `host-${id}`,
  resources,
  attributes: {},
  expiresAt: Date.now() + 30_000,
});

let uuid = 0;
const status = (
  taskId: string,
  agentId: string,
  state: TaskState,
  extra: Partial<TaskStatus> = {},
): TaskStatus => ({
  taskId,
  frameworkId: FW,
  agentId,
  state,
  source: 'SOURCE_AGENT',
  uuid: `uuid-${++uuid}`,
  timestamp: Date.now(),
  ...extra,
});

/**
 * A scripted control plane: answers SUBSCRIBE with SUBSCRIBED and `offers`, and an ACCEPT with
 * the updates `onAccept` returns for the launched task.
 */
function controlPlane(
  fake: FakeTransport,
  script: {
    offers: Offer[][];
    onAccept?: (task: { taskId: string; agentId: string }) => TaskStatus[];
    onKill?: (taskId: string, agentId: string) => TaskStatus[];
  },
): void {
  fake.onCall = (call: SchedulerCall) => {
    if (call.type === 'SUBSCRIBE') {
      fake.deliver(subscribed(FW));
      for (const batch of script.offers) fake.deliver({ v: 1, type: 'OFFERS', offers: batch });
    } else if (call.type === 'ACCEPT') {
      const op = call.operations[0];
      const task = op?.type === 'LAUNCH' ? op.tasks[0] : undefined;
      if (task)
        for (const s of script.onAccept?.(task) ?? []) fake.deliver({ v: 1, type: 'UPDATE', status: s });
    } else if (call.type === 'KILL') {
      for (const s of script.onKill?.(call.taskId, call.agentId ?? '') ?? []) {
        fake.deliver({ v: 1, type: 'UPDATE', status: s });
      }
    }
  };
}

function options(fake: FakeTransport, over: Partial<RunTaskOptions> = {}): RunTaskOptions {
  return {
    transport: fake,
    schedulerCallsQueueUrl: CALLS_URL,
    prefix: 'meso',
    frameworkId: FW,
    command: 'echo hi',
    cpus: 0.5,
    mem: 64,
    subscribeRetry: { initialMs: 50, maxMs: 100 },
    ...over,
  } as RunTaskOptions;
}

describe('runTask', () => {
  it('launches on the offer that fits, declines the other, reports updates and cleans up', async () => {
    const fake = new FakeTransport();
    controlPlane(fake, {
      offers: [[offer('small', { cpus: 0.1, mem: 1024 }), offer('big', { cpus: 4, mem: 4096, disk: 1000 })]],
      onAccept: ({ taskId, agentId }) => [
        status(taskId, agentId, 'TASK_STARTING'),
        status(taskId, agentId, 'TASK_RUNNING'),
        status(taskId, agentId, 'TASK_FINISHED', { exitCode: 0, stdoutTail: 'hi\n' }),
      ],
    });
    const progress: string[] = [];
    const launched: string[] = [];
    const result = await runTask(
      options(fake, {
        name: 'greet',
        env: { GREETING: 'hi' },
        killGracePeriodSeconds: 7,
        onProgress: (s) => progress.push(s.state),
        onLaunched: (task, o) => launched.push(`${task.taskId}@${o.agentId}`),
      }),
    );

    expect(result.status).toMatchObject({ state: 'TASK_FINISHED', exitCode: 0, stdoutTail: 'hi\n' });
    expect(result.history).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
    expect(progress).toEqual(result.history);
    expect(result.agentId).toBe('agent-big');
    expect(result.taskId).toMatch(/^greet-[0-9a-f]{8}$/);
    expect(launched).toEqual([`${result.taskId}@agent-big`]);

    const [accept] = fake.callsOf('ACCEPT');
    expect(accept).toMatchObject({ offerIds: ['big'], filters: { refuseSeconds: LAUNCHED_REFUSE_SECONDS } });
    expect(accept?.operations).toEqual([
      {
        type: 'LAUNCH',
        tasks: [
          {
            taskId: result.taskId,
            name: 'greet',
            agentId: 'agent-big',
            resources: { cpus: 0.5, mem: 64 },
            command: { shell: true, value: 'echo hi', environment: { GREETING: 'hi' } },
            killGracePeriodSeconds: 7,
          },
        ],
      },
    ]);
    expect(fake.callsOf('DECLINE')).toEqual([
      {
        v: 1,
        type: 'DECLINE',
        frameworkId: FW,
        offerIds: ['small'],
        filters: { refuseSeconds: LAUNCHED_REFUSE_SECONDS },
      },
    ]);
    // Once launched it wants no more offers (they would go to a queue about to be deleted).
    const sends = fake.log.filter((l) => l.startsWith('send '));
    expect(fake.callsOf('SUPPRESS')).toHaveLength(1);
    expect(sends.indexOf('send SUPPRESS')).toBeGreaterThan(sends.indexOf('send ACCEPT'));
    // Every update acknowledged, then TEARDOWN, then the queue it created is deleted.
    expect(fake.acknowledged()).toHaveLength(3);
    const order = fake.log.filter((l) => l !== 'poll stopped');
    expect(order.slice(-3)).toEqual(['send ACKNOWLEDGE', 'send TEARDOWN', 'delete queue']);
    expect(fake.deletedQueues).toEqual([`https://sqs.fake/000000000000/meso-fw-${FW}.fifo`]);
  });

  it('declines offers that do not fit (refuse 5 s) until one does; argv commands run without a shell', async () => {
    const fake = new FakeTransport();
    controlPlane(fake, {
      offers: [
        [offer('a', { cpus: 0.25, mem: 64 })],
        [offer('b', { cpus: 1, mem: 32 })],
        [offer('c', { cpus: 0.5, mem: 64 })],
      ],
      onAccept: ({ taskId, agentId }) => [status(taskId, agentId, 'TASK_FINISHED', { exitCode: 0 })],
    });
    const seen: string[] = [];
    const { status: s } = await runTask(
      options(fake, {
        command: ['sh', '-c', 'echo hi'],
        taskId: 'job-1',
        onOffers: (offers, chosen) => seen.push(`${offers[0]?.offerId}:${chosen ? 'fits' : 'no'}`),
      }),
    );
    expect(s.state).toBe('TASK_FINISHED');
    expect(seen).toEqual(['a:no', 'b:no', 'c:fits']);
    expect(fake.callsOf('DECLINE').map((d) => [d.offerIds[0], d.filters])).toEqual([
      ['a', { refuseSeconds: NO_FIT_REFUSE_SECONDS }],
      ['b', { refuseSeconds: NO_FIT_REFUSE_SECONDS }],
    ]);
    const launch = fake.callsOf('ACCEPT')[0]?.operations[0];
    expect(launch?.type === 'LAUNCH' && launch.tasks[0]).toMatchObject({
      taskId: 'job-1',
      command: { shell: false, value: 'sh', arguments: ['sh', '-c', 'echo hi'] },
    });
  });

  it('declines every offer that comes after the launch', async () => {
    const fake = new FakeTransport();
    let finish: (() => void) | undefined;
    controlPlane(fake, {
      offers: [[offer('a', { cpus: 1, mem: 128 })], [offer('late', { cpus: 8, mem: 8192 })]],
      onAccept: ({ taskId, agentId }) => {
        finish = () =>
          fake.deliver({ v: 1, type: 'UPDATE', status: status(taskId, agentId, 'TASK_FINISHED') });
        return [status(taskId, agentId, 'TASK_RUNNING')];
      },
    });
    const run = runTask(
      options(fake, {
        onProgress: (s) => {
          if (s.state === 'TASK_RUNNING') setTimeout(() => finish?.(), 20);
        },
      }),
    );
    await run;
    expect(fake.callsOf('DECLINE')).toEqual([
      {
        v: 1,
        type: 'DECLINE',
        frameworkId: FW,
        offerIds: ['late'],
        filters: { refuseSeconds: LAUNCHED_REFUSE_SECONDS },
      },
    ]);
  });

  it('returns a TASK_ERROR (or TASK_DROPPED) from Meso like any terminal status', async () => {
    const fake = new FakeTransport();
    controlPlane(fake, {
      offers: [[offer('a', { cpus: 1, mem: 128 })]],
      onAccept: ({ taskId, agentId }) => [
        {
          ...status(taskId, agentId, 'TASK_ERROR'),
          source: 'SOURCE_MASTER',
          uuid: undefined,
          reason: 'REASON_TASK_INVALID',
          message: 'user "nobody2" does not exist',
        },
      ],
    });
    const { status: s, history } = await runTask(options(fake));
    expect(s).toMatchObject({ state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' });
    expect(history).toEqual(['TASK_ERROR']);
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([]);
    expect(fake.callsOf('TEARDOWN')).toHaveLength(1);
  });

  it('ignores updates of other tasks and duplicates of its own', async () => {
    const fake = new FakeTransport();
    controlPlane(fake, {
      offers: [[offer('a', { cpus: 1, mem: 128 })]],
      onAccept: ({ taskId, agentId }) => {
        const running = status(taskId, agentId, 'TASK_RUNNING');
        return [
          status('someone-else', agentId, 'TASK_FAILED'),
          running,
          running,
          status(taskId, agentId, 'TASK_FAILED'),
        ];
      },
    });
    const { status: s, history } = await runTask(options(fake));
    expect(s.state).toBe('TASK_FAILED');
    expect(history).toEqual(['TASK_RUNNING', 'TASK_FAILED']);
  });

  it('on abort after the launch kills the task (after the ACCEPT) and waits for TASK_KILLED', async () => {
    const fake = new FakeTransport();
    const controller = new AbortController();
    controlPlane(fake, {
      offers: [[offer('a', { cpus: 1, mem: 128 })]],
      onAccept: ({ taskId, agentId }) => [status(taskId, agentId, 'TASK_RUNNING')],
      onKill: (taskId, agentId) => [
        status(taskId, agentId, 'TASK_KILLING'),
        status(taskId, agentId, 'TASK_KILLED', { exitCode: 143 }),
      ],
    });
    const result = await runTask(
      options(fake, {
        signal: controller.signal,
        onProgress: (s) => {
          if (s.state === 'TASK_RUNNING') {
            controller.abort();
            controller.abort();
          }
        },
      }),
    );
    expect(result.status.state).toBe('TASK_KILLED');
    expect(result.history).toEqual(['TASK_RUNNING', 'TASK_KILLING', 'TASK_KILLED']);
    const types = fake.calls().map((c) => c.type);
    expect(types.indexOf('KILL')).toBeGreaterThan(types.indexOf('ACCEPT'));
    expect(fake.callsOf('KILL')).toEqual([
      { v: 1, type: 'KILL', frameworkId: FW, taskId: result.taskId, agentId: 'agent-a' },
    ]);
    expect(types.at(-1)).toBe('TEARDOWN');
  });

  it('on abort before the launch rejects, tears down and deletes the queue', async () => {
    const fake = new FakeTransport();
    const controller = new AbortController();
    controlPlane(fake, { offers: [[offer('tiny', { cpus: 0.01, mem: 1 })]] });
    const run = runTask(
      options(fake, {
        signal: controller.signal,
        onOffers: () => setTimeout(() => controller.abort(), 5),
      }),
    );
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(fake.callsOf('ACCEPT')).toEqual([]);
    expect(fake.callsOf('TEARDOWN')).toHaveLength(1);
    expect(fake.deletedQueues).toHaveLength(1);
  });

  it('refuses a bad task before creating anything', async () => {
    const fake = new FakeTransport();
    await expect(runTask(options(fake, { taskId: 'has spaces' }))).rejects.toMatchObject({
      code: 'INVALID_CALL',
    });
    await expect(runTask(options(fake, { mem: 0.0001 }))).rejects.toThrow(/three decimal/);
    await expect(runTask(options(fake, { command: [] }))).rejects.toMatchObject({ code: 'INVALID_CALL' });
    expect(fake.created).toEqual([]);
    expect(fake.sent).toEqual([]);
  });

  it('fails after the subscribe timeout, and sends no TEARDOWN when SUBSCRIBE could not be sent', async () => {
    const silent = new FakeTransport();
    await expect(runTask(options(silent, { subscribeTimeoutMs: 80 }))).rejects.toMatchObject({
      code: 'SUBSCRIBE_TIMEOUT',
    });
    expect(silent.callsOf('TEARDOWN')).toHaveLength(1);
    expect(silent.deletedQueues).toHaveLength(1);

    const broken = new FakeTransport();
    broken.failSends = 100;
    const errors: MesoSdkError[] = [];
    await expect(runTask(options(broken, { onError: (e) => errors.push(e) }))).rejects.toMatchObject({
      code: 'SEND_FAILED',
    });
    expect(broken.failedSendAttempts.flat().every((m) => JSON.parse(m.body).type === 'SUBSCRIBE')).toBe(true);
    expect(broken.deletedQueues).toHaveLength(1);
  });

  it('keeps a queue it was given', async () => {
    const fake = new FakeTransport();
    controlPlane(fake, {
      offers: [[offer('a', { cpus: 1, mem: 128 })]],
      onAccept: ({ taskId, agentId }) => [status(taskId, agentId, 'TASK_FINISHED')],
    });
    await runTask(options(fake, { queueUrl: 'https://sqs.fake/0/mine.fifo' }));
    expect(fake.created).toEqual([]);
    expect(fake.deletedQueues).toEqual([]);
  });
});
