import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import {
  collect,
  commandFromArgs,
  parseAmount,
  parseCount,
  parseEnvPairs,
  parseResourceSpec,
} from '../../lib/cli/args.ts';
import type { CliIo } from '../../lib/cli/io.ts';
import { runProgram } from '../../lib/cli/program.ts';
import { exitCodeFor, formatFailure, formatTransition } from '../../lib/cli/run.ts';
import { type ClusterConfig, ConfigError } from '../../lib/config/cluster.ts';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import type { Offer } from '../../lib/protocol/scheduler.ts';
import { MesoSdkError } from '../../lib/sdk/errors.ts';
import type { RunTaskOptions, RunTaskResult } from '../../lib/sdk/run-task.ts';

const status = (state: TaskStatus['state'], extra: Partial<TaskStatus> = {}): TaskStatus => ({
  taskId: 't1',
  frameworkId: 'fw',
  agentId: 'a1',
  state,
  source: 'SOURCE_AGENT',
  timestamp: 0,
  ...extra,
});

describe('meso run arguments', () => {
  it('one argument is a shell command, several are an argv', () => {
    expect(commandFromArgs(['echo hi'])).toBe('echo hi');
    expect(commandFromArgs(['sh', '-c', 'echo hi'])).toEqual(['sh', '-c', 'echo hi']);
    expect(commandFromArgs(['ls'], { shell: false })).toEqual(['ls']);
    expect(commandFromArgs(['ls'], { shell: true })).toBe('ls');
    expect(() => commandFromArgs([])).toThrow(/no command/);
  });

  it('--env NAME=value, repeatable; the value may hold =', () => {
    expect(parseEnvPairs(['A=1', 'B=x=y', 'EMPTY=', 'A=2'])).toEqual({ A: '2', B: 'x=y', EMPTY: '' });
    expect(() => parseEnvPairs(['NOVALUE'])).toThrow(/NAME=value/);
    expect(() => parseEnvPairs(['1X=2'])).toThrow(/NAME=value/);
    expect(collect('b', ['a'])).toEqual(['a', 'b']);
  });

  it('amounts are non-negative with at most three decimals', () => {
    expect(parseAmount('0.125')).toBe(0.125);
    expect(parseAmount('32')).toBe(32);
    for (const bad of ['', 'abc', '-1', '0.0001', 'Infinity']) expect(() => parseAmount(bad)).toThrow();
    expect(parseCount('3')).toBe(3);
    for (const bad of ['0', '1.5', 'x']) expect(() => parseCount(bad)).toThrow();
    expect(parseResourceSpec('cpus:2;mem:1024')).toBe('cpus:2;mem:1024');
    expect(() => parseResourceSpec('cpus:lots')).toThrow();
  });
});

describe('meso run output', () => {
  it('prints one line per change of state, with the agent and exit code', () => {
    expect(formatTransition(undefined, status('TASK_STAGING'), 120)).toBe(
      'meso: +0.1s t1 STAGING (agent a1)\n',
    );
    expect(formatTransition('TASK_STAGING', status('TASK_RUNNING'), 1500)).toBe(
      'meso: +1.5s t1 STAGING → RUNNING (agent a1)\n',
    );
    expect(formatTransition('TASK_RUNNING', status('TASK_RUNNING'), 2000)).toBeUndefined();
    expect(formatTransition('TASK_RUNNING', status('TASK_FAILED', { exitCode: 3 }), 2000)).toBe(
      'meso: +2.0s t1 RUNNING → FAILED (agent a1, exit 3)\n',
    );
    expect(formatTransition(undefined, status('TASK_ERROR', { agentId: undefined }), 0)).toBe(
      'meso: +0.0s t1 ERROR\n',
    );
  });

  it('summarizes a failure with state, reason, message and exit code', () => {
    expect(
      formatFailure(
        status('TASK_FAILED', { reason: 'REASON_COMMAND_EXECUTOR_FAILED', message: 'exited 3', exitCode: 3 }),
      ),
    ).toBe('meso: task t1 ended TASK_FAILED (REASON_COMMAND_EXECUTOR_FAILED): exited 3; exit code 3\n');
    expect(exitCodeFor(status('TASK_FINISHED'))).toBe(0);
    for (const s of ['TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_DROPPED', 'TASK_LOST'] as const) {
      expect(exitCodeFor(status(s))).toBe(1);
    }
  });
});

