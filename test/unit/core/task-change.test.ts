import { describe, expect, it } from 'vitest';
import { applyAgentStatus, SEEN_UUIDS } from '../../../lib/core/task-change.ts';
import type { TaskStatus } from '../../../lib/protocol/index.ts';

const status = (state: TaskStatus['state'], uuid: string) =>
  ({
    taskId: 't1',
    frameworkId: 'f1',
    state,
    uuid,
    source: 'SOURCE_EXECUTOR',
    timestamp: 1,
  }) as TaskStatus & {
    uuid: string;
  };

describe("an agent's status update on its task row", () => {
  it('applies a step of the state machine and remembers its uuid', () => {
    const out = applyAgentStatus({ state: 'TASK_STAGING', seenUuids: [] }, status('TASK_RUNNING', 'u1'), 9);
    expect(out).toMatchObject({
      kind: 'apply',
      terminal: false,
      set: { state: 'TASK_RUNNING', seenUuids: ['u1'], updatedAt: 9 },
    });
  });
  it('is terminal when the task ends', () => {
    expect(
      applyAgentStatus({ state: 'TASK_RUNNING', seenUuids: [] }, status('TASK_FINISHED', 'u2'), 9),
    ).toMatchObject({
      kind: 'apply',
      terminal: true,
    });
  });
  it('changes nothing when redelivered', () => {
    expect(
      applyAgentStatus({ state: 'TASK_RUNNING', seenUuids: ['u1'] }, status('TASK_RUNNING', 'u1'), 9),
    ).toEqual({
      kind: 'again',
    });
  });
  it('ignores a step the state machine does not allow', () => {
    expect(
      applyAgentStatus({ state: 'TASK_FINISHED', seenUuids: [] }, status('TASK_RUNNING', 'u3'), 9),
    ).toEqual({
      kind: 'out-of-order',
    });
  });
  it(`remembers the last ${SEEN_UUIDS} uuids only`, () => {
    const seen = Array.from({ length: SEEN_UUIDS }, (_, i) => `old${i}`);
    const out = applyAgentStatus(
      { state: 'TASK_RUNNING', seenUuids: seen },
      status('TASK_RUNNING', 'new'),
      9,
    );
    expect(out.kind === 'apply' && out.set.seenUuids).toEqual([...seen.slice(1), 'new']);
  });
});
