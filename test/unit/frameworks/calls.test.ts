import { describe, expect, it } from 'vitest';
import { Calls } from '../../../lib/frameworks/calls.ts';
import type { Bus, OutboundMessage } from '../../../lib/ports/bus.ts';

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