// ---- the whole program, with a fake runTask ----

const CLUSTER: ClusterConfig = {
  aws: { region: 'us-east-1', sqsEndpoint: 'http://127.0.0.1:1' },
  prefix: 'meso',
  queues: {
    schedulerCalls: 'http://q/meso-scheduler-calls.fifo',
    agentCalls: 'http://q/meso-agent-calls.fifo',
    allocator: 'http://q/meso-allocator.fifo',
    timers: 'http://q/meso-timers',
  },
  tables: { agents: 'meso-agents', frameworks: 'meso-frameworks', tasks: 'meso-tasks', meta: 'meso-meta' },
  source: 'test',
};

interface Harness {
  io: CliIo;
  out: string[];
  err: string[];
  interrupt: (signal?: NodeJS.Signals) => void;
  exited: number[];
  destroyed: number;
}

function harness(): Harness {
  const h: Harness = {
    out: [],
    err: [],
    exited: [],
    destroyed: 0,
    interrupt: () => {},
    io: {
      stdout: { write: (t: string) => h.out.push(t) },
      stderr: { write: (t: string) => h.err.push(t) },
      onInterrupt: (handler) => {
        h.interrupt = (signal = 'SIGINT') => handler(signal);
        return () => {
          h.interrupt = () => {};
        };
      },
      exit: (code: number): never => {
        h.exited.push(code);
        throw new Error(`exit ${code}`);
      },
    },
  };
  return h;
}

const fakeSqs = (h: Harness) => () =>
  ({
    destroy: () => {
      h.destroyed += 1;
    },
  }) as unknown as SQSClient;

const OFFER: Offer = {
  offerId: 'o1',
  frameworkId: 'fw',
  agentId: 'a1',
  hostname: 'host-1',
  resources: { cpus: 1, mem: 128 },
  attributes: {},
  expiresAt: 0,
};

/** A runTask that plays the given states and records its options. */
function fakeRunTask(states: TaskStatus[], seen: RunTaskOptions[]) {
  return async (opts: RunTaskOptions): Promise<RunTaskResult> => {
    seen.push(opts);
    opts.onSubscribed?.('fw');
    opts.onLaunched?.(
      { taskId: 't1', agentId: 'a1', resources: {}, command: { shell: true, value: 'x' } },
      OFFER,
    );
    for (const s of states) opts.onProgress?.(s);
    const last = states.at(-1)!;
    return {
      status: last,
      history: states.map((s) => s.state),
      taskId: 't1',
      frameworkId: 'fw',
      agentId: 'a1',
    };
  };
}

async function meso(argv: string[], states: TaskStatus[], h = harness()) {
  const seen: RunTaskOptions[] = [];
  const code = await runProgram(argv, {
    io: h.io,
    run: {
      listAgents: async () => undefined,
      loadConfig: () => CLUSTER,
      createSqsClient: fakeSqs(h),
      runTask: fakeRunTask(states, seen),
      now: () => 0,
    },
  });
  return { code, out: h.out.join(''), err: h.err.join(''), opts: seen[0], h };
}

