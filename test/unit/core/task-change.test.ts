import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../../lib/core/model.ts';
import {
  type AgentReport,
  applyAgentReport,
  masterChange,
  SEEN_UUIDS,
  updateStateOf,
} from '../../../lib/core/task-change.ts';
import { isTerminal, TERMINAL_STATES } from '../../../lib/core/task-state.ts';
import { type TaskState, TaskStateSchema, type TaskStatus } from '../../../lib/protocol/index.ts';

type Row = Pick<TaskRecord, 'state' | 'seenUuids' | 'updateState' | 'latest' | 'status'>;

const status = (state: TaskState, uuid: string) =>
  ({
    taskId: 't1',
    frameworkId: 'f1',
    state,
    uuid,
    source: 'SOURCE_EXECUTOR',
    timestamp: 1,
  }) as TaskStatus & { uuid: string };

const latest = (state: TaskState, more: Partial<TaskStatus> = {}): TaskStatus => ({
  taskId: 't1',
  frameworkId: 'f1',
  state,
  source: 'SOURCE_EXECUTOR',
  timestamp: 2,
  ...more,
});

const row = (state: TaskState, seenUuids: string[] = [], more: Partial<Row> = {}): Row => ({
  state,
  seenUuids,
  status: status(state, seenUuids.at(-1) ?? 'none'),
  ...more,
});

/** The row after a change, as the store would patch it. */
const patched = (r: Row, set: object | undefined): Row => (set ? { ...r, ...set } : r);

describe("an agent's status update on its task row", () => {
  it('applies a step of the state machine and remembers its uuid', () => {
    const out = applyAgentReport(row('TASK_STAGING'), { update: status('TASK_RUNNING', 'u1') }, 9);
    expect(out).toMatchObject({
      update: 'apply',
      ended: false,
      set: { state: 'TASK_RUNNING', updateState: 'TASK_RUNNING', seenUuids: ['u1'], updatedAt: 9 },
    });
  });
  it('ends the task when it is terminal', () => {
    expect(applyAgentReport(row('TASK_RUNNING'), { update: status('TASK_FINISHED', 'u2') }, 9)).toMatchObject(
      { update: 'apply', ended: true, set: { state: 'TASK_FINISHED' } },
    );
  });
  it('changes nothing when redelivered', () => {
    expect(
      applyAgentReport(row('TASK_RUNNING', ['u1']), { update: status('TASK_RUNNING', 'u1') }, 9),
    ).toEqual({ update: 'again', latest: 'none', ended: false });
  });
  it('ignores a step the state machine does not allow', () => {
    expect(applyAgentReport(row('TASK_FINISHED'), { update: status('TASK_RUNNING', 'u3') }, 9)).toEqual({
      update: 'out-of-order',
      latest: 'none',
      ended: false,
    });
  });
  it(`remembers the last ${SEEN_UUIDS} uuids only`, () => {
    const seen = Array.from({ length: SEEN_UUIDS }, (_, i) => `old${i}`);
    const out = applyAgentReport(row('TASK_RUNNING', seen), { update: status('TASK_RUNNING', 'new') }, 9);
    expect(out.set?.seenUuids).toEqual([...seen.slice(1), 'new']);
  });
});

