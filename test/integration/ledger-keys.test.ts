/**
 * Task ids are unique only within a framework: a second framework launching a task with the id of
 * another's running task on the same agent is charged beside it, and the end of its task releases
 * only its own resources — through the real control plane, DynamoDB Local, the SQS emulator and
 * a real agent running both processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerKey } from '../../lib/core/ledger.ts';
import type { AgentRecord } from '../../lib/core/model.ts';
import type { Item } from '../../lib/ports/store.ts';
import { accountingProblems } from '../../lib/testing/invariants.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe('two frameworks, one task id, one agent', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 1 });
  });
  afterAll(async () => h?.stop());

  const agentRow = async () =>
    (await h.controlPlane.deps.store.get<AgentRecord & Item>('agents', { agentId: h.agents[0]!.agentId }))!;

  const launchSame = async (fw: Awaited<ReturnType<Harness['framework']>>, cpus: number) => {
    const offer = await fw.r.takeOffer();
    await fw.s.accept(
      [offer.offerId],
      [
        {
          taskId: 'same',
          agentId: offer.agentId,
          resources: { cpus, mem: 32 },
          command: { value: 'sleep 300' },
        },
      ],
      { refuseSeconds: 0 },
    );
    await fw.r.update('same', 'TASK_RUNNING');
  };

  it("both are charged, and the attacker's task ending leaves the victim's charge and process", async () => {
    const victim = await h.framework({ name: 'victim' });
    await launchSame(victim, 0.5);
    // Subscribed only now, so the agent's remaining resources are offered to it.
    const attacker = await h.framework({ name: 'attacker' });
    await launchSame(attacker, 0.25);
    const victimKey = ledgerKey(victim.s.frameworkId, 'same');
    const attackerKey = ledgerKey(attacker.s.frameworkId, 'same');

    const both = await agentRow();
    expect(Object.keys(both.tasks).sort()).toEqual([victimKey, attackerKey].sort());
    expect(both.tasks[victimKey]!.resources.cpus).toBe(500);
    expect(both.tasks[attackerKey]!.resources.cpus).toBe(250);
    expect(accountingProblems(both)).toEqual([]);

    await attacker.s.kill('same');
    expect((await attacker.r.terminal('same')).state).toBe('TASK_KILLED');
    await eventually(
      async () => !(await agentRow()).tasks[attackerKey],
      "the attacker's task to be released",
    );
    const after = await agentRow();
    expect(Object.keys(after.tasks)).toEqual([victimKey]);
    expect(after.tasks[victimKey]).toMatchObject({ frameworkId: victim.s.frameworkId, taskId: 'same' });
    // The victim's task still runs, and its framework heard of no end.
    expect(h.agents[0]!.runningTasks()).toContainEqual(
      expect.objectContaining({ frameworkId: victim.s.frameworkId, taskId: 'same' }),
    );
    expect(victim.r.updates.map((u) => u.state)).toEqual(['TASK_RUNNING']);

    await victim.s.kill('same');
    expect((await victim.r.terminal('same')).state).toBe('TASK_KILLED');
    await eventually(async () => Object.keys((await agentRow()).tasks).length === 0, 'an empty ledger');
    expect(h.violations).toEqual([]);
    await Promise.all([victim.s.teardown(), attacker.s.teardown()]);
  });
});
