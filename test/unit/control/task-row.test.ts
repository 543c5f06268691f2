/**
 * A task row keeps `info` and `latest` without the ids it carries itself (lib/core/task-row.ts).
 * What readers get must not change: the LAUNCH an ACCEPT sends — and re-sends when it is
 * redelivered — is the framework's TaskInfo exactly, for a row of either layout (a cluster
 * upgraded in place has rows written before, ids included), and the operator's view of a row is
 * the same for both.
 */
import { describe, expect, it } from 'vitest';
import { taskCommand } from '../../../lib/cli/task.ts';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { taskView } from '../../../lib/control/operator-state.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import type { TaskRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import type { Item } from '../../../lib/ports/store.ts';
import type { TaskInfo } from '../../../lib/protocol/index.ts';
import { agentQueue, putAgent, putFramework, record, task, testControl } from './helpers.ts';

const INFO: TaskInfo = {
  taskId: 'web-1',
  name: 'web',
  agentId: 'a1',
  resources: { cpus: 0.5, mem: 64 },
  command: { shell: true, value: 'echo hi' },
  killGracePeriodSeconds: 7,
};

async function launched() {
  const t = testControl();
  await putFramework(t, 'fw', { principal: 'fw-principal' });
  await putAgent(t, 'a1', {
    offers: {
      'o1@a1': {
        offerId: 'o1@a1',
        frameworkId: 'fw',
        role: '*',
        resources: parse('cpus:2;mem:1024'),
        expiresAt: t.now + 60_000,
      },
    },
  });
  const accept = record(
    {
      v: 1,
      type: 'ACCEPT',
      frameworkId: 'fw',
      offerIds: ['o1@a1'],
      operations: [{ type: 'LAUNCH', tasks: [INFO] }],
    },
    'fw-principal',
    undefined,
    'accept-1',
  );
  await handleSchedulerCall(t.deps, accept);
  return { t, accept };
}

const launches = (t: Awaited<ReturnType<typeof launched>>['t']) =>
  t.bus.commands(agentQueue('a1')).filter((c) => c.type === 'LAUNCH');

describe('a task row without the ids it carries', () => {
  it('sends, and re-sends on a redelivered ACCEPT, the TaskInfo the framework gave', async () => {
    const { t, accept } = await launched();
    const row = await task(t, 'fw', 'web-1');
    expect(row.info).not.toHaveProperty('taskId');
    expect(row.info).not.toHaveProperty('agentId');
    expect(row.info).toMatchObject({ name: 'web', killGracePeriodSeconds: 7 });
    await handleSchedulerCall(t.deps, accept);
    expect(launches(t)).toEqual([
      { v: 1, type: 'LAUNCH', frameworkId: 'fw', task: INFO },
      { v: 1, type: 'LAUNCH', frameworkId: 'fw', task: INFO },
    ]);
  });

  it('reads a row written with the ids (before) as one written without them', async () => {
    const { t, accept } = await launched();
    const slim = await task(t, 'fw', 'web-1');
    // The same row as the layout before wrote it, with a latest status ahead of `status`.
    const latest = {
      state: 'TASK_FAILED' as const,
      source: 'SOURCE_EXECUTOR' as const,
      timestamp: t.now,
      exitCode: 2,
      message: 'exit 2',
    };
    const put = async (row: TaskRecord) => {
      const { version, ...item } = row;
      await t.store.write([{ kind: 'put', table: 'tasks', item: item as unknown as Item, expect: version }]);
      return task(t, 'fw', 'web-1');
    };
    // Still STAGING: a redelivered ACCEPT re-sends its LAUNCH.
    const old = await put({ ...slim, info: INFO });
    await handleSchedulerCall(t.deps, accept);
    expect(launches(t)).toHaveLength(2);
    expect(launches(t)[1]).toEqual({ v: 1, type: 'LAUNCH', frameworkId: 'fw', task: INFO });
    // Its latest status with the ids, as they were kept, shows as one without them.
    const ended = await put({
      ...old,
      state: 'TASK_FAILED',
      latest: { taskId: 'web-1', frameworkId: 'fw', agentId: 'a1', ...latest },
    });
    expect(taskView(ended)).toEqual(taskView({ ...slim, state: 'TASK_FAILED', latest }));
    expect(taskView(ended)).toMatchObject({ name: 'web', state: 'TASK_FAILED', exitCode: 2 });
    // `meso task --json` prints the TaskInfo and the latest status whole, for either layout.
    const json = async () => {
      let stdout = '';
      const io = {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: () => true },
        onInterrupt: () => () => {},
        exit: (c: number): never => {
          throw new Error(`exit ${c}`);
        },
      };
      await taskCommand(
        'web-1',
        { framework: 'fw', json: true },
        { io, openStore: () => ({ store: t.store, close: () => {} }) },
      );
      return JSON.parse(stdout);
    };
    const printed = await json();
    expect(printed).toMatchObject({
      info: INFO,
      latest: { taskId: 'web-1', frameworkId: 'fw', agentId: 'a1', ...latest },
    });
    await put({ ...ended, info: slim.info, latest });
    expect(await json()).toEqual({ ...printed, version: printed.version + 1 });
  });

  it('records an agent’s latest status without the ids and shows it to operators whole', async () => {
    const { t } = await launched();
    await handleAgentCall(
      t.deps,
      record(
        {
          v: 1,
          type: 'STATUS_UPDATE',
          agentId: 'a1',
          status: {
            taskId: 'web-1',
            frameworkId: 'fw',
            state: 'TASK_RUNNING',
            source: 'SOURCE_EXECUTOR',
            uuid: 'u1',
            timestamp: t.now,
          },
          latest: {
            state: 'TASK_FAILED',
            source: 'SOURCE_EXECUTOR',
            timestamp: t.now,
            exitCode: 2,
            message: 'exit 2',
          },
        },
        'agent-principal',
      ),
    );
    const row = await task(t, 'fw', 'web-1');
    expect(row.latest).toEqual({
      state: 'TASK_FAILED',
      source: 'SOURCE_EXECUTOR',
      timestamp: t.now,
      exitCode: 2,
      message: 'exit 2',
    });
    expect(taskView(row)).toMatchObject({
      taskId: 'web-1',
      frameworkId: 'fw',
      agentId: 'a1',
      state: 'TASK_FAILED',
      exitCode: 2,
    });
  });
});
