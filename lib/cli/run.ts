/**
 * `meso run`: runs one command on the cluster and waits for it (Mesos's `mesos-execute`).
 * Progress goes to stderr, the task's stdout tail to stdout, so `meso run … > out` keeps only
 * the task's output.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import type { AwsConfig } from '../adapters/aws-config.ts';
import { type ClusterConfig, ConfigError } from '../config/cluster.ts';
import type { AgentRecord } from '../core/model.ts';
import { ResourceError } from '../core/resources.ts';
import type { TaskState, TaskStatus } from '../protocol/common.ts';
import type { Offer } from '../protocol/scheduler.ts';
import { InvalidCallError, MesoSdkError } from '../sdk/errors.ts';
import { formatWire, requestedResources, requestedWire } from '../sdk/offers.ts';
import type { RunTaskOptions, RunTaskResult } from '../sdk/run-task.ts';
import { shortState } from '../sdk/task-state.ts';
import { collect, commandFromArgs, parseAmount, parseEnvPairs, parseSeconds } from './args.ts';
import { type CliIo, EXIT, line, UsageError } from './io.ts';
import { neverFits } from './run-fit.ts';

export interface RunCliOptions {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
  name?: string;
  taskId?: string;
  env: string[];
  role?: string;
  killGracePeriod?: number;
  /** false with `--no-shell`. */
  shell: boolean;
  subscribeTimeout?: number;
  /** Seconds to wait for an offer that fits before giving up (default: no limit). */
  timeout?: number;
}

export interface RunDeps {
  io: CliIo;
  loadConfig: () => ClusterConfig;
  createSqsClient: (aws: AwsConfig) => SQSClient;
  runTask: (opts: RunTaskOptions) => Promise<RunTaskResult>;
  /** The cluster's agents, to tell at once a request no agent could hold (undefined: cannot tell). */
  listAgents?: (config: ClusterConfig) => Promise<readonly AgentRecord[] | undefined>;
  now?: () => number;
}

/** One progress line per change of state: `+0.4s t1 STAGING → RUNNING (agent a1)`. */
export function formatTransition(
  previous: TaskState | undefined,
  status: TaskStatus,
  elapsedMs: number,
): string | undefined {
  if (previous === status.state) return undefined;
  const from = previous ? `${shortState(previous)} → ` : '';
  const details = [
    status.agentId !== undefined ? `agent ${status.agentId}` : undefined,
    status.exitCode !== undefined ? `exit ${status.exitCode}` : undefined,
  ].filter((d) => d !== undefined);
  const time = `+${(elapsedMs / 1000).toFixed(1)}s`;
  return `meso: ${time} ${status.taskId} ${from}${shortState(status.state)}${details.length > 0 ? ` (${details.join(', ')})` : ''}\n`;
}

/** The marker after which an agent's failure message quotes the task's stderr. */
const QUOTED_STDERR = '\n--- last lines of stderr ---';

/** A status message without the stderr an agent quotes in it (`meso run` prints the stderr tail itself). */
export function messageWithoutStderr(message: string): string {
  const at = message.indexOf(QUOTED_STDERR);
  return at >= 0 ? message.slice(0, at) : message;
}

/** The summary of a task that did not finish: state, reason, message, exit code. */
export function formatFailure(status: TaskStatus): string {
  let text = `meso: task ${status.taskId} ended ${status.state}`;
  if (status.reason !== undefined) text += ` (${status.reason})`;
  const message = status.message ? messageWithoutStderr(status.message) : '';
  if (message) text += `: ${message}`;
  if (status.exitCode !== undefined) text += `; exit code ${status.exitCode}`;
  return `${text}\n`;
}

/** What `meso` exits with for a terminal status. */
export function exitCodeFor(status: TaskStatus): number {
  return status.state === 'TASK_FINISHED' ? EXIT.OK : EXIT.FAILED;
}

function describeOffers(offers: readonly Offer[]): string {
  const shown = offers.slice(0, 3).map((o) => `agent ${o.agentId} has ${formatWire(o.resources)}`);
  if (offers.length > 3) shown.push(`${offers.length - 3} more`);
  return shown.join('; ');
}

