/**
 * Task ids are unique only within a framework (as in Mesos), so an agent's ledger keeps each task
 * under its framework and task id. A framework that launches a task with the id of another
 * framework's task on the same agent — by accident or to attack it — must neither overwrite the
 * victim's charge (the agent would be over-committed) nor, when its own task ends, release the
 * victim's resources. Driven through the real handlers over the in-memory store.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { releaseTask } from '../../../lib/control/records/agents.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import { agentFree, ledgerKey } from '../../../lib/core/ledger.ts';
import { format, parse } from '../../../lib/core/resources.ts';
import { Id } from '../../../lib/protocol/common.ts';
import { accountingProblems } from '../../../lib/testing/invariants.ts';
import { agent, putAgent, putFramework, record, type TestControl, task, testControl } from './helpers.ts';

const AGENT = 'agent-principal';

async function twoFrameworksOneAgent(): Promise<TestControl> {
  const t = testControl();
  await putFramework(t, 'victim', { principal: 'victim-principal' });
  await putFramework(t, 'attacker', { principal: 'attacker-principal' });
  const offer = (frameworkId: string) => ({
    offerId: `o-${frameworkId}@a1`,
    frameworkId,
    role: '*',
    resources: parse('cpus:2;mem:1024'),
    expiresAt: t.now + 60_000,
  });
  await putAgent(t, 'a1', {
    offers: { 'o-victim@a1': offer('victim'), 'o-attacker@a1': offer('attacker') },
  });
  return t;
}

const launch = (t: TestControl, frameworkId: string, cpus: number) =>
  handleSchedulerCall(
    t.deps,
    record(
      {
        v: 1,
        type: 'ACCEPT',
        frameworkId,
        offerIds: [`o-${frameworkId}@a1`],
        operations: [
          {
            type: 'LAUNCH',
            tasks: [
              {
                taskId: 'web',
                agentId: 'a1',
                resources: { cpus, mem: 256 },
                command: { value: 'sleep 600' },
              },
            ],
          },
        ],
      },
      `${frameworkId}-principal`,
    ),
  );

const update = (t: TestControl, frameworkId: string, state: string, uuid: string) =>
  handleAgentCall(
    t.deps,
    record(
      {
        v: 1,
        type: 'STATUS_UPDATE',
        agentId: 'a1',
        status: { taskId: 'web', frameworkId, state, source: 'SOURCE_EXECUTOR', uuid, timestamp: t.now },
      },
      AGENT,
    ),
  );

describe('the agent ledger is keyed by framework and task', () => {
  it("a second framework's task with the same id is charged beside the first, and its end releases only its own", async () => {
    const t = await twoFrameworksOneAgent();
    await launch(t, 'victim', 1);
    await launch(t, 'attacker', 0.5);
    expect((await task(t, 'victim', 'web')).state).toBe('TASK_STAGING');
    expect((await task(t, 'attacker', 'web')).state).toBe('TASK_STAGING');

    const both = await agent(t, 'a1');
    expect(accountingProblems(both)).toEqual([]);
    expect(Object.values(both.tasks).map((e) => [e.frameworkId, e.taskId, format(e.resources)])).toEqual(
      expect.arrayContaining([
        ['victim', 'web', format(parse('cpus:1;mem:256'))],
        ['attacker', 'web', format(parse('cpus:0.5;mem:256'))],
      ]),
    );
    expect(Object.keys(both.tasks)).toHaveLength(2);
    // Both tasks are charged: 4 cpus less 1 and 0.5 (the offers were consumed).
    expect(format(agentFree(both))).toBe(format(parse('cpus:2.5;mem:3584')));

    // The attacker's task ends: only its charge leaves the ledger.
    await update(t, 'attacker', 'TASK_RUNNING', 'u-a-run');
    await update(t, 'attacker', 'TASK_FINISHED', 'u-a-fin');
    expect((await task(t, 'attacker', 'web')).state).toBe('TASK_FINISHED');
    const after = await agent(t, 'a1');
    expect(accountingProblems(after)).toEqual([]);
    expect(Object.keys(after.tasks)).toEqual([ledgerKey('victim', 'web')]);
    expect(after.tasks[ledgerKey('victim', 'web')]).toMatchObject({ frameworkId: 'victim', taskId: 'web' });
    expect(format(agentFree(after))).toBe(format(parse('cpus:3;mem:3840')));
    expect((await task(t, 'victim', 'web')).state).toBe('TASK_STAGING');

    // A redelivered terminal update of the attacker's releases nothing more.
    await update(t, 'attacker', 'TASK_FINISHED', 'u-a-fin');
    expect(Object.keys((await agent(t, 'a1')).tasks)).toEqual([ledgerKey('victim', 'web')]);
  });

  it('no two (framework, task) pairs of valid ids share a key, and no key is a bare task id', () => {
    expect(Id.safeParse('a/b').success).toBe(false);
    const id = fc
      .stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,12}$/)
      .filter((s) => Id.safeParse(s).success);
    fc.assert(
      fc.property(id, id, id, id, (f1, t1, f2, t2) => {
        if (f1 === f2 && t1 === t2) return;
        expect(ledgerKey(f1, t1)).not.toBe(ledgerKey(f2, t2));
        expect(Id.safeParse(ledgerKey(f1, t1)).success).toBe(false);
      }),
    );
    // The separator is what makes `a:b` + `c` and `a` + `b:c` differ.
    expect(ledgerKey('a:b', 'c')).not.toBe(ledgerKey('a', 'b:c'));
  });
});

describe('releasing from a ledger written by an older version (bare task-id keys)', () => {
  async function legacy(): Promise<TestControl> {
    const t = testControl();
    await putAgent(t, 'a1', {
      tasks: { web: { frameworkId: 'victim', resources: parse('cpus:1;mem:256') } },
    });
    return t;
  }

  it("another framework's end of a task with that id leaves the entry", async () => {
    const t = await legacy();
    expect(await releaseTask(t.store, 'a1', 'attacker', 'web')).toBe(false);
    expect(Object.keys((await agent(t, 'a1')).tasks)).toEqual(['web']);
  });

  it("its own framework's end removes it, once", async () => {
    const t = await legacy();
    expect(await releaseTask(t.store, 'a1', 'victim', 'web')).toBe(true);
    expect((await agent(t, 'a1')).tasks).toEqual({});
    expect(await releaseTask(t.store, 'a1', 'victim', 'web')).toBe(false);
  });
});
