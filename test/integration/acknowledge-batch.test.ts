/**
 * Several acknowledgements in one ACKNOWLEDGE, end to end: the SDK puts the acknowledgements made
 * together into one call, the registry forwards them to each agent as one command, and each
 * agent's tasks move on to their next update.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentCommand, TaskStatus } from '../../lib/protocol/index.ts';
import { type Harness, launchWhatFits, Recorder, startHarness } from './harness.ts';

describe('acknowledgements several to a call', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 2 });
  });
  afterAll(async () => h?.stop());

  it('reach every agent as one command carrying its tasks’ acknowledgements, and the tasks go on', async () => {
    const acksSeen = new Map<string, AgentCommand[]>();
    for (const a of h.agents) {
      a.on('command', (cmd: AgentCommand) => {
        if (cmd.type === 'ACKNOWLEDGE') acksSeen.set(a.agentId, [...(acksSeen.get(a.agentId) ?? []), cmd]);
      });
    }
    const s = h.scheduler({ name: 'acks', autoAcknowledge: false, acknowledgeWindowMs: 50 });
    const r = new Recorder(s);
    const ids = ['k0', 'k1', 'k2', 'k3'];
    launchWhatFits(s, [...ids], { max: 2, cpus: 0.1, mem: 16 });
    await s.subscribe();
    // Nothing to fetch: each task's first update is RUNNING.
    const running = await Promise.all(ids.map((id) => r.update(id, 'TASK_RUNNING')));
    // Each agent holds its task's next update (FINISHED) until this one is acknowledged.
    await Promise.all(running.map((st) => s.acknowledge(st)));
    await Promise.all(ids.map((id) => r.update(id, 'TASK_FINISHED')));

    const byAgent = new Map<string, TaskStatus[]>();
    for (const st of running) byAgent.set(st.agentId!, [...(byAgent.get(st.agentId!) ?? []), st]);
    for (const [agentId, statuses] of byAgent) {
      // The first: more may follow, re-acknowledging an update the agent resent meanwhile.
      const [cmd] = acksSeen.get(agentId) ?? [];
      expect(cmd?.type === 'ACKNOWLEDGE' && cmd.acks?.map((a) => a.uuid).sort()).toEqual(
        statuses.map((st) => st.uuid).sort(),
      );
    }
    expect(r.errors).toEqual([]);
    expect(h.violations).toEqual([]);
  });
});
