/**
 * The walking skeleton end to end: a framework subscribes through the SDK, gets offers from the
 * allocator, launches tasks on real agents that run real processes, and hears every update.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Offer, TaskInfo, TaskStatus } from '../../lib/protocol/index.ts';
import type { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

interface Pending {
  taskId: string;
  command: string;
  cpus: number;
  mem: number;
  uris?: TaskInfo['uris'];
}

/** A small framework: launches pending tasks into offers as they fit, declines what is left. */
function greedyFramework(s: MesoScheduler, pending: Pending[]) {
  const offersSeen: Offer[] = [];
  s.on('offers', async (offers) => {
    for (const offer of offers) {
      offersSeen.push(offer);
      let cpus = offer.resources.cpus ?? 0;
      let mem = offer.resources.mem ?? 0;
      const batch = [];
      while (pending.length > 0 && pending[0]!.cpus <= cpus + 1e-9 && pending[0]!.mem <= mem) {
        const t = pending.shift()!;
        cpus -= t.cpus;
        mem -= t.mem;
        batch.push({
          taskId: t.taskId,
          agentId: offer.agentId,
          resources: { cpus: t.cpus, mem: t.mem },
          command: { value: t.command },
          ...(t.uris ? { uris: t.uris } : {}),
        });
      }
      if (batch.length > 0) await s.accept([offer.offerId], batch, { refuseSeconds: 0 });
      else await s.decline([offer.offerId], 1);
    }
  });
  return { offersSeen };
}

describe('a task runs end to end', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 2 });
  });
  afterAll(async () => h?.stop());

  it('launches 20 tasks across 2 agents, delivers every update through FINISHED, and re-offers freed resources', async () => {
    const s = h.scheduler({ name: 'twenty' });
    const pending: Pending[] = Array.from({ length: 20 }, (_, i) => ({
      taskId: `t${i}`,
      command: `echo hello-${i}`,
      cpus: 0.5,
      mem: 64,
    }));
    const { offersSeen } = greedyFramework(s, pending);
    const updates = new Map<string, TaskStatus[]>();
    const allFinished = new Promise<void>((resolve) => {
      s.on('update', (st) => {
        updates.set(st.taskId, [...(updates.get(st.taskId) ?? []), st]);
        const done = [...updates.values()].filter((l) => l.some((u) => u.state === 'TASK_FINISHED')).length;
        if (done === 20) resolve();
      });
    });
    await s.subscribe();
    await allFinished;

    for (let i = 0; i < 20; i++) {
      const states = updates.get(`t${i}`)!.map((u) => u.state);
      // Nothing to fetch: STAGING → RUNNING, no STARTING.
      expect(states).toEqual(['TASK_RUNNING', 'TASK_FINISHED']);
      const finished = updates.get(`t${i}`)!.at(-1)!;
      expect(finished.stdoutTail).toContain(`hello-${i}`);
    }
    // Both agents ran tasks; 2 agents × 4 slots < 20 tasks, so freed resources were offered again.
    const byAgent = new Set([...updates.values()].map((l) => l[0]!.agentId));
    expect(byAgent.size).toBe(2);
    expect(offersSeen.length).toBeGreaterThan(2);
    // Every update was acknowledged: the agents stop resending.
    for (const a of h.agents) {
      await eventually(
        async () => a.pendingStatusUpdates().length === 0,
        'acknowledgements to reach the agent',
      );
    }
    // No agent's accounting ever went below zero or above its total.
    expect(h.violations).toEqual([]);
    // And when everything is done, every agent's resources are back: nothing is left in use.
    const rows = await h.controlPlane.deps.store.scan<
      { tasks: Record<string, unknown> } & Record<string, unknown>
    >('agents');
    for (const r of rows) expect(Object.keys(r.tasks)).toEqual([]);
  });

  it('reports TASK_STARTING while the task URIs are fetched, then RUNNING, each acknowledged, in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meso-launch-uri-'));
    try {
      await writeFile(join(dir, 'greeting.txt'), 'hello from a fetched file\n');
      const s = h.scheduler({ name: 'fetching' });
      greedyFramework(s, [
        {
          taskId: 'u1',
          command: 'cat greeting.txt',
          cpus: 0.5,
          mem: 64,
          uris: [{ value: `file://${join(dir, 'greeting.txt')}`, extract: false }],
        },
      ]);
      const updates: TaskStatus[] = [];
      const finished = new Promise<void>((resolve) =>
        s.on('update', (st) => {
          updates.push(st);
          if (st.state === 'TASK_FINISHED') resolve();
        }),
      );
      await s.subscribe();
      await finished;
      expect(updates.map((u) => u.state)).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
      expect(updates[0]).toMatchObject({ message: 'fetching 1 URI', source: 'SOURCE_EXECUTOR' });
      expect(updates.at(-1)?.stdoutTail).toBe('hello from a fetched file\n');
      for (const a of h.agents)
        await eventually(async () => a.pendingStatusUpdates().length === 0, 'acknowledgements');
      await s.teardown();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
