/** Events to a framework's queue that is gone: expected once the framework left, a warning before. */
import { expect, it } from 'vitest';
import type { Logger } from '../../../lib/control/deps.ts';
import { sendToFramework } from '../../../lib/control/emit.ts';
import { formatControlLine } from '../../../lib/local/dev-log.ts';
import { QueueGoneError } from '../../../lib/ports/bus.ts';
import type { SchedulerEvent } from '../../../lib/protocol/index.ts';
import { fwQueue, putFramework, testControl } from './helpers.ts';

function withGoneQueue() {
  const t = testControl();
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
  t.bus.send = async () => {
    throw new QueueGoneError('gone');
  };
  return { t, lines, deps: { ...t.deps, log } };
}

const offers = (frameworkId: string): { event: SchedulerEvent; dedupId: string }[] => [
  {
    event: {
      v: 1,
      type: 'OFFERS',
      offers: [
        {
          offerId: 'o1',
          frameworkId,
          agentId: 'a1',
          hostname: 'h',
          resources: { cpus: 1 },
          attributes: {},
          expiresAt: 0,
        },
      ],
    },
    dedupId: 'offers.o1',
  },
];

it('offers to the deleted queue of a torn-down framework are dropped quietly (info), and counted', async () => {
  const { t, lines, deps } = withGoneQueue();
  await putFramework(t, 'left', { status: 'TORN_DOWN' });
  await sendToFramework(deps, fwQueue('left'), offers('left'));
  expect(lines).toEqual(['info events to a framework that left dropped']);
  expect(t.counters.get('EventsToGoneQueue')).toBe(1);
});

it('the gone queue of a framework still registered is a warning', async () => {
  const { t, lines, deps } = withGoneQueue();
  await putFramework(t, 'here');
  await sendToFramework(deps, fwQueue('here'), offers('here'));
  expect(lines).toEqual(['warn framework queue is gone; events dropped']);
});

it('control-plane lines of the local stack carry a timestamp and a level', () => {
  expect(formatControlLine('WARN', 'x happened', { n: 1 }, new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe(
    '[control] 2026-01-02T03:04:05.006Z WARN  x happened {"n":1}',
  );
  expect(formatControlLine('INFO', 'cycle')).toMatch(/^\[control\] \d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}cycle$/);
});
