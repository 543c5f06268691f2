/**
 * Reconciliation rules as Mesos has them: the unknown-task answers (Master::reconcile cases 3–6),
 * the mapping for frameworks that are not partition-aware, and the re-registration plan
 * (Master::__reregisterSlave / reconcileKnownSlave), all pure.
 */
import { describe, expect, it } from 'vitest';
import { planReregistration, revivedState, taskKey } from '../../../lib/control/reregistration.ts';
import { forFramework, reconciledStatus, unknownTaskStatus } from '../../../lib/control/statuses.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import type { FrameworkRecord, TaskRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';

const aware = { frameworkId: 'fw', partitionAware: true };
const plain = { frameworkId: 'fw', partitionAware: false };

describe('unknown tasks (explicit reconciliation, KILL of an unknown task)', () => {
  it('UnknownTask: agent unknown → TASK_UNKNOWN, or TASK_LOST for a framework that is not partition-aware', () => {
    expect(unknownTaskStatus(1, aware, 't', 'a9', undefined).state).toBe('TASK_UNKNOWN');
    expect(unknownTaskStatus(1, aware, 't', undefined, undefined).state).toBe('TASK_UNKNOWN');
    expect(unknownTaskStatus(1, plain, 't', 'a9', undefined).state).toBe('TASK_LOST');
  });

  it('agent registered → TASK_GONE; unreachable → TASK_UNREACHABLE with its time; gone → TASK_GONE_BY_OPERATOR', () => {
    expect(unknownTaskStatus(1, aware, 't', 'a', { status: 'ACTIVE' }).state).toBe('TASK_GONE');
    const u = unknownTaskStatus(1, aware, 't', 'a', { status: 'UNREACHABLE', unreachableAt: 42 });
    expect(u.state).toBe('TASK_UNREACHABLE');
    expect(u.unreachableTime).toBe(42);
    expect(unknownTaskStatus(1, aware, 't', 'a', { status: 'GONE' }).state).toBe('TASK_GONE_BY_OPERATOR');
    for (const status of ['ACTIVE', 'UNREACHABLE', 'GONE'] as const)
      expect(unknownTaskStatus(1, plain, 't', 'a', { status }).state).toBe('TASK_LOST');
  });

  it('answers carry REASON_RECONCILIATION, SOURCE_MASTER and no uuid', () => {
    const s = unknownTaskStatus(7, aware, 't', 'a', undefined);
    expect(s).toMatchObject({
      reason: 'REASON_RECONCILIATION',
      source: 'SOURCE_MASTER',
      timestamp: 7,
      agentId: 'a',
    });
    expect(s.uuid).toBeUndefined();
  });

  it('a known task is answered with the state its framework was last sent, without uuid or output tails', () => {
    const row = {
      status: {
        taskId: 't',
        frameworkId: 'fw',
        state: 'TASK_FINISHED',
        source: 'SOURCE_EXECUTOR',
        uuid: 'u',
        timestamp: 1,
        stdoutTail: 'x',
      },
    } as unknown as TaskRecord;
    const s = reconciledStatus(9, row);
    expect(s).toMatchObject({
      state: 'TASK_FINISHED',
      reason: 'REASON_RECONCILIATION',
      source: 'SOURCE_MASTER',
      timestamp: 9,
    });
    expect(s.uuid).toBeUndefined();
    expect(s.stdoutTail).toBeUndefined();
  });

  it('frameworks that are not partition-aware only ever see TASK_LOST for the partition states', () => {
    for (const s of [
      'TASK_UNREACHABLE',
      'TASK_GONE',
      'TASK_GONE_BY_OPERATOR',
      'TASK_UNKNOWN',
      'TASK_DROPPED',
    ] as const) {
      expect(forFramework(s, false)).toBe('TASK_LOST');
      expect(forFramework(s, true)).toBe(s);
    }
    expect(forFramework('TASK_RUNNING', false)).toBe('TASK_RUNNING');
  });
});

const row = (
  taskId: string,
  agentId: string,
  state: TaskRecord['state'],
  over: Partial<TaskRecord> = {},
): TaskRecord =>
  ({
    frameworkId: over.frameworkId ?? 'fw',
    taskId,
    agentId,
    resources: parse('cpus:1'),
    state,
    ...over,
  }) as TaskRecord;
const fwRec = (id: string, over: Partial<FrameworkRecord> = {}) =>
  ({ frameworkId: id, status: 'ACTIVE', partitionAware: true, ...over }) as FrameworkRecord;

