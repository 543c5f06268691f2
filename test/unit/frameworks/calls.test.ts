import { describe, expect, it } from 'vitest';
import { Calls } from '../../../lib/frameworks/calls.ts';
import { declineAll, type FrameworkDeps, type MetaStore } from '../../../lib/frameworks/host/framework.ts';
import type { Bus, OutboundMessage } from '../../../lib/ports/bus.ts';
import { LIMITS } from '../../../lib/protocol/limits.ts';

const sent: OutboundMessage[] = [];
const bus: Bus = {
  send: async (_url, messages) => {
    sent.push(...messages);
  },
};

async function handle(cause: string, add: (c: Calls) => void): Promise<string[]> {
  sent.length = 0;
  const calls = new Calls(bus, 'calls-url', 'fw', cause);
  add(calls);
  await calls.flush();
  return sent.map((m) => m.dedupId!);
}

describe('framework calls', () => {
  it('a redelivered message that decides the same re-sends the same deduplication ids', async () => {
    const decide = (c: Calls) => {
      c.add({ type: 'DECLINE', frameworkId: 'fw', offerIds: ['o1'] });
      c.add({ type: 'REVIVE', frameworkId: 'fw' });
    };
    expect(await handle('m1', decide)).toEqual(await handle('m1', decide));
  });

  it('one that decides differently is not taken by SQS for a copy of the first delivery', async () => {
    // First delivery declined o2; the state changed and the second one launches on it instead.
    const first = await handle('m1', (c) => c.add({ type: 'DECLINE', frameworkId: 'fw', offerIds: ['o2'] }));
    const second = await handle('m1', (c) =>
      c.add({
        type: 'ACCEPT',
        frameworkId: 'fw',
        offerIds: ['o2'],
        operations: [
          {
            type: 'LAUNCH',
            tasks: [
              {
                taskId: 't1',
                name: 't1',
                agentId: 'a1',
                resources: { cpus: 0.1, mem: 16 },
                command: { shell: true, value: 'true' },
              },
            ],
          },
        ],
      }),
    );
    expect(second[0]).not.toBe(first[0]);
    expect(second[0]!.length).toBeLessThanOrEqual(128);
  });
});

describe('built-in framework host calls', () => {
  it('declines every offer, in as many calls as the per-call limit needs', async () => {
    sent.length = 0;
    const deps = { config: { frameworkId: 'fw' } } as FrameworkDeps<MetaStore>;
    const calls = new Calls(bus, 'calls-url', 'fw', 'm1');
    const ids = Array.from({ length: 2 * LIMITS.offersPerCall + 5 }, (_, k) => `o${k}`);
    declineAll(deps, calls, ids, 5);
    await calls.flush();
    const declined = sent.map((m) => JSON.parse(m.body) as { type: string; offerIds: string[] });
    expect(declined.map((d) => d.offerIds.length)).toEqual([LIMITS.offersPerCall, LIMITS.offersPerCall, 5]);
    expect(declined.flatMap((d) => d.offerIds)).toEqual(ids);
    expect(declined.every((d) => d.type === 'DECLINE')).toBe(true);
  });
});
