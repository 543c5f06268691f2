import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { lastLines, type RunTaskOptions, readTail, type TaskRun } from '../../agent/executor.ts';
import type { TaskInfo } from '../../lib/protocol/common.ts';
import {
  AGENT_ID,
  command,
  deferred,
  FRAMEWORK_ID,
  isAlive,
  liveGroupMembers,
  shellTask,
  taskRuns,
} from './helpers.ts';

const dir = taskRuns();

function start(
  task: TaskInfo,
  extra: Partial<RunTaskOptions> = {},
): { run: TaskRun; started: Promise<number> } {
  const started = deferred<number>();
  const run = dir.start(task, { onStarted: started.resolve, ...extra });
  return { run, started: started.promise };
}

/** Resolves once `file` contains `text` (the task signals readiness by writing it). */
async function untilFileHas(file: string, text: string): Promise<void> {
  await vi.waitFor(
    async () => {
      expect(await readFile(file, 'utf8').catch(() => '')).toContain(text);
    },
    { timeout: 10_000, interval: 10 },
  );
}

describe('TaskRun', () => {
  it('runs a shell command to TASK_FINISHED with stdout and stderr in the sandbox and the tails', async () => {
    const terminated = deferred<unknown>();
    const { run, started } = start(shellTask('echo', 'echo hello; echo oops >&2'), {
      onTerminated: terminated.resolve,
    });
    expect(await started).toBeGreaterThan(0);
    const t = await run.terminated;
    expect(t).toMatchObject({
      state: 'TASK_FINISHED',
      exitCode: 0,
      stdoutTail: 'hello\n',
      stderrTail: 'oops\n',
    });
    expect(await terminated.promise).toBe(t);
    expect(run.sandbox).toBe(join(dir.path, 'sandboxes', FRAMEWORK_ID, 'echo', run.runId));
    expect(await readFile(join(run.sandbox, 'stdout'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(run.sandbox, 'stderr'), 'utf8')).toBe('oops\n');
  });

  it('reports a non-zero exit as TASK_FAILED with the exit code and the end of stderr', async () => {
    const { run } = start(shellTask('exit3', 'echo "bad thing happened" >&2; exit 3'));
    const t = await run.terminated;
    expect(t.state).toBe('TASK_FAILED');
    expect(t.exitCode).toBe(3);
    expect(t.reason).toBeUndefined();
    expect(t.message).toMatch(/^exited with code 3\n/);
    expect(t.message).toContain('bad thing happened');
    expect(t.stderrTail).toBe('bad thing happened\n');
  });

  it('quotes only the last 20 lines of stderr and keeps 4 KB tails', async () => {
    const { run } = start(
      shellTask(
        'noisy',
        'seq 1 100 >&2; i=0; while [ $i -lt 1000 ]; do echo 0123456789; i=$((i+1)); done; exit 1',
      ),
    );
    const t = await run.terminated;
    expect(t.state).toBe('TASK_FAILED');
    const quoted = t.message.split('\n').slice(2);
    expect(quoted).toEqual(Array.from({ length: 20 }, (_, i) => String(81 + i)));
    expect(t.stdoutTail.length).toBe(4096);
    expect(t.stdoutTail.endsWith('0123456789\n')).toBe(true);
  });

  it('reports death by a signal as TASK_FAILED naming the signal', async () => {
    const { run } = start(shellTask('selfkill', 'kill -KILL $$'));
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_FAILED', signal: 'SIGKILL' });
    expect(t.exitCode).toBeUndefined();
    expect(t.message).toContain('killed by signal SIGKILL');
  });

  it('kills a task with SIGTERM to TASK_KILLED', async () => {
    const { run, started } = start(shellTask('sleeper', 'sleep 60'));
    const pid = await started;
    run.kill(30_000);
    const t = await run.terminated;
    expect(t.state).toBe('TASK_KILLED');
    expect(t.sigkilled).toBe(false);
    expect(t.message).toMatch(/^killed with SIGTERM/);
    await vi.waitFor(async () => expect(await liveGroupMembers(pid)).toEqual([]), { timeout: 5000 });
  });

  it('escalates to SIGKILL for the whole group when the task ignores SIGTERM', async () => {
    // The shell ignores TERM and so does `sleep` (an ignored signal stays ignored across exec).
    const { run, started } = start(
      shellTask('stubborn', "trap '' TERM; echo ready; sleep 60; echo survived"),
    );
    const pid = await started;
    await untilFileHas(join(run.sandbox, 'stdout'), 'ready');
    run.kill(100);
    const t = await run.terminated;
    expect(t.state).toBe('TASK_KILLED');
    expect(t.sigkilled).toBe(true);
    expect(t.message).toMatch(/^killed with SIGKILL: still running 0\.1 s after SIGTERM/);
    expect(t.stdoutTail).toBe('ready\n');
    await vi.waitFor(async () => expect(await liveGroupMembers(pid)).toEqual([]), { timeout: 5000 });
  });

  it("uses the task's killGracePeriodSeconds when kill() names none", async () => {
    const { run } = start(shellTask('graceful', 'sleep 60', { killGracePeriodSeconds: 7 }));
    expect(run.defaultGracePeriodMs).toBe(7000);
  });

  it('a kill before the process exists ends the task without running it', async () => {
    const { run } = start(shellTask('early', 'echo should-not-run'));
    run.kill();
    const t = await run.terminated;
    expect(t).toMatchObject({ state: 'TASK_KILLED', reason: 'REASON_TASK_KILLED_DURING_LAUNCH' });
    expect(run.pid).toBeUndefined();
    expect(t.stdoutTail).toBe('');
  });

  it('takes down what the task left running in its group when it exits', async () => {
    const { run } = start(shellTask('bg', 'sleep 60 & echo $! > bg.pid'));
    const t = await run.terminated;
    expect(t.state).toBe('TASK_FINISHED');
    const bg = Number((await readFile(join(run.sandbox, 'bg.pid'), 'utf8')).trim());
    await vi.waitFor(async () => expect(await isAlive(bg)).toBe(false), { timeout: 5000 });
  });

  it('fails a missing executable with REASON_CONTAINER_LAUNCH_FAILED', async () => {
    let startedCalled = false;
    const { run } = start(command('missing', { shell: false, value: '/nonexistent/bin/meso-nothing' }), {
      onStarted: () => {
        startedCalled = true;
      },
    });
    const t = await run.terminated;
    expect(t.state).toBe('TASK_FAILED');
    expect(t.reason).toBe('REASON_CONTAINER_LAUNCH_FAILED');
    expect(t.message).toContain('/nonexistent/bin/meso-nothing');
    expect(t.message).toContain('ENOENT');
    expect(startedCalled).toBe(false);
  });

  it('passes argv (argv[0] included) and a clean environment', async () => {
    process.env.MESO_TEST_LEAK = 'leaked';
    try {
      const script =
        'echo "argv0=$0 arg1=$1 foo=$FOO"; echo "task=$MESO_TASK_ID fw=$MESO_FRAMEWORK_ID agent=$MESO_AGENT_ID"; ' +
        'echo "home=$HOME sandbox=$MESOS_SANDBOX meso=$MESO_SANDBOX pwd=$(pwd)"; echo "leak=[$MESO_TEST_LEAK]"';
      const { run } = start(
        command('argv', {
          shell: false,
          value: '/bin/sh',
          arguments: ['sh', '-c', script, 'zeroth', 'first'],
          environment: { FOO: 'bar baz' },
        }),
      );
      const t = await run.terminated;
      expect(t.state).toBe('TASK_FINISHED');
      const s = run.sandbox;
      expect(t.stdoutTail.split('\n')).toEqual([
        'argv0=zeroth arg1=first foo=bar baz',
        `task=argv fw=${FRAMEWORK_ID} agent=${AGENT_ID}`,
        `home=${s} sandbox=${s} meso=${s} pwd=${s}`,
        'leak=[]',
        '',
      ]);
    } finally {
      delete process.env.MESO_TEST_LEAK;
    }
  });

  it('sets argv[0] from the first argument', async () => {
    const { run } = start(
      command('argv0', { shell: false, value: '/bin/sh', arguments: ['custom-name', '-c', 'echo $0'] }),
    );
    expect((await run.terminated).stdoutTail).toBe('custom-name\n');
  });

  it('runs an executable without arguments', async () => {
    const { run } = start(command('bare', { shell: false, value: 'true' }));
    expect((await run.terminated).state).toBe('TASK_FINISHED');
  });
});

describe('tails', () => {
  it('lastLines ignores one trailing newline', () => {
    expect(lastLines('a\nb\nc\n', 2)).toBe('b\nc');
    expect(lastLines('', 2)).toBe('');
  });

  it('readTail of a missing file is empty', async () => {
    expect(await readTail(join(dir.path, 'nope'))).toBe('');
  });
});
