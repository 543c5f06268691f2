import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentCallGroups, schedulerCallGroups } from '../../lib/control/groups.ts';
import {
  acknowledgeGroup,
  acknowledgementsGroup,
  MAX_GROUP_ID_LENGTH,
  statusUpdateGroup,
} from '../../lib/protocol/groups.ts';
import { callGroup } from '../../lib/sdk/call-sender.ts';

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);

describe('per-task message groups', () => {
  it('never pass SQS’s 128 characters, and the control plane accepts the group the sender picks', () => {
    fc.assert(
      fc.property(id, id, (owner, taskId) => {
        const ack = acknowledgeGroup(owner, taskId);
        const update = statusUpdateGroup(owner, taskId);
        expect(ack.length).toBeLessThanOrEqual(MAX_GROUP_ID_LENGTH);
        expect(update.length).toBeLessThanOrEqual(MAX_GROUP_ID_LENGTH);
        const call = {
          v: 1 as const,
          type: 'ACKNOWLEDGE' as const,
          frameworkId: owner,
          agentId: 'a',
          taskId,
          uuid: 'u',
        };
        expect(callGroup(owner, call)).toBe(ack);
        expect(schedulerCallGroups(call).groups).toContain(ack);
        const status = {
          taskId,
          frameworkId: 'f',
          agentId: owner,
          state: 'TASK_RUNNING' as const,
          source: 'SOURCE_AGENT' as const,
          timestamp: 1,
          uuid: 'u',
        };
        expect(agentCallGroups({ v: 1, type: 'STATUS_UPDATE', agentId: owner, status }).groups).toContain(
          update,
        );
      }),
    );
  });

  it('use the per-task group when it fits and the sender’s own group when it would not', () => {
    expect(acknowledgeGroup('fw', 't1')).toBe('fw:ack:t1');
    expect(statusUpdateGroup('ag', 't1')).toBe('ag:t1');
    const long = 'x'.repeat(128);
    expect(acknowledgeGroup('fw', long)).toBe('fw');
    expect(statusUpdateGroup('ag', long)).toBe('ag');
  });

  it('an ACKNOWLEDGE of several goes in <frameworkId>:ack, or the framework’s own group when that is too long; both accepted', () => {
    fc.assert(
      fc.property(id, (owner) => {
        const call = {
          v: 1 as const,
          type: 'ACKNOWLEDGE' as const,
          frameworkId: owner,
          acks: [{ agentId: 'a', taskId: 't', uuid: 'u' }],
        };
        const group = callGroup(owner, call);
        expect(group.length).toBeLessThanOrEqual(MAX_GROUP_ID_LENGTH);
        expect(group).toBe(acknowledgementsGroup(owner));
        expect(schedulerCallGroups(call).groups).toEqual(
          group === owner ? [owner, owner] : [owner, `${owner}:ack`],
        );
      }),
    );
    expect(acknowledgementsGroup('fw')).toBe('fw:ack');
    expect(acknowledgementsGroup('x'.repeat(125))).toBe('x'.repeat(125));
  });
});
