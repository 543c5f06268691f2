/**
 * At-least-once delivery must not mean at-least-once effects: every handler gets every batch
 * twice, and every message the control plane sends is sent twice (as distinct messages, so no
 * FIFO deduplication hides it). The run must look exactly like a clean one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../lib/core/model.ts';
import type { Bus } from '../../lib/ports/bus.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { TaskStatus } from '../../lib/protocol/index.ts';
import { eventually, type Harness, launchWhatFits, startHarness } from './harness.ts';

const doubling = (inner: Bus): Bus => ({
  async send(queueUrl, messages) {
    await inner.send(queueUrl, messages);
    await inner.send(
      queueUrl,
      messages.map((m) => ({ ...m, ...(m.dedupId ? { dedupId: `${m.dedupId}.again` } : {}) })),
    );
  },
});

describe('every message delivered twice', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 2, controlPlane: { deliverTwice: true, wrap: { bus: doubling } } });
  });
  afterAll(async () => h?.stop());

  it('changes nothing: no second launch, no double counting, one update stream per task', async () => {
    const launches = new Map<string, number>();
    for (const a of h.agents)
      a.on('taskStarted', (_fw, taskId) => launches.set(taskId, (launches.get(taskId) ?? 0) + 1));

    const s = h.scheduler({ name: 'twice' });
    const N = 8;
    const pending = Array.from({ length: N }, (_, i) => `d${i}`);
    launchWhatFits(s, pending, { max: 2, cpus: 0.25, mem: 32 });
    const updates = new Map<string, TaskStatus['state'][]>();
    const done = new Promise<void>((resolve) =>
      s.on('update', (u) => {
        updates.set(u.taskId, [...(updates.get(u.taskId) ?? []), u.state]);
        if ([...updates.values()].filter((l) => l.includes('TASK_FINISHED')).length === N) resolve();
      }),
    );
    await s.subscribe();
    await done;

    for (let i = 0; i < N; i++) {
      expect(launches.get(`d${i}`)).toBe(1);
      expect(updates.get(`d${i}`)).toEqual(['TASK_RUNNING', 'TASK_FINISHED']);
    }
    expect(h.controlPlane.counters.get('TasksLaunched')).toBe(N);
    const tasks = await h.controlPlane.deps.store.query<TaskRecord & Item>('tasks', {
      name: 'frameworkId',
      value: s.frameworkId,
    });
    expect(tasks.map((t) => t.state).sort()).toEqual(Array(N).fill('TASK_FINISHED'));
    await eventually(
      async () => h.agents.every((a) => a.pendingStatusUpdates().length === 0),
      'acknowledgements',
    );
    const agents = await h.controlPlane.deps.store.scan<{ tasks: object } & Item>('agents');
    for (const a of agents) expect(a.tasks).toEqual({});
    expect(h.violations).toEqual([]);
  });
});
