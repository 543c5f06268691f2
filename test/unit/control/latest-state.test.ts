/**
 * The registry's half of a task's latest state over the in-memory store: a LATEST_STATE or a
 * STATUS_UPDATE's `latest` moves the row's state and frees the task's resources at once, forwards
 * nothing ahead of the update stream, frees nothing twice; and an agent that goes away afterwards
 * still has its framework told, without the ended task coming back to life on the row.
 */
import { describe, expect, it } from 'vitest';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { DEFAULT_CONTROL_CONFIG } from '../../../lib/control/deps.ts';
import { markUnreachable, pingTimeoutMs } from '../../../lib/control/liveness.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import {
  agent,
  agentQueue,
  fwQueue,
  putAgent,
  putFramework,
  putTask,
  Q,
  record,
  task,
  testControl,
} from './helpers.ts';

const PRINCIPAL = 'agent-principal';

async function cluster() {
  const t = testControl();
  await putFramework(t, 'fw', { partitionAware: true });
  await putAgent(t, 'a1');
  await putAgent(t, 'a2', { principal: 'other-principal' });
  await putTask(t, 'fw', 't1', 'a1');
  return t;
}

const finished = (now: number) => ({
  state: 'TASK_FINISHED',
  source: 'SOURCE_EXECUTOR',
  timestamp: now,
  exitCode: 0,
  message: 'exited with code 0',
});

const latestCall = (agentId: string, latest: object) => ({
  v: 1,
  type: 'LATEST_STATE',
  agentId,
  frameworkId: 'fw',
  taskId: 't1',
  latest,
});

const allocations = (t: Awaited<ReturnType<typeof cluster>>) => t.bus.to(Q.allocator).length;

