import { describe, expect, it } from 'vitest';
import { type PlanAcceptInput, planAccept } from '../../../lib/core/accept-plan.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import type { AgentRecord, TaskRecord } from '../../../lib/core/model.ts';
import { format, parse } from '../../../lib/core/resources.ts';

const NOW = 1_000;

const agent = (offers: AgentRecord['offers']): AgentRecord => ({
  agentId: 'a1',
  principal: 'p',
  hostname: 'h',
  queueUrl: 'q',
  total: parse('cpus:8;mem:8192'),
  attributes: {},
  status: 'ACTIVE',
  offers,
  tasks: {},
  registeredAt: 0,
  lastSeenAt: 0,
  shard: 0,
  version: 3,
});

const o1 = {
  offerId: 'o1@a1',
  frameworkId: 'f1',
  role: '*',
  resources: parse('cpus:4;mem:4096'),
  expiresAt: NOW + 1,
};

const input = (over: Partial<PlanAcceptInput> = {}): PlanAcceptInput => ({
  frameworkId: 'f1',
  agent: agent({ 'o1@a1': o1 }),
  offerIds: ['o1@a1'],
  operations: [
    { type: 'LAUNCH', tasks: [{ taskId: 't1', agentId: 'a1', resources: parse('cpus:1;mem:1024') }] },
  ],
  existing: [undefined],
  now: NOW,
  refuseSeconds: 5,
  ...over,
});

describe('planAccept', () => {
  it("spends the offer on the agent's ledger and refuses the rest to the framework for a while", () => {
    const plan = planAccept(input());
    if (plan.kind !== 'decided') throw new Error(plan.kind);
    expect(plan.launched.map((l) => l.taskId)).toEqual(['t1']);
    expect(plan.ledger?.offers).toEqual({});
    expect(Object.keys(plan.ledger?.tasks ?? {})).toEqual([ledgerKey('f1', 't1')]);
    expect(plan.offerId).toBe('o1@a1');
    expect(plan.filter && { ...plan.filter, resources: format(plan.filter.resources) }).toEqual({
      agentId: 'a1',
      resources: format(parse('cpus:3;mem:3072')),
      seconds: 5,
    });
  });

  it('sets no filter when refuse_seconds is 0', () => {
    const plan = planAccept(input({ refuseSeconds: 0 }));
    expect(plan.kind === 'decided' && plan.filter).toBeUndefined();
  });

  it('writes nothing to the agent when no offer is consumed, and refuses every task', () => {
    const plan = planAccept(input({ offerIds: ['gone@a1'] }));
    if (plan.kind !== 'decided') throw new Error(plan.kind);
    expect(plan.ledger).toBeUndefined();
    expect(plan.filter).toBeUndefined();
    expect(plan.rejected).toMatchObject([{ taskId: 't1', agentId: 'a1', state: 'TASK_DROPPED' }]);
  });

  it('recognises a redelivered ACCEPT by its spent offers and persisted tasks', () => {
    const row = { frameworkId: 'f1', taskId: 't1', offerId: 'o1@a1' } as TaskRecord;
    const plan = planAccept(input({ agent: agent({}), existing: [row] }));
    expect(plan).toEqual({ kind: 'again', tasks: [row] });
  });
});