describe('the latest state an agent reports', () => {
  it('moves the row at once while the update it came with waits, and ends the task once', () => {
    const r0 = row('TASK_RUNNING', ['u1']);
    const finished = latest('TASK_FINISHED', { exitCode: 0, stdoutTail: 'done\n' });
    // The unacknowledged RUNNING is resent, carrying FINISHED as the latest state.
    const first = applyAgentReport(r0, { update: status('TASK_RUNNING', 'u1'), latest: finished }, 9);
    expect(first).toMatchObject({
      update: 'again',
      latest: 'apply',
      ended: true,
      set: { state: 'TASK_FINISHED', updateState: 'TASK_RUNNING', latest: finished },
    });
    expect(first.set?.status).toBeUndefined();
    const r1 = patched(r0, first.set);
    expect(updateStateOf(r1)).toBe('TASK_RUNNING');
    // The FINISHED update itself arrives later: applied and forwarded, nothing released again.
    const second = applyAgentReport(
      r1,
      { update: status('TASK_FINISHED', 'u2'), latest: latest('TASK_FINISHED') },
      10,
    );
    expect(second).toMatchObject({
      update: 'apply',
      latest: 'none',
      ended: false,
      set: { state: 'TASK_FINISHED', updateState: 'TASK_FINISHED', latest: null },
    });
    expect(second.set?.status?.state).toBe('TASK_FINISHED');
  });
  it('is recorded without an update (LATEST_STATE) and repeats change nothing', () => {
    const r0 = row('TASK_STARTING', ['u1']);
    const out = applyAgentReport(r0, { latest: latest('TASK_FAILED', { exitCode: 3 }) }, 9);
    expect(out).toMatchObject({
      update: 'none',
      latest: 'apply',
      ended: true,
      set: { state: 'TASK_FAILED' },
    });
    const again = applyAgentReport(patched(r0, out.set), { latest: latest('TASK_FAILED') }, 10);
    expect(again).toEqual({ update: 'none', latest: 'same', ended: false });
  });
  it('keeps the row ahead while earlier updates of the stream are applied', () => {
    const r0 = patched(row('TASK_STAGING'), {
      state: 'TASK_FINISHED',
      updateState: 'TASK_STAGING',
      latest: latest('TASK_FINISHED'),
    });
    const out = applyAgentReport(
      r0,
      { update: status('TASK_RUNNING', 'u1'), latest: latest('TASK_FINISHED') },
      9,
    );
    expect(out).toMatchObject({ update: 'apply', latest: 'same', ended: false });
    expect(out.set).toMatchObject({ state: 'TASK_FINISHED', updateState: 'TASK_RUNNING' });
    expect(out.set?.latest).toBeUndefined();
  });
  it('never takes a terminal state back, nor moves one terminal state to another', () => {
    for (const to of ['TASK_RUNNING', 'TASK_FAILED', 'TASK_STAGING'] as const) {
      const out = applyAgentReport(row('TASK_FINISHED', ['u1']), { latest: latest(to) }, 9);
      expect(out).toEqual({ update: 'none', latest: 'refused', ended: false });
    }
  });
  it('is refused when it does not follow from the update it came with', () => {
    const out = applyAgentReport(
      row('TASK_STAGING'),
      { update: status('TASK_RUNNING', 'u1'), latest: latest('TASK_STAGING') },
      9,
    );
    expect(out.latest).toBe('refused');
    // The update itself still applies.
    expect(out).toMatchObject({ update: 'apply', set: { state: 'TASK_RUNNING' } });
  });
  it('restarts from a status Meso decides itself', () => {
    const set = masterChange('TASK_UNREACHABLE', latest('TASK_LOST'), 5, { state: 'TASK_RUNNING' });
    expect(set).toMatchObject({ state: 'TASK_UNREACHABLE', updateState: 'TASK_UNREACHABLE', latest: null });
  });
  it('keeps a terminal latest state (and its details) under a status Meso decides itself', () => {
    const set = masterChange('TASK_UNREACHABLE', latest('TASK_LOST'), 5, { state: 'TASK_FINISHED' });
    expect(set).toMatchObject({ state: 'TASK_FINISHED', updateState: 'TASK_UNREACHABLE' });
    expect('latest' in set).toBe(false);
    // The agent comes back: its FINISHED update follows from UNREACHABLE and ends nothing twice.
    const r0 = patched(row('TASK_RUNNING', ['u1']), set);
    const out = applyAgentReport(r0, { update: status('TASK_FINISHED', 'u2') }, 6);
    expect(out).toMatchObject({
      update: 'apply',
      ended: false,
      set: { state: 'TASK_FINISHED', updateState: 'TASK_FINISHED' },
    });
  });
});

