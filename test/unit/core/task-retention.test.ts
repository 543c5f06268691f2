import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TASK_RETENTION_SECONDS,
  MIN_TASK_RETENTION_SECONDS,
  purgeAtFor,
  withPurgeAt,
} from '../../../lib/core/task-retention.ts';
import { TERMINAL_STATES } from '../../../lib/core/task-state.ts';
import { TaskStateSchema } from '../../../lib/protocol/index.ts';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0, 250);
const STATES = TaskStateSchema.options;

describe('task retention', () => {
  it('an ended task is purged the retention after it ended, in epoch seconds', () => {
    expect(purgeAtFor('TASK_FINISHED', NOW, DEFAULT_TASK_RETENTION_SECONDS)).toBe(
      Math.ceil(NOW / 1000) + 7 * 86_400,
    );
    expect(purgeAtFor('TASK_KILLED', NOW, 3600)).toBe(Math.ceil(NOW / 1000) + 3600);
  });

  it('a task that has not ended is never given one, whatever the state', () => {
    for (const state of STATES.filter((s) => !TERMINAL_STATES.has(s)))
      expect(purgeAtFor(state, NOW, DEFAULT_TASK_RETENTION_SECONDS)).toBeUndefined();
    expect(purgeAtFor('TASK_UNREACHABLE', NOW, 3600)).toBeUndefined();
    expect(purgeAtFor('TASK_UNKNOWN', NOW, 3600)).toBeUndefined();
  });

  it('is never before the task ended plus the retention (rounded up, never down)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STATES),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.integer({ min: MIN_TASK_RETENTION_SECONDS, max: 10 * 365 * 86_400 }),
        (state, now, retention) => {
          const at = purgeAtFor(state, now, retention);
          if (!TERMINAL_STATES.has(state)) return at === undefined;
          return (
            Number.isInteger(at) &&
            at! * 1000 >= now + retention * 1000 &&
            at! * 1000 < now + retention * 1000 + 1000
          );
        },
      ),
    );
  });

  it('a retention shorter than an hour (or not a number) is refused', () => {
    expect(() => purgeAtFor('TASK_FINISHED', NOW, 60)).toThrow(/at least 3600/);
    expect(() => purgeAtFor('TASK_FINISHED', NOW, Number.NaN)).toThrow(RangeError);
  });

  it('withPurgeAt adds purgeAt to a change that ends the task, and nothing to one that does not', () => {
    const status = {
      taskId: 't',
      frameworkId: 'f',
      state: 'TASK_FAILED' as const,
      source: 'SOURCE_AGENT' as const,
      timestamp: NOW,
    };
    const ended = withPurgeAt({ state: 'TASK_FAILED' as const, status, updatedAt: NOW }, 3600);
    expect(ended).toEqual({
      state: 'TASK_FAILED',
      status,
      updatedAt: NOW,
      purgeAt: Math.ceil(NOW / 1000) + 3600,
    });
    const running = withPurgeAt(
      {
        state: 'TASK_RUNNING' as const,
        status: { ...status, state: 'TASK_RUNNING' as const },
        updatedAt: NOW,
      },
      3600,
    );
    expect('purgeAt' in running).toBe(false);
  });
});
