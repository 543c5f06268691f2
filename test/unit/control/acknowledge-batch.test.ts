/**
 * An ACKNOWLEDGE carrying several acknowledgements (`acks`): what passes reaches each agent as one
 * ACKNOWLEDGE; what names a task the framework does not have on the agent named (another
 * framework's, another agent's, an unknown one) is forwarded to nobody and answered with one
 * ERROR; a list past the bound changes nothing. Ids are this file's own: routes are cached per
 * process.
 */
import { describe, expect, it } from 'vitest';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import { LIMITS } from '../../../lib/protocol/limits.ts';
import { agentQueue, fwQueue, putAgent, putFramework, putTask, record, testControl } from './helpers.ts';

const FW_PRINCIPAL = 'fw-principal';

async function setup() {
  const t = testControl();
  await putFramework(t, 'bfw');
  await putFramework(t, 'bvictim', { principal: 'victim-principal' });
  await putAgent(t, 'ba1');
  await putAgent(t, 'ba2');
  await putAgent(t, 'bvictim-agent');
  await putTask(t, 'bfw', 'bt1', 'ba1');
  await putTask(t, 'bfw', 'bt2', 'ba1');
  await putTask(t, 'bfw', 'bt3', 'ba2');
  await putTask(t, 'bvictim', 'secret', 'bvictim-agent');
  return t;
}

const acks = (
  entries: { agentId: string; taskId: string; uuid: string }[],
  messageId = `m${Math.random()}`,
  groupId = 'bfw:ack',
) => ({
  ...record(
    { v: 1, type: 'ACKNOWLEDGE', frameworkId: 'bfw', acks: entries },
    FW_PRINCIPAL,
    undefined,
    messageId,
  ),
  groupId,
});

