/**
 * A call nudges only the allocator shard it concerns: with 8 shards, a DECLINE, an ACCEPT or an
 * offer's expiry on one agent asks that agent's shard for a cycle, not all eight, so a framework
 * that floods calls costs one shard a cycle each, not the whole allocator. Only what may change
 * offers anywhere (a SUBSCRIBE, a REVIVE) nudges every shard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../../lib/control/emit.ts';
import type { Bus } from '../../lib/ports/bus.ts';
import { type Harness, startHarness } from './harness.ts';

const SHARDS = 8;
const nudges: { shard: number; reason: string }[] = [];
const recording = (inner: Bus): Bus => ({
  async send(queueUrl, messages) {
    for (const m of messages) {
      const body = JSON.parse(m.body) as { type?: string; shard?: number; reason?: string };
      if (body.type === 'ALLOCATE') nudges.push({ shard: body.shard!, reason: body.reason! });
    }
    await inner.send(queueUrl, messages);
  },
});

describe('allocator nudges', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      agents: 1,
      control: { shards: SHARDS },
      controlPlane: { wrap: { bus: recording } },
    });
  });
  afterAll(async () => h?.stop());

  const shardsFor = (reason: RegExp) =>
    [...new Set(nudges.filter((n) => reason.test(n.reason)).map((n) => n.shard))].sort();

  it('SUBSCRIBE nudges every shard; DECLINE and ACCEPT only the shard of the agent they concern', async () => {
    const agentShard = shardOf(h.agents[0]!.agentId, SHARDS);
    const { s, r } = await h.framework({ name: 'nudger' });
    expect(shardsFor(/subscribed/)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

    const first = await r.takeOffer();
    await s.decline([first.offerId], 0);
    const second = await r.takeOffer(); // the declined resources, offered again by that shard's cycle
    expect(shardsFor(/^decline/)).toEqual([agentShard]);

    await s.accept(
      [second.offerId],
      [
        {
          taskId: 'one',
          agentId: second.agentId,
          resources: { cpus: 0.1, mem: 16 },
          command: { value: 'true' },
        },
      ],
    );
    await r.update('one', 'TASK_FINISHED');
    expect(shardsFor(/^accept/)).toEqual([agentShard]);
    expect(shardsFor(/^task one/)).toEqual([agentShard]);
    await s.teardown();
  });
});
