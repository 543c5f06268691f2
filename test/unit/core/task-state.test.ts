import { describe, expect, it } from 'vitest';
import {
  canTransition,
  InvalidTransitionError,
  isRepeat,
  isTerminal,
  transition,
} from '../../../lib/core/task-state.ts';
import { TASK_STATES, type TaskState } from '../../../lib/protocol/common.ts';

const TERMINAL: TaskState[] = [
  'TASK_FINISHED',
  'TASK_FAILED',
  'TASK_KILLED',
  'TASK_ERROR',
  'TASK_LOST',
  'TASK_DROPPED',
  'TASK_GONE',
  'TASK_GONE_BY_OPERATOR',
];

/** The rules table, written out independently of the implementation. */
const ALLOWED: Record<TaskState, readonly TaskState[]> = {
  TASK_STAGING: [
    'TASK_STAGING',
    'TASK_STARTING',
    'TASK_RUNNING',
    'TASK_KILLING',
    'TASK_UNREACHABLE',
    ...TERMINAL,
  ],
  TASK_STARTING: ['TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_UNREACHABLE', ...TERMINAL],
  TASK_RUNNING: ['TASK_RUNNING', 'TASK_KILLING', 'TASK_UNREACHABLE', ...TERMINAL],
  TASK_KILLING: ['TASK_KILLING', 'TASK_UNREACHABLE', ...TERMINAL],
  TASK_UNREACHABLE: [
    'TASK_UNREACHABLE',
    'TASK_STARTING',
    'TASK_RUNNING',
    'TASK_KILLING',
    'TASK_UNKNOWN',
    ...TERMINAL,
  ],
  TASK_UNKNOWN: [
    'TASK_UNKNOWN',
    'TASK_STARTING',
    'TASK_RUNNING',
    'TASK_KILLING',
    'TASK_UNREACHABLE',
    ...TERMINAL,
  ],
  TASK_FINISHED: [],
  TASK_FAILED: [],
  TASK_KILLED: [],
  TASK_ERROR: [],
  TASK_LOST: [],
  TASK_DROPPED: [],
  TASK_GONE: [],
  TASK_GONE_BY_OPERATOR: [],
};

const pairs = TASK_STATES.flatMap((from) => TASK_STATES.map((to) => [from, to] as const));

describe('task state machine', () => {
  it('knows exactly the eight terminal states', () => {
    expect(TASK_STATES.filter(isTerminal).sort()).toEqual([...TERMINAL].sort());
    expect(isTerminal('TASK_UNREACHABLE')).toBe(false);
    expect(isTerminal('TASK_UNKNOWN')).toBe(false);
  });

  it.each(pairs)('%s -> %s follows the rules table', (from, to) => {
    const allowed = ALLOWED[from].includes(to);
    expect(canTransition(from, to)).toBe(allowed);
    if (allowed) {
      expect(transition(from, to)).toBe(to);
    } else {
      expect(() => transition(from, to)).toThrow(InvalidTransitionError);
    }
  });

  it('never lets anything leave a terminal state, not even to itself', () => {
    for (const from of TERMINAL) {
      for (const to of TASK_STATES) expect(canTransition(from, to)).toBe(false);
    }
  });

  it('never goes back to STAGING', () => {
    for (const from of TASK_STATES) {
      if (from !== 'TASK_STAGING') expect(canTransition(from, 'TASK_STAGING')).toBe(false);
    }
  });

  it('reports a repeated terminal update as a repeat, not as valid', () => {
    for (const s of TERMINAL) {
      expect(isRepeat(s, s)).toBe(true);
      expect(canTransition(s, s)).toBe(false);
    }
    expect(isRepeat('TASK_FINISHED', 'TASK_FAILED')).toBe(false);
    expect(isRepeat('TASK_RUNNING', 'TASK_RUNNING')).toBe(true);
    expect(canTransition('TASK_RUNNING', 'TASK_RUNNING')).toBe(true);
  });

  it('lets an unreachable task come back running or end', () => {
    expect(transition('TASK_UNREACHABLE', 'TASK_RUNNING')).toBe('TASK_RUNNING');
    expect(transition('TASK_UNREACHABLE', 'TASK_GONE')).toBe('TASK_GONE');
    expect(transition('TASK_UNREACHABLE', 'TASK_LOST')).toBe('TASK_LOST');
  });

  it('names both states in the error', () => {
    try {
      transition('TASK_FINISHED', 'TASK_RUNNING');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidTransitionError);
      const err = e as InvalidTransitionError;
      expect(err.from).toBe('TASK_FINISHED');
      expect(err.to).toBe('TASK_RUNNING');
      expect(err.message).toMatch(/TASK_FINISHED.*TASK_RUNNING/);
    }
    expect(() => transition('TASK_KILLING', 'TASK_RUNNING')).toThrow(/TASK_KILLING to TASK_RUNNING/);
  });
});