describe('LATEST_STATE at the registry', () => {
  it('records the state, frees the resources and nudges the allocator, forwarding nothing; a redelivery frees nothing again', async () => {
    const t = await cluster();
    const msg = record(latestCall('a1', finished(t.now)), PRINCIPAL, undefined, 'm1');
    await handleAgentCall(t.deps, msg);
    const row = await task(t, 'fw', 't1');
    expect(row).toMatchObject({
      state: 'TASK_FINISHED',
      updateState: 'TASK_RUNNING',
      agentId: 'a1',
      latest: { state: 'TASK_FINISHED', exitCode: 0 },
    });
    // The row's ids are not repeated in its latest status (lib/core/task-row.ts).
    expect(row.latest).not.toHaveProperty('taskId');
    expect(row.latest).not.toHaveProperty('frameworkId');
    expect(row.latest).not.toHaveProperty('agentId');
    expect(row.status.state).toBe('TASK_RUNNING');
    expect(row.purgeAt).toBeGreaterThan(0);
    expect((await agent(t, 'a1')).tasks[ledgerKey('fw', 't1')]).toBeUndefined();
    expect(allocations(t)).toBe(1);
    expect(t.bus.events(fwQueue('fw'))).toEqual([]);
    expect(t.counters.get('TasksTerminal')).toBe(1);

    // Redelivered: the row is as it was; the nudge is sent again (its first may have been lost).
    const version = (await task(t, 'fw', 't1')).version;
    await handleAgentCall(t.deps, msg);
    expect((await task(t, 'fw', 't1')).version).toBe(version);
    expect(t.counters.get('TasksTerminal')).toBe(1);
    expect(t.bus.events(fwQueue('fw'))).toEqual([]);
  });

  it('the STATUS_UPDATE stream is still forwarded in order, and its terminal update frees nothing twice', async () => {
    const t = await cluster();
    await handleAgentCall(t.deps, record(latestCall('a1', finished(t.now)), PRINCIPAL));
    const a = await agent(t, 'a1');
    const update = (state: string, uuid: string) =>
      record(
        {
          v: 1,
          type: 'STATUS_UPDATE',
          agentId: 'a1',
          status: {
            taskId: 't1',
            frameworkId: 'fw',
            state,
            source: 'SOURCE_EXECUTOR',
            uuid,
            timestamp: t.now,
          },
          latest: finished(t.now),
        },
        PRINCIPAL,
      );
    await handleAgentCall(t.deps, update('TASK_KILLING', 'k1'));
    await handleAgentCall(t.deps, update('TASK_FINISHED', 'f1'));
    const states = t.bus
      .events(fwQueue('fw'))
      .flatMap((e) => (e.type === 'UPDATE' && e.status.uuid ? [e.status.state] : []));
    expect(states).toEqual(['TASK_KILLING', 'TASK_FINISHED']);
    // Nothing terminal went to the framework before the stream's own terminal update.
    const events = t.bus.events(fwQueue('fw')).flatMap((e) => (e.type === 'UPDATE' ? [e.status.state] : []));
    expect(events.indexOf('TASK_FINISHED')).toBe(events.length - 1);
    expect(await task(t, 'fw', 't1')).toMatchObject({
      state: 'TASK_FINISHED',
      updateState: 'TASK_FINISHED',
      latest: null,
    });
    expect((await agent(t, 'a1')).tasks).toEqual(a.tasks);
    expect(t.counters.get('TasksTerminal')).toBe(1);
  });

  it('is refused from another agent, for an unknown task, and when it would take a terminal state back', async () => {
    const t = await cluster();
    const before = await task(t, 'fw', 't1');
    await handleAgentCall(t.deps, record(latestCall('a2', finished(t.now)), 'other-principal'));
    expect(await task(t, 'fw', 't1')).toEqual(before);
    expect((await agent(t, 'a1')).tasks[ledgerKey('fw', 't1')]).toBeDefined();
    expect(t.bus.commands(agentQueue('a2'))).toContainEqual(
      expect.objectContaining({ type: 'ERROR', code: 'FORBIDDEN' }),
    );

    await handleAgentCall(
      t.deps,
      record({ ...latestCall('a1', finished(t.now)), taskId: 'nope' }, PRINCIPAL),
    );
    expect(t.bus.commands(agentQueue('a1'))).toContainEqual(
      expect.objectContaining({ type: 'ERROR', code: 'UNKNOWN_TASK' }),
    );

    await handleAgentCall(
      t.deps,
      record(latestCall('a1', { ...finished(t.now), state: 'TASK_BOGUS' }), PRINCIPAL),
    );
    expect(await task(t, 'fw', 't1')).toEqual(before);

    await handleAgentCall(t.deps, record(latestCall('a1', finished(t.now)), PRINCIPAL));
    const ended = await task(t, 'fw', 't1');
    for (const state of ['TASK_RUNNING', 'TASK_FAILED']) {
      await handleAgentCall(t.deps, record(latestCall('a1', { ...finished(t.now), state }), PRINCIPAL));
      expect(await task(t, 'fw', 't1')).toEqual(ended);
    }
    expect(t.counters.get('LatestStatesRefused')).toBe(2);
    expect(
      t.bus.commands(agentQueue('a1')).filter((c) => c.type === 'ERROR' && c.code === 'INVALID'),
    ).toHaveLength(3);
  });

  it('an agent that goes away after its task ended: the framework is told, the row stays ended', async () => {
    const t = await cluster();
    await handleAgentCall(t.deps, record(latestCall('a1', finished(t.now)), PRINCIPAL));
    t.now += pingTimeoutMs(DEFAULT_CONTROL_CONFIG);
    await markUnreachable(t.deps, 'a1', 'test');
    const told = t.bus.events(fwQueue('fw')).find((e) => e.type === 'UPDATE');
    expect(told).toMatchObject({ status: { state: 'TASK_UNREACHABLE' } });
    expect(await task(t, 'fw', 't1')).toMatchObject({
      state: 'TASK_FINISHED',
      updateState: 'TASK_UNREACHABLE',
      latest: { state: 'TASK_FINISHED' },
    });
  });
});
