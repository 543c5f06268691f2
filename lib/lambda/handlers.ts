/**
 * The control plane's handlers, built over injected dependencies. Lambda entries in `functions/`
 * build them from the environment; the local stack builds them from its own config — the same
 * code runs in both.
 */

import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { handleAgentCall } from '../control/agent-calls.ts';
import { AgentView } from '../control/agent-view.ts';
import { runAllocationCycle } from '../control/allocation.ts';
import { AllocationPacer } from '../control/allocation-interval.ts';
import type { ControlDeps } from '../control/deps.ts';
import { CycleHistory, cycleEntry, recordStats } from '../control/operator-stats.ts';
import { OwnWrites } from '../control/own-writes.ts';
import { resilientStore } from '../control/retry.ts';
import { handleSchedulerCall } from '../control/scheduler-calls.ts';
import { SettingsView } from '../control/settings-view.ts';
import { runSweep } from '../control/sweep.ts';
import { handleTimer } from '../control/timers.ts';
import { AllocatorMessageSchema, parseMessage } from '../protocol/index.ts';
import { perRecordHandler, type SqsHandler } from './lambda.ts';

export interface Handlers {
  /** scheduler-calls and agent-calls queues. */
  readonly registry: SqsHandler;
  /** allocator queue: each batch of nudges becomes one cycle per shard named in it. */
  readonly allocator: SqsHandler;
  /** timers queue. */
  readonly timers: SqsHandler;
  /** the scheduled sweep. */
  readonly sweep: () => Promise<void>;
}

const isAgentCalls = (source: string | undefined) => /agent-calls(\.fifo)?$/.test(source ?? '');

export function createHandlers(given: () => ControlDeps, afterEach?: () => void): Handlers {
  // Throttled and transient store errors are retried where they happen (lib/control/retry.ts);
  // task rows are kept as this process last wrote them, across invocations, outside those retries
  // and any fault wrapper, so a failed write drops its copy (lib/control/own-writes.ts).
  let base: ControlDeps | undefined;
  let resilient: ControlDeps | undefined;
  const deps = (): ControlDeps => {
    const d = given();
    if (d !== base) {
      base = d;
      resilient = { ...d, store: new OwnWrites(resilientStore(d.store)) };
    }
    return resilient!;
  };
  const registry = perRecordHandler(
    deps,
    (d, record) =>
      isAgentCalls(record.source) ? handleAgentCall(d, record) : handleSchedulerCall(d, record),
    afterEach,
    { readCache: true },
  );

  // Nudges within one allocation interval make one cycle per shard (lib/control/allocation-interval.ts).
  let pacer: AllocationPacer | undefined;
  // The agents as this instance's last cycles left them: a cycle reads only what changed.
  let view: AgentView | undefined;
  // The frameworks and roles as its last cycle read them: scanned again only when changed.
  const settings = new SettingsView();
  // Its cycle history, written to the operator's history item every few seconds, not every cycle.
  const history = new CycleHistory();
  const allocator = async (event: SQSEvent, _context: Context): Promise<SQSBatchResponse> => {
    const d = deps();
    pacer ??= new AllocationPacer({
      intervalMs: d.config.allocationIntervalSeconds * 1000,
      now: () => d.clock.now(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    });
    view ??= new AgentView({
      onIndexError: (e) => d.log.warn('agents change index unreadable, scanning', { error: String(e) }),
    });
    try {
      const newest = new Map<number, number>();
      for (const r of event.Records) {
        const parsed = parseMessage(AllocatorMessageSchema, r.body, ['ALLOCATE']);
        if (!parsed.ok) {
          d.log.error('bad allocator message dropped', { error: parsed.error });
          continue;
        }
        const sent = Number(r.attributes.SentTimestamp);
        const at = Number.isFinite(sent) && sent > 0 ? sent : Number.POSITIVE_INFINITY;
        const { shard } = parsed.message;
        newest.set(shard, Math.max(newest.get(shard) ?? 0, at));
      }
      // A batch seen before means the last cycle died, perhaps after writing offers it never
      // sent: this one announces the outstanding offers again (lib/control/allocation.ts).
      const reannounce = event.Records.some((r) => Number(r.attributes.ApproximateReceiveCount ?? '1') > 1);
      for (const [shard, sentAt] of newest) {
        const start = await pacer.admit(shard, sentAt, reannounce);
        if (start === undefined) {
          d.metrics.count('AllocationNudgesCoalesced');
          continue;
        }
        const t0 = performance.now();
        const report = await runAllocationCycle(d, shard, { reannounce, view, settings });
        const durationMs = performance.now() - t0;
        pacer.completed(shard, start);
        d.log.info('allocation cycle', { shard, ...report });
        d.metrics.measure?.('CycleDuration', durationMs, 'Milliseconds');
        await history.record(d, cycleEntry(shard, report, durationMs));
      }
      return { batchItemFailures: [] };
    } finally {
      afterEach?.();
    }
  };

  const timers = perRecordHandler(deps, handleTimer, afterEach);

  const sweep = async () => {
    try {
      await runSweep(deps());
      await recordStats(deps());
    } finally {
      afterEach?.();
    }
  };

  return { registry, allocator, timers, sweep };
}
