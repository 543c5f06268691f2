/**
 * A task's latest state reaches the registry at once, while its updates still reach the
 * framework one at a time: a real agent runs a task that finishes at once for a framework that
 * holds back its acknowledgements. `meso tasks` shows it FINISHED and its agent's resources are
 * offered again while the framework has acknowledged nothing; then it acknowledges and hears every
 * update in order, exactly once each. And a node cannot use a latest state to end a task of
 * another agent's, nor take a terminal one back.
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.ts';
import type { CliIo } from '../../lib/cli/io.ts';
import { runProgram } from '../../lib/cli/program.ts';
import type { TaskView } from '../../lib/control/operator-state.ts';
import { type RejectCode, rejectedCounterKey } from '../../lib/control/reject.ts';
import { ledgerKey } from '../../lib/core/ledger.ts';
import type { AgentRecord, TaskRecord } from '../../lib/core/model.ts';
import { isTerminal } from '../../lib/core/task-state.ts';
import type { Item } from '../../lib/ports/store.ts';
import { statusUpdateGroup } from '../../lib/protocol/groups.ts';
import type { TaskStatus } from '../../lib/protocol/index.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe("a task's latest state while its framework is slow to acknowledge", () => {
  let h: Harness;
  let agent: Agent;
  beforeAll(async () => {
    h = await startHarness({ agents: 1, agentResources: 'cpus:2;mem:512;disk:512;ports:[31000-31010]' });
    agent = h.agents[0]!;
  });
  afterAll(async () => h?.stop());

  const store = () => h.controlPlane.deps.store;
  const agentRow = async (id = agent.agentId) =>
    (await store().get<AgentRecord & Item>('agents', { agentId: id }))!;

  const tasksCli = async (): Promise<TaskView[]> => {
    let out = '';
    const io: CliIo = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: () => {} },
      onInterrupt: () => () => {},
      exit: (c) => {
        throw new Error(`exit ${c}`);
      },
    };
    const code = await runProgram(['tasks', '--json'], {
      io,
      operator: { connect: () => ({ deps: h.controlPlane.deps, close: () => {} }) },
      store: { openStore: () => ({ store: h.controlPlane.deps.store, close: () => {} }) },
    });
    expect(code).toBe(0);
    return JSON.parse(out) as TaskView[];
  };

  it('shows FINISHED and offers the resources again before any acknowledgement; then delivers every update in order', async () => {
    const { s, r } = await h.framework({ name: 'slow-acks', autoAcknowledge: false });
    const offer = await r.takeOffer();
    // The whole agent's cpus: an offer with cpus again means the task's were recovered.
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'quick',
          agentId: offer.agentId,
          resources: { cpus: 2, mem: 64 },
          command: { value: 'echo hello' },
        },
      ],
      { refuseSeconds: 0 },
    );
    const ended = new Promise<void>((resolve) =>
      agent.on('taskTerminated', (_fw, taskId) => taskId === 'quick' && resolve()),
    );
    await ended;

    // The operator sees the truth while the framework has acknowledged nothing.
    const shown = await eventually(
      async () => (await tasksCli()).find((t) => t.taskId === 'quick' && t.state === 'TASK_FINISHED'),
      'meso tasks to show the task FINISHED',
    );
    expect(shown).toMatchObject({ exitCode: 0 });
    expect(r.updates.filter((u) => u.taskId === 'quick' && isTerminal(u.state))).toEqual([]);
    const row = (await store().get<TaskRecord & Item>('tasks', {
      frameworkId: s.frameworkId,
      taskId: 'quick',
    }))!;
    expect(row.state).toBe('TASK_FINISHED');
    expect(isTerminal(row.status.state)).toBe(false);

    // Its resources left the agent's ledger and are offered again.
    expect((await agentRow()).tasks[ledgerKey(s.frameworkId, 'quick')]).toBeUndefined();
    await r.until(() => r.offers.some((o) => o.agentId === agent.agentId && (o.resources.cpus ?? 0) >= 2));
    expect(r.updates.filter((u) => u.taskId === 'quick' && isTerminal(u.state))).toEqual([]);

    // Now the framework acknowledges, one update at a time: each next one comes only after.
    const acked: TaskStatus[] = [];
    for (;;) {
      const open = () =>
        r.updates.filter((u) => u.taskId === 'quick' && u.uuid && !acked.some((a) => a.uuid === u.uuid));
      await r.until(() => open().length > 0);
      // Never more than one update waiting: the agent sends the next after this acknowledgement.
      expect(new Set(open().map((u) => u.uuid)).size).toBe(1);
      const u = open()[0]!;
      acked.push(u);
      await s.acknowledge(u);
      if (isTerminal(u.state)) break;
    }
    const states = acked.map((u) => u.state);
    expect(states.at(-1)).toBe('TASK_FINISHED');
    expect(states.at(-2)).toBe('TASK_RUNNING');
    expect(states.slice(0, -1).every((st) => !isTerminal(st))).toBe(true);
    // Each exactly as the agent made it: its own source and uuid, the exit code and output.
    const finished = acked.at(-1)!;
    expect(finished).toMatchObject({ source: 'SOURCE_EXECUTOR', exitCode: 0, agentId: agent.agentId });
    expect(finished.stdoutTail).toContain('hello');
    expect(finished.reason).not.toBe('REASON_RECONCILIATION');
    // Nothing terminal was heard before RUNNING was acknowledged.
    const firstTerminal = r.updates.findIndex((u) => u.taskId === 'quick' && isTerminal(u.state));
    const runningAt = r.updates.findIndex((u) => u.uuid === acked.at(-2)!.uuid);
    expect(firstTerminal).toBeGreaterThan(runningAt);
    // The row caught up: its update stream is FINISHED and no latest is kept apart.
    const after = (await store().get<TaskRecord & Item>('tasks', {
      frameworkId: s.frameworkId,
      taskId: 'quick',
    }))!;
    expect(after).toMatchObject({ state: 'TASK_FINISHED', updateState: 'TASK_FINISHED' });
    expect(after.latest ?? null).toBeNull();
    expect(h.violations).toEqual([]);
    await s.teardown();
  });

  describe('hostile latest states', () => {
    const rejected = async (code: RejectCode) =>
      Number((await store().get<Item>('meta', { key: rejectedCounterKey('agent-calls', code) }))?.count ?? 0);

    /** Sends a LATEST_STATE as `from` (its own key) and waits until it is refused with `code`. */
    async function refused(from: Agent, body: object, taskId: string, code: RejectCode) {
      const before = await rejected(code);
      await h.as(h.principalOf(from)).send(
        new SendMessageCommand({
          QueueUrl: h.cluster.queues.agentCalls,
          MessageBody: JSON.stringify({ v: 1, type: 'LATEST_STATE', agentId: from.agentId, ...body }),
          MessageGroupId: statusUpdateGroup(from.agentId, taskId),
          MessageDeduplicationId: randomUUID(),
        }),
      );
      await eventually(
        async () => (await rejected(code)) === before + 1,
        `the LATEST_STATE to be refused ${code}`,
      );
    }

    it("another agent's terminal latest state for a task it does not run is refused; the task runs on", async () => {
      const other = await h.startAgent();
      const { s, r } = await h.framework({ name: 'victim' });
      const offer = await r.takeOffer(agent.agentId);
      await s.accept(
        [offer.offerId],
        [
          {
            taskId: 'keep',
            agentId: agent.agentId,
            resources: { cpus: 0.1, mem: 32 },
            command: { value: 'sleep 300' },
          },
        ],
      );
      await r.update('keep', 'TASK_RUNNING');
      const key = { frameworkId: s.frameworkId, taskId: 'keep' };
      const before = await store().get<TaskRecord & Item>('tasks', key);
      const ledger = (await agentRow()).tasks;
      const latest = {
        state: 'TASK_FINISHED',
        source: 'SOURCE_EXECUTOR',
        timestamp: Date.now(),
        exitCode: 0,
      };
      await refused(other, { frameworkId: s.frameworkId, taskId: 'keep', latest }, 'keep', 'FORBIDDEN');
      expect(await store().get<TaskRecord & Item>('tasks', key)).toEqual(before);
      expect((await agentRow()).tasks).toEqual(ledger);

      // An unknown state is refused by the schema, changing nothing either.
      await refused(
        agent,
        { frameworkId: s.frameworkId, taskId: 'keep', latest: { ...latest, state: 'TASK_DONE' } },
        'keep',
        'INVALID',
      );
      expect(await store().get<TaskRecord & Item>('tasks', key)).toEqual(before);

      // Its own agent cannot take a terminal latest state back.
      await s.kill('keep');
      await r.terminal('keep');
      const killed = await store().get<TaskRecord & Item>('tasks', key);
      expect(killed?.state).toBe('TASK_KILLED');
      await refused(
        agent,
        { frameworkId: s.frameworkId, taskId: 'keep', latest: { ...latest, state: 'TASK_RUNNING' } },
        'keep',
        'INVALID',
      );
      expect((await store().get<TaskRecord & Item>('tasks', key))?.state).toBe('TASK_KILLED');
      expect(agent.runningTasks().map((t) => t.taskId)).not.toContain('keep');
      expect(r.updates.filter((u) => u.taskId === 'keep').map((u) => u.state)).not.toContain('TASK_FINISHED');
      expect(h.violations).toEqual([]);
      await s.teardown();
    });
  });
});
