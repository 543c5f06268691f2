/**
 * The cap on ids one identity may create, through the real handlers over the emulators: past it,
 * a SUBSCRIBE or REGISTER of a new id is answered TOO_MANY_IDS, counted, not retried, and stores
 * nothing; ids it already holds keep working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markGone } from '../../lib/control/liveness.ts';
import { rejectedCounterKey } from '../../lib/control/reject.ts';
import type { Item } from '../../lib/ports/store.ts';
import { registerCall, sendRawCall } from '../setup/raw-calls.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe('ids per identity', () => {
  let h: Harness;
  beforeAll(async () => {
    // The test's own client is one identity (its frameworks and the agent ids it registers
    // below); the harness's agents sign with keys of their own.
    h = await startHarness({ agents: 1, control: { maxIdsPerIdentity: 2 } });
  });
  afterAll(async () => h?.stop());

  const counter = async (queue: 'scheduler-calls' | 'agent-calls') =>
    Number(
      (await h.controlPlane.deps.store.get<Item>('meta', { key: rejectedCounterKey(queue, 'TOO_MANY_IDS') }))
        ?.count ?? 0,
    );

  it('a third framework id from one identity is refused; its first two keep working', async () => {
    const { s: first } = await h.framework({ name: 'one' });
    await h.framework({ name: 'two' });
    const n = await counter('scheduler-calls');
    const third = h.scheduler({ name: 'three' });
    await expect(third.subscribe({ timeoutMs: 20_000 })).rejects.toMatchObject({
      code: 'TOO_MANY_IDS',
      message: expect.stringMatching(/created 2 framework ids, the most one identity may \(2\)/),
    });
    expect(await counter('scheduler-calls')).toBe(n + 1);
    expect(
      await h.controlPlane.deps.store.get('frameworks', { frameworkId: third.frameworkId }),
    ).toBeUndefined();
    await third.close({ deleteQueue: true });
    // An id it holds subscribes again (a failover) without counting.
    const again = h.scheduler({ name: 'one', frameworkId: first.frameworkId });
    await again.subscribe({ timeoutMs: 20_000 });
    // A removed framework gives its id back: `meso run`, a framework per command, never runs out.
    await again.teardown();
    await eventually(
      async () =>
        (await h.controlPlane.deps.store.get<Item>('frameworks', { frameworkId: first.frameworkId }))
          ?.status === 'TORN_DOWN',
      'the teardown',
    );
    await h.framework({ name: 'four' });
  });

  it('a third agent id from one identity is refused and stores nothing, until a gone one gives its place back', async () => {
    const n = await counter('agent-calls');
    const register = (agentId: string, dedupId = `${agentId}-register`) =>
      sendRawCall(
        h.sqs,
        h.cluster.queues.agentCalls,
        registerCall(h.controlPlane.deps.config, agentId, { hostname: 'third' }),
        { dedupId },
      );
    // Two agent ids from the test's identity are taken…
    for (const id of ['first-agent', 'second-agent']) {
      await register(id);
      await eventually(
        async () => !!(await h.controlPlane.deps.store.get('agents', { agentId: id })),
        `${id}`,
      );
    }
    // …and a third is refused.
    await register('third-agent');
    await eventually(async () => (await counter('agent-calls')) === n + 1, 'the REGISTER to be refused');
    expect(await h.controlPlane.deps.store.get('agents', { agentId: 'third-agent' })).toBeUndefined();
    // A gone agent's id can never register again, so it gives its place back: a node that is
    // marked gone and reinstalled (with a new id) is not refused.
    expect(await markGone(h.controlPlane.deps, 'first-agent', { byOperator: true })).toBe('gone');
    await register('third-agent', 'third-agent-register-after-gone');
    await eventually(
      async () => !!(await h.controlPlane.deps.store.get('agents', { agentId: 'third-agent' })),
      'the new agent id to register once a gone one gave its place back',
    );
    expect(await counter('agent-calls')).toBe(n + 1);
  });
});
