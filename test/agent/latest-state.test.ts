import { describe, expect, it } from 'vitest';
import { type StatusUpdateInput, StatusUpdateManager } from '../../agent/status-updates.ts';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import { ManualTimers } from './helpers.ts';

/** What went to the registry: an update (with the latest state it carried) or a latest state alone. */
type Sent =
  | { kind: 'update'; state: string; uuid: string; latest: string | undefined; at: number }
  | { kind: 'latest'; state: string; uuid: string; message?: string; at: number };

function setup() {
  const timers = new ManualTimers();
  const sent: Sent[] = [];
  let n = 0;
  const manager = new StatusUpdateManager({
    send: async (status, _attempt, latest) => {
      sent.push({
        kind: 'update',
        state: status.state,
        uuid: status.uuid!,
        latest: latest?.state,
        at: timers.now,
      });
    },
    sendLatest: async (latest: TaskStatus) => {
      sent.push({
        kind: 'latest',
        state: latest.state,
        uuid: latest.uuid!,
        ...(latest.message !== undefined ? { message: latest.message } : {}),
        at: timers.now,
      });
    },
    ids: { next: () => `u${++n}` },
    clock: { now: () => timers.now },
    timers,
    retryIntervalMs: 10_000,
    latestDelayMs: 1_000,
  });
  return { timers, sent, manager };
}

const upd = (state: TaskStatus['state'], more: Partial<StatusUpdateInput> = {}): StatusUpdateInput => ({
  taskId: 't1',
  frameworkId: 'fw',
  agentId: 'a1',
  state,
  source: 'SOURCE_EXECUTOR',
  ...more,
});

describe("the agent's latest state while an update waits for its acknowledgement", () => {
  it('goes to the registry on its own once the head has waited, and with every resend', () => {
    const { manager, sent, timers } = setup();
    manager.update(upd('TASK_RUNNING'));
    manager.update(upd('TASK_FINISHED', { message: 'exited with code 0' }));
    // Only the head is an update; the latest waits a moment for the head's acknowledgement.
    expect(sent).toEqual([{ kind: 'update', state: 'TASK_RUNNING', uuid: 'u1', latest: undefined, at: 0 }]);
    timers.advance(999);
    expect(sent).toHaveLength(1);
    timers.advance(1);
    expect(sent[1]).toEqual({
      kind: 'latest',
      state: 'TASK_FINISHED',
      uuid: 'u2',
      message: 'exited with code 0',
      at: 1_000,
    });
    // Sent once, not again on its own; the head's resend carries it.
    timers.advance(9_000);
    expect(sent.slice(2)).toEqual([
      { kind: 'update', state: 'TASK_RUNNING', uuid: 'u1', latest: 'TASK_FINISHED', at: 10_000 },
    ]);
    // The framework acknowledges: FINISHED itself follows, in order, as the latest.
    manager.acknowledge('fw', 't1', 'u1');
    expect(sent.at(-1)).toEqual({
      kind: 'update',
      state: 'TASK_FINISHED',
      uuid: 'u2',
      latest: undefined,
      at: 10_000,
    });
    manager.acknowledge('fw', 't1', 'u2');
    expect(timers.size).toBe(0);
  });

  it('costs no message of its own when the head is acknowledged in time', () => {
    const { manager, sent, timers } = setup();
    manager.update(upd('TASK_RUNNING'));
    manager.update(upd('TASK_FINISHED'));
    timers.advance(300);
    manager.acknowledge('fw', 't1', 'u1');
    timers.advance(5_000);
    expect(sent.map((s) => `${s.kind}:${s.state}`)).toEqual(['update:TASK_RUNNING', 'update:TASK_FINISHED']);
    expect(sent.some((s) => s.kind === 'latest')).toBe(false);
  });

  it('sends a state that arrives behind a new head after the head changed', () => {
    const { manager, sent, timers } = setup();
    manager.update(upd('TASK_STARTING'));
    manager.update(upd('TASK_RUNNING'));
    timers.advance(500);
    manager.acknowledge('fw', 't1', 'u1'); // RUNNING is the head now, carrying no newer state
    manager.update(upd('TASK_FAILED'));
    timers.advance(1_000);
    expect(sent.filter((s) => s.kind === 'latest').map((s) => s.state)).toEqual(['TASK_FAILED']);
  });

  it("leaves the latest state's texts out when the head's were refused", async () => {
    const timers = new ManualTimers();
    const sent: TaskStatus[] = [];
    const latests: (TaskStatus | undefined)[] = [];
    let resent!: () => void;
    const stripped = new Promise<void>((r) => {
      resent = r;
    });
    const manager = new StatusUpdateManager({
      send: async (status, _attempt, latest) => {
        sent.push(status);
        latests.push(latest);
        if (sent.length === 1) throw new Error('InvalidMessageContents');
        resent();
      },
      sendLatest: async (latest) => void latests.push(latest),
      timers,
      latestDelayMs: 1_000,
    });
    manager.update(upd('TASK_RUNNING', { message: 'bad' }));
    manager.update(upd('TASK_FAILED', { message: 'exited with code 1', stderrTail: 'oops' }));
    await stripped; // the head went again without its texts
    expect(latests[1]).toMatchObject({ state: 'TASK_FAILED' });
    expect(latests[1]?.message).toBeUndefined();
    expect(latests[1]?.stderrTail).toBeUndefined();
    // That resend carried it: nothing goes alone.
    timers.advance(1_000);
    expect(latests).toHaveLength(2);
  });

  it('sends nothing while held before registration, nor after stop', () => {
    const timers = new ManualTimers();
    const sent: string[] = [];
    const manager = new StatusUpdateManager({
      send: async (s) => void sent.push(`update:${s.state}`),
      sendLatest: async (s) => void sent.push(`latest:${s.state}`),
      timers,
      paused: true,
      latestDelayMs: 1_000,
    });
    manager.update(upd('TASK_RUNNING'));
    manager.update(upd('TASK_FINISHED'));
    timers.advance(2_000);
    expect(sent).toEqual([]);
    manager.resume();
    expect(sent).toEqual(['update:TASK_RUNNING']);
    manager.stop();
    timers.advance(60_000);
    expect(sent).toEqual(['update:TASK_RUNNING']);
  });
});
