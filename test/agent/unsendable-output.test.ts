/**
 * A task's output cannot wedge its own end: a task that prints what SQS refuses (U+FFFF, control
 * characters, invalid UTF-8) still gets its TASK_FINISHED through (against the SQS emulator, with
 * a real Agent and a real process), and an update refused for what it holds is never retried
 * forever.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isUnsendableError, StatusUpdateManager, sendableText } from '../../agent/status-updates.ts';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import { createTestCluster, type TestCluster } from '../setup/cluster.ts';
import { TestControlPlane } from './control-plane.ts';
import { deferred, ManualTimers, tempDir } from './helpers.ts';
import { AgentFixture } from './sqs-agent.ts';

let cluster: TestCluster;
let control: TestControlPlane;
let fixture: AgentFixture;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  cluster = await createTestCluster();
  control = new TestControlPlane(cluster.sqs, cluster.config.queues.agentCalls);
  fixture = new AgentFixture(cluster, control);
});

afterAll(async () => {
  await control?.stop();
  await cluster?.destroy();
});

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await fixture.stopAll();
  await dir.remove();
});

describe("a task's output", () => {
  it('with U+FFFF, control characters and invalid UTF-8 still ends the task for its framework', async () => {
    const a = await fixture.start(dir.path);
    // U+FFFF (UTF-8 EF BF BF), U+FFFE, a BEL, a lone 0xFF byte; the same on stderr, and an exit
    // status that quotes stderr in the message.
    const script = String.raw`printf 'a\357\277\277b\357\277\276c\007d\377e\n'; printf 'x\357\277\277y\n' >&2; exit 3`;
    await fixture.launch(a, { taskId: 'ffff', command: { shell: true, value: script } });
    const updates = await fixture.follow(a, 'ffff');
    const end = updates.at(-1);
    expect(end?.state).toBe('TASK_FAILED');
    expect(end?.stdoutTail).toBe('a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\n');
    expect(end?.stderrTail).toBe('x\uFFFDy\n');
    expect(end?.message).toContain('x\uFFFDy');
  });
});

describe('an update refused for what it holds', () => {
  it('is resent once without its texts, then given up; never retried forever', async () => {
    const timers = new ManualTimers();
    const sent: TaskStatus[] = [];
    const dropped: TaskStatus[] = [];
    const gaveUp = deferred();
    const updates = new StatusUpdateManager({
      timers,
      retryIntervalMs: 10,
      send: async (s) => {
        sent.push(s);
        throw Object.assign(new Error('SQS send failed: InvalidMessageContents'), {
          name: 'InvalidMessageContents',
        });
      },
      onDropped: (s) => {
        dropped.push(s);
        gaveUp.resolve();
      },
    });
    updates.update({
      taskId: 't',
      frameworkId: 'f',
      state: 'TASK_FINISHED',
      source: 'SOURCE_EXECUTOR',
      message: 'done',
      stdoutTail: 'x'.repeat(100),
    });
    await gaveUp.promise;
    // No retry is left scheduled: an hour later nothing more has been sent.
    expect(timers.size).toBe(0);
    timers.advance(3_600_000);
    expect(sent).toHaveLength(2);
    expect(sent[0]?.stdoutTail).toBe('x'.repeat(100));
    expect(sent[1]?.stdoutTail).toBeUndefined();
    expect(sent[1]?.message).toMatch(/could not be sent/);
    expect(sent[1]?.uuid).toBe(sent[0]?.uuid);
    expect(dropped.map((s) => s.uuid)).toEqual([sent[0]?.uuid]);
    expect(updates.pending()).toEqual([]);
  });

  it('tells refusals for the content from failures worth retrying', () => {
    expect(
      isUnsendableError(new Error('SQS send to q failed for 1 message(s): InvalidMessageContents x')),
    ).toBe(true);
    expect(isUnsendableError(new Error('refusing to send an invalid STATUS_UPDATE: too long'))).toBe(true);
    expect(isUnsendableError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(false);
    expect(sendableText('ok\t\n\r😀\uFFFF\uD800')).toBe('ok\t\n\r😀\uFFFD\uFFFD');
  });
});
