/**
 * Acknowledgements on their way to the agent. The agent resends an update only when no
 * ACKNOWLEDGE reached its update manager (lost, or taken by a process that died, or read before a
 * restarted agent restored the update); the next ACKNOWLEDGE of that update must then reach it.
 * FIFO queues drop a message whose deduplication id was used in the last five minutes, so an id
 * made of the update's uuid alone would drop every later ACKNOWLEDGE for that long, while the agent
 * keeps resending (what the chaos run found under load: updates still awaiting acknowledgement
 * after the settle). The ids name the inbound call instead: its redelivery is dropped, a new call
 * goes through.
 */
import { describe, expect, it } from 'vitest';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import { agentQueue, putAgent, putFramework, putTask, record, testControl } from './helpers.ts';

const FW = 'fw-principal';
const AGENT = 'agent-principal';
const AGENT_SOURCE = 'arn:aws:sqs:us-east-1:000:meso-agent-calls.fifo';

async function setup() {
  const t = testControl();
  await putFramework(t, 'fw');
  await putAgent(t, 'a1');
  await putTask(t, 'fw', 't1', 'a1');
  return t;
}

const ackCall = (messageId: string) =>
  record(
    { v: 1, type: 'ACKNOWLEDGE', frameworkId: 'fw', agentId: 'a1', taskId: 't1', uuid: 'u1' },
    FW,
    undefined,
    messageId,
  );

describe('ACKNOWLEDGE to the agent', () => {
  it('a second ACKNOWLEDGE of the same update (answering a resend) reaches the agent; a redelivered call does not twice', async () => {
    const t = await setup();
    await handleSchedulerCall(t.deps, ackCall('call-1'));
    await handleSchedulerCall(t.deps, ackCall('call-1')); // SQS redelivers the same call
    await handleSchedulerCall(t.deps, ackCall('call-2')); // the framework answers the agent's resend
    const reaching = t.bus.deduplicated(agentQueue('a1')).map((s) => s.body);
    expect(reaching).toEqual([
      { v: 1, type: 'ACKNOWLEDGE', frameworkId: 'fw', taskId: 't1', uuid: 'u1' },
      { v: 1, type: 'ACKNOWLEDGE', frameworkId: 'fw', taskId: 't1', uuid: 'u1' },
    ]);
  });

  it('Meso’s own ACKNOWLEDGE (a removed framework’s update) answers each resend too', async () => {
    // Ids of its own: routes are cached per process, and the first test's framework was ACTIVE.
    const t = testControl();
    await putFramework(t, 'fw-gone', { status: 'TORN_DOWN' });
    await putAgent(t, 'a-gone');
    await putTask(t, 'fw-gone', 't-gone', 'a-gone');
    const resend = (messageId: string) =>
      handleAgentCall(
        t.deps,
        record(
          {
            v: 1,
            type: 'STATUS_UPDATE',
            agentId: 'a-gone',
            status: {
              taskId: 't-gone',
              frameworkId: 'fw-gone',
              agentId: 'a-gone',
              state: 'TASK_KILLED',
              source: 'SOURCE_EXECUTOR',
              uuid: 'u1',
              timestamp: t.now,
            },
          },
          AGENT,
          AGENT_SOURCE,
          messageId,
        ),
      );
    await resend('update-1');
    await resend('update-2');
    const acks = t.bus.deduplicated(agentQueue('a-gone')).filter((s) => s.body.type === 'ACKNOWLEDGE');
    expect(acks).toHaveLength(2);
  });
});