const PATHS: readonly TaskState[][] = [
  ['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED'],
  ['TASK_RUNNING', 'TASK_KILLING', 'TASK_KILLED'],
  ['TASK_STARTING', 'TASK_FAILED'],
  ['TASK_RUNNING', 'TASK_RUNNING', 'TASK_RUNNING', 'TASK_FAILED'],
  ['TASK_ERROR'],
];

describe('an agent delivering a task stream with latest states (property)', () => {
  it('forwards every update once in order, records the latest at once, and ends the task exactly once', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATHS),
        // Per step: 0 the task moves on, 1 the head is (re)sent, 2 the framework acknowledges.
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 40 }),
        (path, steps) => {
          let r: Row = row('TASK_STAGING');
          const updates = path.map((s, i) => status(s, `u${i}`));
          let known = 0; // updates the agent has queued
          let head = 0; // the stream's head (the first not acknowledged)
          let sentHead = false;
          const forwarded: string[] = [];
          let endings = 0;
          const apply = (report: AgentReport) => {
            const out = applyAgentReport(r, report, 1);
            expect(out.latest).not.toBe('refused');
            expect(out.update).not.toBe('out-of-order');
            if (out.update === 'apply') forwarded.push(report.update!.uuid);
            if (out.ended) endings++;
            if (isTerminal(r.state)) expect(out.set?.state ?? r.state).toBe(r.state);
            r = patched(r, out.set);
          };
          const sendHead = () => {
            if (head >= known) return;
            const tail = updates[known - 1]!;
            apply({ update: updates[head]!, latest: latest(tail.state) });
            sentHead = true;
          };
          // Drive the steps, then let the agent finish the stream with the framework acknowledging.
          const all = [...steps, ...Array.from({ length: path.length * 3 + 3 }, (_, i) => [0, 1, 2][i % 3]!)];
          for (const step of all) {
            if (step === 0 && known < updates.length) {
              known++;
              // The agent tells the registry at once when an earlier update waits.
              if (known - 1 > head) apply({ latest: latest(updates[known - 1]!.state) });
              else sendHead();
              // The registry's state is the agent's latest as soon as it is sent.
              if (head < known && (sentHead || known - 1 > head))
                expect(r.state).toBe(updates[known - 1]!.state);
            } else if (step === 1) sendHead();
            else if (step === 2 && sentHead && head < known) {
              head++;
              sentHead = false;
              sendHead();
            }
          }
          expect(forwarded).toEqual(updates.map((u) => u.uuid));
          expect(r.state).toBe(path.at(-1));
          expect(updateStateOf(r)).toBe(path.at(-1));
          expect(r.latest ?? null).toBeNull();
          expect(endings).toBe(1);
        },
      ),
    );
  });

  it('whatever a node sends, a terminal state never changes and a task ends at most once', () => {
    const state = fc.constantFrom(...TaskStateSchema.options);
    const report = fc.record({
      update: fc.option(fc.tuple(state, fc.integer({ min: 0, max: 5 })), { nil: undefined }),
      latest: fc.option(state, { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(report, { maxLength: 30 }), (reports) => {
        let r: Row = row('TASK_STAGING');
        let endings = 0;
        let ended: TaskState | undefined;
        for (const { update, latest: l } of reports) {
          const out = applyAgentReport(
            r,
            {
              ...(update ? { update: status(update[0], `u${update[1]}`) } : {}),
              ...(l ? { latest: latest(l) } : {}),
            },
            1,
          );
          if (out.ended) endings++;
          r = patched(r, out.set);
          if (ended) expect(r.state).toBe(ended);
          if (TERMINAL_STATES.has(r.state)) ended = r.state;
        }
        expect(endings).toBeLessThanOrEqual(1);
      }),
    );
  });
});