describe('meso (program)', () => {
  it('meso run prints transitions to stderr, the stdout tail to stdout, exits 0 on TASK_FINISHED', async () => {
    const r = await meso(
      ['run', '--cpus', '0.5', '--mem', '64', '-e', 'A=1', '--env', 'B=2', 'echo hi'],
      [
        status('TASK_RUNNING'),
        status('TASK_FINISHED', { exitCode: 0, stdoutTail: 'hi', stderrTail: 'a warning\n' }),
      ],
    );
    expect(r.code).toBe(0);
    expect(r.out).toBe('hi\n');
    expect(r.err).toContain('meso: launching t1 on agent a1 (host-1)\n');
    // Nothing to fetch: STAGING → RUNNING, no STARTING between.
    expect(r.err).toContain('t1 STAGING → RUNNING (agent a1)\n');
    expect(r.err).not.toContain('STARTING');
    expect(r.err).toContain('RUNNING → FINISHED (agent a1, exit 0)\n');
    expect(r.err.endsWith('a warning\n')).toBe(true);
    expect(r.opts).toMatchObject({
      command: 'echo hi',
      cpus: 0.5,
      mem: 64,
      disk: 0,
      env: { A: '1', B: '2' },
      schedulerCallsQueueUrl: CLUSTER.queues.schedulerCalls,
      prefix: 'meso',
    });
    expect(r.h.destroyed).toBe(1);
  });

  it('passes argv after -- (and options after the command) to the task', async () => {
    const a = await meso(['run', '--', 'sh', '-c', 'echo hi'], [status('TASK_FINISHED')]);
    expect(a.opts?.command).toEqual(['sh', '-c', 'echo hi']);
    const b = await meso(['run', '--mem', '48', 'ls', '-l', '--mem', '1'], [status('TASK_FINISHED')]);
    expect(b.opts?.command).toEqual(['ls', '-l', '--mem', '1']);
    expect(b.opts?.mem).toBe(48);
    const c = await meso(['run', '--no-shell', '/bin/true'], [status('TASK_FINISHED')]);
    expect(c.opts?.command).toEqual(['/bin/true']);
  });

  it('exits 1 with state, reason, exit code and the stderr tail when the task fails', async () => {
    const r = await meso(
      ['run', 'exit 3'],
      [
        status('TASK_RUNNING'),
        status('TASK_FAILED', {
          reason: 'REASON_COMMAND_EXECUTOR_FAILED',
          message: 'Command exited with status 3',
          exitCode: 3,
          stderrTail: 'oops\n',
          stdoutTail: 'partial\n',
        }),
      ],
    );
    expect(r.code).toBe(1);
    expect(r.out).toBe('partial\n');
    expect(r.err).toContain('meso: last lines of stderr:\noops\n');
    expect(r.err).toContain(
      'meso: task t1 ended TASK_FAILED (REASON_COMMAND_EXECUTOR_FAILED): Command exited with status 3; exit code 3\n',
    );
  });

  it('prints the stderr an agent quotes in its failure message once, on lines of its own', async () => {
    const r = await meso(
      ['run', 'echo oops >&2; exit 3'],
      [
        status('TASK_FAILED', {
          message: 'exited with code 3\n--- last lines of stderr ---\noops',
          exitCode: 3,
          stderrTail: 'oops\n',
        }),
      ],
    );
    expect(r.code).toBe(1);
    expect(r.err.split('oops').length - 1).toBe(1);
    expect(r.err).toContain('meso: last lines of stderr:\noops\n');
    expect(r.err).toContain('meso: task t1 ended TASK_FAILED: exited with code 3; exit code 3\n');
    expect(r.err).not.toContain('--- last lines of stderr ---');
  });

  it('exits 2 on usage and configuration errors', async () => {
    expect((await meso(['run'], [])).code).toBe(2);
    expect((await meso(['run', '--cpus', 'lots', 'true'], [])).code).toBe(2);
    expect((await meso(['run', '-e', 'NOPE', 'true'], [])).code).toBe(2);
    expect((await meso(['nonsense'], [])).code).toBe(2);
    const h = harness();
    const code = await runProgram(['run', 'true'], {
      io: h.io,
      run: {
        listAgents: async () => undefined,
        loadConfig: () => {
          throw new ConfigError('No Meso cluster configured.');
        },
      },
    });
    expect(code).toBe(2);
    expect(h.err.join('')).toBe('meso: No Meso cluster configured.\n');
  });

  it('exits 2 for a task Meso could never accept, 1 when the cluster cannot be reached', async () => {
    const h = harness();
    const code = await runProgram(['run', '--task-id', 'bad id', 'true'], {
      io: h.io,
      run: { listAgents: async () => undefined, loadConfig: () => CLUSTER, createSqsClient: fakeSqs(h) },
    });
    expect(code).toBe(2);
    expect(h.err.join('')).toMatch(/invalid task: taskId/);

    const h2 = harness();
    const code2 = await runProgram(['run', 'true'], {
      io: h2.io,
      run: {
        listAgents: async () => undefined,
        loadConfig: () => CLUSTER,
        createSqsClient: fakeSqs(h2),
        runTask: async () => {
          throw new MesoSdkError('could not send SUBSCRIBE: connect ECONNREFUSED', 'SEND_FAILED');
        },
      },
    });
    expect(code2).toBe(1);
    expect(h2.err.join('')).toBe('meso: could not send SUBSCRIBE: connect ECONNREFUSED\n');
  });

  it('help and version exit 0', async () => {
    const r = await meso(['--help'], []);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: meso');
    expect((await meso(['--version'], [])).out).toBe('0.1.0\n');
  });

  it('Ctrl-C aborts the run (the task is killed); a second one quits at once', async () => {
    const h = harness();
    let signal: AbortSignal | undefined;
    const code = await runProgram(['run', 'sleep 100'], {
      io: h.io,
      run: {
        listAgents: async () => undefined,
        loadConfig: () => CLUSTER,
        createSqsClient: fakeSqs(h),
        runTask: async (opts) => {
          signal = opts.signal;
          opts.onLaunched?.(
            { taskId: 't1', agentId: 'a1', resources: {}, command: { shell: true, value: 'x' } },
            OFFER,
          );
          h.interrupt();
          expect(signal?.aborted).toBe(true);
          expect(() => h.interrupt()).toThrow('exit 130');
          const killed = status('TASK_KILLED', { reason: undefined });
          return { status: killed, history: ['TASK_KILLED'], taskId: 't1', frameworkId: 'fw' };
        },
      },
    });
    expect(code).toBe(1);
    expect(h.exited).toEqual([130]);
    expect(h.err.join('')).toContain('killing t1 and waiting for it to end');
    expect(h.err.join('')).toContain('ended TASK_KILLED');
  });

  it('Ctrl-C before the launch exits 130', async () => {
    const h = harness();
    const code = await runProgram(['run', 'true'], {
      io: h.io,
      run: {
        listAgents: async () => undefined,
        loadConfig: () => CLUSTER,
        createSqsClient: fakeSqs(h),
        runTask: async () => {
          h.interrupt();
          throw new MesoSdkError('aborted', 'ABORTED');
        },
      },
    });
    expect(code).toBe(130);
  });

  it('meso dev calls runDev with its options', async () => {
    const h = harness();
    const calls: unknown[] = [];
    const code = await runProgram(['dev', '--agents', '2', '--work-dir', '/tmp/w'], {
      io: h.io,
      dev: {
        loadDevModule: async () => ({
          runDev: async (opts) => {
            calls.push(opts);
          },
        }),
      },
    });
    expect(code).toBe(0);
    expect(calls).toEqual([{ agents: 2, workDir: '/tmp/w' }]);

    const failing = await runProgram(['dev'], {
      io: h.io,
      dev: {
        loadDevModule: async () => ({
          runDev: async () => {
            throw new Error('port in use');
          },
        }),
      },
    });
    expect(failing).toBe(1);
    expect(h.err.join('')).toContain('meso dev: port in use');
  });
});