/**
 * The whole of `meso run` after argument parsing; returns the exit status.
 *
 * @example
 * ```ts
 * const code = await runCommand(['echo hi'], { cpus: 0.1, mem: 32, disk: 0, gpus: 0, env: [], shell: true }, deps);
 * ```
 */
export async function runCommand(
  args: readonly string[],
  options: RunCliOptions,
  deps: RunDeps,
): Promise<number> {
  const { io } = deps;
  const now = deps.now ?? Date.now;
  let command: string | string[];
  let env: Record<string, string>;
  let config: ClusterConfig;
  try {
    command = commandFromArgs(args, { shell: options.shell });
    env = parseEnvPairs(options.env);
    config = deps.loadConfig();
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      io.stderr.write(line(`meso: ${e.message}`));
      return EXIT.USAGE;
    }
    throw e;
  }

  const sqs = deps.createSqsClient(config.aws);
  const controller = new AbortController();
  let launchedTaskId: string | undefined;
  let interrupts = 0;
  const stopListening = io.onInterrupt((signal) => {
    interrupts += 1;
    const by = signal && signal !== 'SIGINT' ? ` (${signal})` : '';
    if (interrupts === 1) {
      io.stderr.write(
        launchedTaskId !== undefined
          ? `\nmeso: killing ${launchedTaskId} and waiting for it to end${by} (Ctrl-C again to quit without waiting)\n`
          : `\nmeso: stopping${by}\n`,
      );
      controller.abort();
    } else {
      io.stderr.write(
        `\nmeso: quitting without waiting${launchedTaskId !== undefined ? `; ${launchedTaskId} may still be running` : ''}\n`,
      );
      io.exit(EXIT.INTERRUPTED);
    }
  });

  // Why the run gave up before a launch (no agent could hold it, or --timeout), if it did.
  let gaveUp: string | undefined;
  const giveUp = (why: string) => {
    if (launchedTaskId !== undefined || controller.signal.aborted) return;
    gaveUp = why;
    controller.abort();
  };
  const offerTimer =
    options.timeout !== undefined
      ? setTimeout(
          () => giveUp(`no offer held ${wanted()} within ${options.timeout} s (--timeout); giving up`),
          options.timeout * 1000,
        )
      : undefined;
  // Alongside the subscription, not before it: the look at the registry costs the run no time.
  if (deps.listAgents) {
    let asked: ReturnType<typeof requestedResources> | undefined;
    try {
      asked = requestedResources(options);
    } catch {
      // A bad amount is refused by runTask, with its own message.
    }
    if (asked)
      void deps
        .listAgents(config)
        .then((agents) => {
          const why = agents && neverFits(agents, asked);
          if (why) giveUp(why);
        })
        .catch(() => {});
  }

  const start = now();
  let previous: TaskState | undefined;
  let toldNoFit = false;
  const wanted = (): string => formatWire(requestedWire(options));
  try {
    const { status } = await deps.runTask({
      sqs,
      schedulerCallsQueueUrl: config.queues.schedulerCalls,
      prefix: config.prefix,
      command,
      cpus: options.cpus,
      mem: options.mem,
      disk: options.disk,
      gpus: options.gpus,
      env,
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.taskId !== undefined ? { taskId: options.taskId } : {}),
      ...(options.role !== undefined ? { roles: [options.role] } : {}),
      ...(options.killGracePeriod !== undefined ? { killGracePeriodSeconds: options.killGracePeriod } : {}),
      ...(options.subscribeTimeout !== undefined
        ? { subscribeTimeoutMs: options.subscribeTimeout * 1000 }
        : {}),
      signal: controller.signal,
      onSubscribed: (frameworkId) => {
        io.stderr.write(
          `meso: subscribed as framework ${frameworkId}; waiting for an offer of ${wanted()}\n`,
        );
      },
      onOffers: (offers, chosen) => {
        if (chosen || toldNoFit || offers.length === 0) return;
        toldNoFit = true;
        io.stderr.write(`meso: no offer holds ${wanted()} yet (${describeOffers(offers)}); still waiting\n`);
      },
      onLaunched: (task, offer) => {
        launchedTaskId = task.taskId;
        io.stderr.write(`meso: launching ${task.taskId} on agent ${offer.agentId} (${offer.hostname})\n`);
        // The task is STAGING from the moment it is accepted (Meso, like Mesos, sends no update for it).
        previous = 'TASK_STAGING';
        io.stderr.write(
          `meso: +${((now() - start) / 1000).toFixed(1)}s ${task.taskId} STAGING (agent ${offer.agentId})\n`,
        );
      },
      onProgress: (s) => {
        const text = formatTransition(previous, s, now() - start);
        previous = s.state;
        if (text) io.stderr.write(text);
      },
      onError: (e) => {
        io.stderr.write(line(`meso: warning: ${e.message}`));
      },
    });
    const code = exitCodeFor(status);
    if (status.stdoutTail) io.stdout.write(line(status.stdoutTail));
    if (code === EXIT.OK) {
      if (status.stderrTail) io.stderr.write(line(status.stderrTail));
    } else {
      if (status.stderrTail) io.stderr.write(`meso: last lines of stderr:\n${line(status.stderrTail)}`);
      io.stderr.write(formatFailure(status));
    }
    return code;
  } catch (e) {
    if (e instanceof MesoSdkError && e.code === 'ABORTED' && gaveUp !== undefined) {
      io.stderr.write(line(`meso: ${gaveUp}`));
      return EXIT.FAILED;
    }
    if (e instanceof MesoSdkError && e.code === 'ABORTED') {
      io.stderr.write('meso: interrupted before the task was launched\n');
      return EXIT.INTERRUPTED;
    }
    if (e instanceof InvalidCallError || e instanceof ResourceError) {
      io.stderr.write(line(`meso: ${e.message}`));
      return EXIT.USAGE;
    }
    io.stderr.write(line(`meso: ${e instanceof Error ? e.message : String(e)}`));
    return EXIT.FAILED;
  } finally {
    clearTimeout(offerTimer);
    stopListening();
    sqs.destroy();
  }
}