describe('ACKNOWLEDGE with several acknowledgements', () => {
  it('reaches each agent as one ACKNOWLEDGE carrying its acknowledgements, once per call', async () => {
    const t = await setup();
    const call = acks(
      [
        { agentId: 'ba1', taskId: 'bt1', uuid: 'u1' },
        { agentId: 'ba2', taskId: 'bt3', uuid: 'u3' },
        { agentId: 'ba1', taskId: 'bt2', uuid: 'u2' },
      ],
      'call-1',
    );
    await handleSchedulerCall(t.deps, call);
    await handleSchedulerCall(t.deps, call); // SQS redelivers it
    const a1 = t.bus.deduplicated(agentQueue('ba1'));
    expect(a1.map((s) => s.body)).toEqual([
      {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: 'bfw',
        acks: [
          { taskId: 'bt1', uuid: 'u1' },
          { taskId: 'bt2', uuid: 'u2' },
        ],
      },
    ]);
    expect(a1[0]?.message.groupId).toBe('ack');
    expect(t.bus.deduplicated(agentQueue('ba2')).map((s) => s.body)).toEqual([
      { v: 1, type: 'ACKNOWLEDGE', frameworkId: 'bfw', acks: [{ taskId: 'bt3', uuid: 'u3' }] },
    ]);
    expect(t.bus.to(fwQueue('bfw'))).toEqual([]);
  });

  it('forwards nothing for another framework’s task, a task on another agent, an unknown agent; repeats go once; one ERROR names the refused', async () => {
    const t = await setup();
    await handleSchedulerCall(
      t.deps,
      acks([
        { agentId: 'ba1', taskId: 'bt1', uuid: 'u1' },
        { agentId: 'ba1', taskId: 'bt1', uuid: 'u1' }, // a repeat
        { agentId: 'bvictim-agent', taskId: 'secret', uuid: 'x1' }, // another framework's task
        { agentId: 'ba2', taskId: 'bt1', uuid: 'x2' }, // its task, on another agent
        { agentId: 'bvictim-agent', taskId: 'bt3', uuid: 'x3' }, // aimed at the victim's agent
        { agentId: 'nowhere', taskId: 'bt2', uuid: 'x4' },
      ]),
    );
    expect(t.bus.to(agentQueue('bvictim-agent'))).toEqual([]);
    expect(t.bus.to(agentQueue('ba2'))).toEqual([]);
    expect(t.bus.commands(agentQueue('ba1'))).toEqual([
      { v: 1, type: 'ACKNOWLEDGE', frameworkId: 'bfw', acks: [{ taskId: 'bt1', uuid: 'u1' }] },
    ]);
    const errors = t.bus.events(fwQueue('bfw'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ type: 'ERROR', code: 'UNKNOWN_TASK', call: 'ACKNOWLEDGE' });
    const message = errors[0]?.type === 'ERROR' ? errors[0].message : '';
    expect(message).toMatch(/^4 of 6 acknowledgements not forwarded/);
    expect(message).toContain('task secret of framework bfw is unknown');
    expect(message).toContain('task bt1 is not on agent ba2');
    expect(message).toContain('task bt3 is not on agent bvictim-agent');
    expect(message).toContain('task bt2 is not on agent nowhere');
    expect(t.counters.get('RefusedAcknowledgements')).toBe(4);
    expect(t.counters.get('RejectedCalls{queue=scheduler-calls,code=UNKNOWN_TASK}')).toBe(1);
  });

  it('refuses, whole and with nothing forwarded, a list past the bound, both forms at once, an empty list', async () => {
    const t = await setup();
    const many = Array.from({ length: LIMITS.acknowledgements + 1 }, (_, i) => ({
      agentId: 'ba1',
      taskId: 'bt1',
      uuid: `u${i}`,
    }));
    await handleSchedulerCall(t.deps, acks(many));
    const both = {
      ...record(
        {
          v: 1,
          type: 'ACKNOWLEDGE',
          frameworkId: 'bfw',
          agentId: 'ba1',
          taskId: 'bt1',
          uuid: 'u1',
          acks: [{ agentId: 'ba1', taskId: 'bt1', uuid: 'u1' }],
        },
        FW_PRINCIPAL,
      ),
      groupId: 'bfw:ack',
    };
    await handleSchedulerCall(t.deps, both);
    await handleSchedulerCall(t.deps, acks([]));
    const partial = record({ v: 1, type: 'ACKNOWLEDGE', frameworkId: 'bfw', taskId: 'bt1' }, FW_PRINCIPAL);
    await handleSchedulerCall(t.deps, partial);
    expect(t.bus.to(agentQueue('ba1'))).toEqual([]);
    const errors = t.bus.events(fwQueue('bfw'));
    expect(errors.map((e) => (e.type === 'ERROR' ? e.code : e.type))).toEqual([
      'INVALID',
      'INVALID',
      'INVALID',
      'INVALID',
    ]);
    expect(errors.map((e) => (e.type === 'ERROR' ? e.message : ''))).toEqual([
      expect.stringContaining(`${LIMITS.acknowledgements}`),
      expect.stringContaining('either acks or agentId, taskId and uuid, not both'),
      expect.stringContaining('acks'),
      expect.stringContaining('agentId, taskId and uuid are required (or acks)'),
    ]);
  });

  it('travels in the framework’s acknowledgement group or its own; another group is WRONG_GROUP', async () => {
    const t = await setup();
    const one = [{ agentId: 'ba1', taskId: 'bt1', uuid: 'u1' }];
    await handleSchedulerCall(t.deps, acks(one, 'g1', 'bfw:ack'));
    await handleSchedulerCall(t.deps, acks(one, 'g2', 'bfw'));
    await handleSchedulerCall(t.deps, acks(one, 'g3', 'bfw:ack:bt1'));
    await handleSchedulerCall(t.deps, acks(one, 'g4', 'bvictim:ack'));
    expect(t.bus.commands(agentQueue('ba1'))).toHaveLength(2);
    expect(t.counters.get('RejectedCalls{queue=scheduler-calls,code=WRONG_GROUP}')).toBe(2);
  });
});
