import { describe, expect, it } from 'vitest';
import {
  type AcceptedOffer,
  type LaunchTask,
  type ValidateLaunchInput,
  validateLaunch,
} from '../../../lib/core/accept.ts';
import { EMPTY, parse } from '../../../lib/core/resources.ts';

const NOW = 50_000;

const offer = (offerId: string, resources: string, over: Partial<AcceptedOffer> = {}): AcceptedOffer => ({
  offerId,
  agentId: 'agent-1',
  frameworkId: 'fw-1',
  resources: parse(resources),
  expiresAt: NOW + 1,
  ...over,
});

const task = (taskId: string, resources: string, agentId = 'agent-1'): LaunchTask => ({
  taskId,
  agentId,
  resources: parse(resources),
});

const run = (over: Partial<ValidateLaunchInput>) =>
  validateLaunch({
    frameworkId: 'fw-1',
    now: NOW,
    offers: [offer('o1', 'cpus:4;mem:4096;ports:[31000-31009]')],
    tasks: [],
    existingTaskIds: new Set(),
    ...over,
  });

describe('validateLaunch: valid offers', () => {
  it('launches tasks that fit and returns the rest to the agent', () => {
    const d = run({
      offers: [offer('o1', 'cpus:2;mem:1024;ports:[31000-31009]'), offer('o2', 'cpus:2;mem:3072')],
      tasks: [task('t1', 'cpus:1;mem:512;ports:[31000-31000]'), task('t2', 'cpus:2.5;mem:2048')],
    });
    expect(d.rejected).toEqual([]);
    expect(d.launched).toEqual([
      { taskId: 't1', resources: parse('cpus:1;mem:512;ports:[31000-31000]') },
      { taskId: 't2', resources: parse('cpus:2.5;mem:2048') },
    ]);
    expect(d.remaining).toEqual(parse('cpus:0.5;mem:1536;ports:[31001-31009]'));
    expect(d.agentId).toBe('agent-1');
    expect(d.consumedOfferIds).toEqual(['o1', 'o2']);
  });

  it('with no tasks, gives everything back', () => {
    const d = run({});
    expect(d.launched).toEqual([]);
    expect(d.remaining).toEqual(parse('cpus:4;mem:4096;ports:[31000-31009]'));
    expect(d.consumedOfferIds).toEqual(['o1']);
  });

  it('rejects a task that needs more than is left after earlier tasks, saying what was asked and left', () => {
    const d = run({
      tasks: [task('t1', 'cpus:3;mem:1024'), task('t2', 'cpus:2;mem:1024'), task('t3', 'cpus:1;mem:1024')],
    });
    expect(d.launched.map((t) => t.taskId)).toEqual(['t1', 't3']);
    expect(d.rejected).toHaveLength(1);
    const r = d.rejected[0]!;
    expect(r).toMatchObject({ taskId: 't2', state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' });
    expect(r.message).toContain('asks for cpus:2;mem:1024');
    expect(r.message).toContain('only cpus:1;mem:3072;ports:[31000-31009] is left');
    expect(d.remaining).toEqual(parse('mem:2048;ports:[31000-31009]'));
  });

  it('rejects a task asking for ports that were not offered', () => {
    const d = run({ tasks: [task('t1', 'cpus:1;mem:1;ports:[31010-31010]')] });
    expect(d.rejected).toMatchObject([{ taskId: 't1', state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' }]);
    expect(d.remaining).toEqual(parse('cpus:4;mem:4096;ports:[31000-31009]'));
  });

  it('rejects a task with zero cpus and zero mem, but not one with either', () => {
    const d = run({ tasks: [task('t0', 'disk:0'), task('t1', 'cpus:1'), task('t2', 'mem:1')] });
    expect(d.rejected).toEqual([
      {
        taskId: 't0',
        state: 'TASK_ERROR',
        reason: 'REASON_TASK_INVALID',
        message: expect.stringMatching(/no cpus and no mem/),
      },
    ]);
    expect(d.launched.map((t) => t.taskId)).toEqual(['t1', 't2']);
  });

  it('rejects a task for another agent than the offers', () => {
    const d = run({ tasks: [task('t1', 'cpus:1', 'agent-2'), task('t2', 'cpus:1')] });
    expect(d.rejected).toEqual([
      {
        taskId: 't1',
        state: 'TASK_ERROR',
        reason: 'REASON_TASK_INVALID',
        message: expect.stringMatching(/agent-2.*agent-1/),
      },
    ]);
    expect(d.launched.map((t) => t.taskId)).toEqual(['t2']);
    expect(d.remaining.cpus).toBe(3000);
  });

  it('rejects duplicate task ids: already existing, or twice in this call', () => {
    const d = run({
      tasks: [task('old', 'cpus:1'), task('t1', 'cpus:1'), task('t1', 'cpus:1')],
      existingTaskIds: new Set(['old']),
    });
    expect(d.launched.map((t) => t.taskId)).toEqual(['t1']);
    expect(d.rejected).toEqual([
      {
        taskId: 'old',
        state: 'TASK_ERROR',
        reason: 'REASON_DUPLICATE_TASK_ID',
        message: expect.stringMatching(/already exists/),
      },
      {
        taskId: 't1',
        state: 'TASK_ERROR',
        reason: 'REASON_DUPLICATE_TASK_ID',
        message: expect.stringMatching(/twice/),
      },
    ]);
    // The duplicates took nothing.
    expect(d.remaining.cpus).toBe(3000);
  });
});

describe('validateLaunch: invalid offers drop every task', () => {
  const tasks = [task('t1', 'cpus:1'), task('t2', 'cpus:1')];
  const expectAllDropped = (d: ReturnType<typeof run>, cause: RegExp) => {
    expect(d.launched).toEqual([]);
    expect(d.rejected.map((r) => r.taskId)).toEqual(['t1', 't2']);
    for (const r of d.rejected) {
      expect(r.state).toBe('TASK_DROPPED');
      expect(r.reason).toBe('REASON_INVALID_OFFERS');
      expect(r.message).toMatch(cause);
    }
  };

  it('an unknown offer', () => {
    const d = run({ offers: [offer('o1', 'cpus:4'), { offerId: 'ghost', missing: 'unknown' }], tasks });
    expectAllDropped(d, /offer ghost is unknown/);
    // The caller's own valid offer is still consumed and returned whole.
    expect(d.consumedOfferIds).toEqual(['o1']);
    expect(d.remaining).toEqual(parse('cpus:4'));
    expect(d.agentId).toBe('agent-1');
  });

  it('a rescinded offer', () => {
    const d = run({ offers: [{ offerId: 'o9', missing: 'rescinded' }], tasks });
    expectAllDropped(d, /offer o9 was rescinded/);
    expect(d.consumedOfferIds).toEqual([]);
    expect(d.remaining).toEqual(EMPTY);
    expect(d.agentId).toBeUndefined();
  });

  it('an expired offer (expiresAt <= now)', () => {
    const d = run({ offers: [offer('o1', 'cpus:4', { expiresAt: NOW })], tasks });
    expectAllDropped(d, /offer o1 expired/);
    expect(d.consumedOfferIds).toEqual([]);
  });

  it("another framework's offer", () => {
    const d = run({ offers: [offer('o1', 'cpus:4'), offer('o2', 'cpus:4', { frameworkId: 'fw-2' })], tasks });
    expectAllDropped(d, /offer o2 was not made to framework fw-1/);
    // Never consume someone else's offer.
    expect(d.consumedOfferIds).toEqual(['o1']);
    expect(d.remaining).toEqual(parse('cpus:4'));
  });

  it('offers on different agents', () => {
    const d = run({ offers: [offer('o1', 'cpus:4'), offer('o2', 'cpus:4', { agentId: 'agent-2' })], tasks });
    expectAllDropped(d, /different agents \(agent-1, agent-2\)/);
    expect(d.consumedOfferIds).toEqual([]);
    expect(d.remaining).toEqual(EMPTY);
  });

  it('the same offer twice, or no offers at all', () => {
    expectAllDropped(run({ offers: [offer('o1', 'cpus:4'), offer('o1', 'cpus:4')], tasks }), /named twice/);
    expectAllDropped(run({ offers: [], tasks }), /names no offers/);
  });

  it('names every problem in one message', () => {
    const d = run({
      offers: [{ offerId: 'x', missing: 'unknown' }, offer('o1', 'cpus:4', { expiresAt: 0 })],
      tasks,
    });
    expect(d.rejected[0]!.message).toMatch(/offer x is unknown; offer o1 expired/);
  });
});