/** Adds `meso run` to the program; its action hands its exit status to `done`. */
export function registerRunCommand(
  program: Command,
  deps: () => RunDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('run')
    .description(
      'Run a command as a task on the cluster and wait for it to end. One argument is a shell command ' +
        "(meso run 'echo $HOME'); several are an argv run without a shell (meso run -- sh -c 'echo hi').",
    )
    .passThroughOptions()
    .argument('<command...>', 'the command (put it after -- when it has options of its own)')
    .option('--cpus <n>', 'CPUs for the task', parseAmount, 0.1)
    .option('--mem <mb>', 'memory for the task, MB', parseAmount, 32)
    .option('--disk <mb>', 'disk for the task, MB', parseAmount, 0)
    .option('--gpus <n>', 'GPUs for the task', parseAmount, 0)
    .option('--name <name>', 'the task name (default meso-run)')
    .option('--task-id <id>', 'the task id (default <name>-<random>)')
    .option(
      '-e, --env <NAME=value>',
      'an environment variable of the task (repeatable)',
      collect,
      [] as string[],
    )
    .option('--role <role>', 'the role to take resources of (default *)')
    .option('--kill-grace-period <seconds>', 'seconds between SIGTERM and SIGKILL on kill', parseSeconds)
    .option(
      '--subscribe-timeout <seconds>',
      'give up when the cluster does not answer (default 60)',
      parseSeconds,
    )
    .option(
      '--timeout <seconds>',
      'give up when no offer fits within this many seconds (default: wait until Ctrl-C)',
      parseSeconds,
    )
    .option('--no-shell', 'run a single argument as an executable, not through sh -c')
    .addHelpText(
      'after',
      '\nExit status: 0 when the task finished, 1 when it failed, was killed or was refused, ' +
        '2 for usage or configuration errors.\nCtrl-C (or SIGTERM, SIGHUP) kills the task and waits for TASK_KILLED; a second one quits at once.',
    )
    .action(async (args: string[], options: RunCliOptions) => {
      done(await runCommand(args, options, deps()));
    });
}