describe('planReregistration', () => {
  const known = {
    running: { frameworkId: 'fw', resources: parse('cpus:1') },
    unreachable: { frameworkId: 'fw', resources: parse('cpus:1') },
    missing: { frameworkId: 'fw', resources: parse('cpus:1') },
    staging: { frameworkId: 'fw', resources: parse('cpus:1') },
    ended: { frameworkId: 'fw', resources: parse('cpus:1') },
  };
  const rows = new Map<string, TaskRecord>([
    [taskKey('fw', 'running'), row('running', 'a', 'TASK_RUNNING')],
    [taskKey('fw', 'unreachable'), row('unreachable', 'a', 'TASK_UNREACHABLE')],
    [taskKey('fw', 'missing'), row('missing', 'a', 'TASK_RUNNING')],
    [taskKey('fw', 'staging'), row('staging', 'a', 'TASK_STAGING')],
    [taskKey('fw', 'ended'), row('ended', 'a', 'TASK_FINISHED')],
    [taskKey('fw', 'elsewhere'), row('elsewhere', 'b', 'TASK_RUNNING')],
    [taskKey('fw', 'killed'), row('killed', 'a', 'TASK_UNREACHABLE', { killRequested: true })],
    [taskKey('old', 'orphan'), row('orphan', 'a', 'TASK_RUNNING', { frameworkId: 'old' })],
  ]);
  const frameworks = new Map([
    ['fw', fwRec('fw')],
    ['old', fwRec('old', { status: 'TORN_DOWN' })],
  ]);
  const plan = planReregistration({
    agentId: 'a',
    reported: [
      { frameworkId: 'fw', taskId: 'running', state: 'TASK_RUNNING' },
      { frameworkId: 'fw', taskId: 'unreachable', state: 'TASK_RUNNING' },
      { frameworkId: 'fw', taskId: 'stranger' },
      { frameworkId: 'fw', taskId: 'elsewhere' },
      { frameworkId: 'fw', taskId: 'ended' },
      { frameworkId: 'fw', taskId: 'killed', state: 'TASK_RUNNING' },
      { frameworkId: 'old', taskId: 'orphan' },
    ],
    known: { ...known, killed: { frameworkId: 'fw', resources: parse('cpus:1') } },
    rows,
    frameworks,
  });

  it('ReregisterSlavePartitionAware: an unreachable task it still runs comes back RUNNING', () => {
    expect(plan.revive).toContainEqual({ frameworkId: 'fw', taskId: 'unreachable', state: 'TASK_RUNNING' });
    expect(plan.revive.map((r) => r.taskId)).not.toContain('running');
  });

  it('tasks that must not run are killed: unknown, on another agent, ended, framework removed, killed while away', () => {
    const kills = Object.fromEntries(plan.kill.map((k) => [k.taskId, k.why]));
    expect(Object.keys(kills).sort()).toEqual(['elsewhere', 'ended', 'killed', 'orphan', 'stranger']);
    expect(kills.orphan).toMatch(/framework was removed/);
    expect(kills.killed).toMatch(/killed while its agent was away/);
  });

  it('ReconcileLostTask / ReconcileDroppedTask: tasks it did not list are asked about, not declared lost (ReconcileRace)', () => {
    expect(plan.reconcile).toEqual([
      { frameworkId: 'fw', taskId: 'missing', ifUnknown: 'TASK_GONE' },
      { frameworkId: 'fw', taskId: 'staging', ifUnknown: 'TASK_DROPPED' },
    ]);
    const lost = planReregistration({
      agentId: 'a',
      reported: [],
      known: { staging: known.staging },
      rows,
      frameworks: new Map([['fw', fwRec('fw', { partitionAware: false })]]),
    });
    expect(lost.reconcile).toEqual([{ frameworkId: 'fw', taskId: 'staging', ifUnknown: 'TASK_LOST' }]);
  });

  it('the accounting keeps what may run and drops what has ended, by framework and task id', () => {
    // `known` is a ledger written before it was keyed by framework (bare task ids): kept entries
    // move to their ledgerKey.
    expect(Object.keys(plan.tasks).sort()).toEqual(
      ['killed', 'missing', 'running', 'staging', 'unreachable'].map((id) => ledgerKey('fw', id)),
    );
    expect(plan.tasks[ledgerKey('fw', 'missing')]).toEqual({
      frameworkId: 'fw',
      taskId: 'missing',
      resources: parse('cpus:1'),
    });
  });

  it("two frameworks running a task with the same id are both kept, and a bare key is only its own framework's", () => {
    const rows = new Map<string, TaskRecord>([
      [taskKey('fa', 'web'), row('web', 'a', 'TASK_RUNNING', { frameworkId: 'fa' })],
      [taskKey('fb', 'web'), row('web', 'a', 'TASK_RUNNING', { frameworkId: 'fb' })],
    ]);
    const frameworks = new Map([
      ['fa', fwRec('fa')],
      ['fb', fwRec('fb')],
    ]);
    const both = planReregistration({
      agentId: 'a',
      reported: [
        { frameworkId: 'fa', taskId: 'web', state: 'TASK_RUNNING' },
        { frameworkId: 'fb', taskId: 'web', state: 'TASK_RUNNING' },
      ],
      known: {
        [ledgerKey('fa', 'web')]: { frameworkId: 'fa', taskId: 'web', resources: parse('cpus:1') },
        [ledgerKey('fb', 'web')]: { frameworkId: 'fb', taskId: 'web', resources: parse('cpus:2') },
      },
      rows,
      frameworks,
    });
    expect(both.tasks).toEqual({
      [ledgerKey('fa', 'web')]: { frameworkId: 'fa', taskId: 'web', resources: parse('cpus:1') },
      [ledgerKey('fb', 'web')]: { frameworkId: 'fb', taskId: 'web', resources: parse('cpus:2') },
    });
    expect(both.kill).toEqual([]);
    // An old ledger's bare key `web` is fa's: fb's report of `web` does not take it over.
    const legacy = planReregistration({
      agentId: 'a',
      reported: [{ frameworkId: 'fb', taskId: 'web', state: 'TASK_RUNNING' }],
      known: { web: { frameworkId: 'fa', resources: parse('cpus:1') } },
      rows,
      frameworks,
    });
    expect(legacy.tasks).toEqual({
      [ledgerKey('fa', 'web')]: { frameworkId: 'fa', taskId: 'web', resources: parse('cpus:1') },
    });
    expect(legacy.reconcile).toEqual([{ frameworkId: 'fa', taskId: 'web', ifUnknown: 'TASK_GONE' }]);
  });

  it('a task never goes back to STAGING', () => {
    expect(revivedState('TASK_STAGING')).toBe('TASK_STARTING');
    expect(revivedState(undefined)).toBe('TASK_RUNNING');
    expect(revivedState('TASK_KILLING')).toBe('TASK_KILLING');
  });
});
