/** Killing, failing and rejected launches, through the real control plane and real processes. */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerKey } from '../../lib/core/ledger.ts';
import type { AgentRecord } from '../../lib/core/model.ts';
import type { Item } from '../../lib/ports/store.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe('task lifecycle', () => {
  let h: Harness;
  let skewMs = 0;
  const started = new Set<string>();
  beforeAll(async () => {
    h = await startHarness({ agents: 1, controlPlane: { clock: { now: () => Date.now() + skewMs } } });
    for (const a of h.agents) a.on('taskStarted', (_fw, taskId) => started.add(taskId));
  });
  afterAll(async () => h?.stop());

  const agentRow = async () =>
    (await h.controlPlane.deps.store.get<AgentRecord & Item>('agents', { agentId: h.agents[0]!.agentId }))!;

  it('KILL of a long-running task gives TASK_KILLED after SIGTERM', async () => {
    const { s, r } = await h.framework({ name: 'kill-term' });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'sleeper',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'sleep 300' },
        },
      ],
    );
    await r.update('sleeper', 'TASK_RUNNING');
    await s.kill('sleeper');
    const killed = await r.terminal('sleeper');
    expect(killed.state).toBe('TASK_KILLED');
    expect(killed.message).not.toMatch(/SIGKILL/);
    await s.teardown();
  });

  it('a task that ignores SIGTERM is killed with SIGKILL after its grace period', async () => {
    const { s, r } = await h.framework({ name: 'kill-hard' });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'stubborn',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          killGracePeriodSeconds: 1,
          command: { value: "trap '' TERM; echo ready; while true; do sleep 1; done" },
        },
      ],
    );
    await r.update('stubborn', 'TASK_RUNNING');
    // RUNNING means spawned; the trap is in place once the shell has written its marker.
    const run = h.agents[0]!.task(s.frameworkId, 'stubborn')!;
    await eventually(
      async () => (await readFile(join(run.sandbox, 'stdout'), 'utf8')).includes('ready'),
      'the trap to be set',
    );
    await s.kill('stubborn');
    const killed = await r.terminal('stubborn');
    expect(killed.state).toBe('TASK_KILLED');
    expect(killed.message).toMatch(/SIGKILL/);
    await s.teardown();
  });

  it('a failing command gives TASK_FAILED with its exit code and the tail of stderr', async () => {
    const { s, r } = await h.framework({ name: 'fail' });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'bad',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'echo boom >&2; exit 3' },
        },
      ],
    );
    const failed = await r.terminal('bad');
    expect(failed.state).toBe('TASK_FAILED');
    expect(failed.exitCode).toBe(3);
    expect(failed.stderrTail).toContain('boom');
    await s.teardown();
  });

  it('a task larger than its offer gives TASK_ERROR and launches nothing', async () => {
    const { s, r } = await h.framework({ name: 'too-big' });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'huge',
          agentId: offer.agentId,
          resources: { cpus: 1000, mem: 32 },
          command: { value: 'echo no' },
        },
      ],
    );
    const st = await r.terminal('huge');
    expect(st.state).toBe('TASK_ERROR');
    expect(st.reason).toBe('REASON_TASK_INVALID');
    expect(started.has('huge')).toBe(false);
    expect((await agentRow()).tasks[ledgerKey(s.frameworkId, 'huge')]).toBeUndefined();
    await s.teardown();
  });

  it('a launch on an expired offer gives TASK_DROPPED and launches nothing', async () => {
    const { s, r } = await h.framework({ name: 'expired' });
    const offer = await r.takeOffer();
    // The control plane's clock is now just past the offer's expiry (the harness's offer timeout
    // is 30 s) — not so far that agents look silent. The tests after this one subscribe right
    // after it steps back, when offers made while it was ahead must not hold the agent.
    skewMs = offer.expiresAt - Date.now() + 1_000;
    try {
      await s.accept(
        [offer.offerId],
        [
          {
            taskId: 'late',
            agentId: offer.agentId,
            resources: { cpus: 0.1, mem: 32 },
            command: { value: 'echo late' },
          },
        ],
      );
      const st = await r.terminal('late');
      expect(st.state).toBe('TASK_DROPPED');
      expect(st.reason).toBe('REASON_INVALID_OFFERS');
      // Expired at ACCEPT, or already rescinded by a cycle that saw it expired: dropped either way.
      expect(st.message).toMatch(/expired|unknown|rescinded/);
    } finally {
      skewMs = 0;
    }
    expect(started.has('late')).toBe(false);
    expect((await agentRow()).tasks[ledgerKey(s.frameworkId, 'late')]).toBeUndefined();
    await s.teardown();
  });

  it('a launch on a rescinded offer gives TASK_DROPPED and launches nothing', async () => {
    const { s, r } = await h.framework({ name: 'rescinded' });
    const offer = await r.takeOffer();
    // Rescind it as the offer timer would.
    const { rescindOffer } = await import('../../lib/control/allocation.ts');
    expect(await rescindOffer(h.controlPlane.deps, offer.agentId, offer.offerId)).toBe(true);
    await r.until(() => r.rescinds.includes(offer.offerId));
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'gone',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'echo gone' },
        },
      ],
    );
    const st = await r.terminal('gone');
    expect(st.state).toBe('TASK_DROPPED');
    expect(st.reason).toBe('REASON_INVALID_OFFERS');
    expect(started.has('gone')).toBe(false);
    await s.teardown();
  });

  it('a duplicate task id gives TASK_ERROR and launches nothing more', async () => {
    const { s, r } = await h.framework({ name: 'dup' });
    const first = await r.takeOffer();
    await s.accept(
      [first.offerId],
      [
        {
          taskId: 'twin',
          agentId: first.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'sleep 300' },
        },
      ],
      { refuseSeconds: 0 },
    );
    await r.update('twin', 'TASK_RUNNING');
    const second = await r.takeOffer();
    let launches = 0;
    const count = (_fw: string, taskId: string) => taskId === 'twin' && launches++;
    h.agents[0]!.on('taskStarted', count);
    await s.accept(
      [second.offerId],
      [
        {
          taskId: 'twin',
          agentId: second.agentId,
          resources: { cpus: 0.1, mem: 32 },
          command: { value: 'echo again' },
        },
      ],
    );
    await r.until(() => r.updates.some((u) => u.taskId === 'twin' && u.state === 'TASK_ERROR'));
    const err = r.updates.find((u) => u.taskId === 'twin' && u.state === 'TASK_ERROR')!;
    expect(err.reason).toBe('REASON_DUPLICATE_TASK_ID');
    expect(launches).toBe(0);
    expect(h.agents[0]!.runningTasks().filter((t) => t.taskId === 'twin')).toHaveLength(1);
    h.agents[0]!.off('taskStarted', count);
    await s.kill('twin');
    await r.terminal('twin');
    await s.teardown();
  });
});
