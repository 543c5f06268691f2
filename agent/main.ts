/**
 * `meso-agent run`: finds the cluster (environment, else the local stack's `.meso/dev.json`),
 * runs an Agent until SIGINT/SIGTERM, then stops it cleanly — killing its tasks unless
 * `--keep-tasks` is given.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { createSqsClient } from '../lib/adapters/sqs.ts';
import { type ClusterConfig, type DevFile, loadClusterConfig } from '../lib/config/cluster.ts';
import { EMPTY, format, ResourceError } from '../lib/core/resources.ts';
import { AGENT_VERSION, Agent } from './agent.ts';
import { errorMessage, type Log, type LogLevel, stderrLog } from './log.ts';
import { parseAttributes, withOverrides } from './resources.ts';

export interface RunOptions {
  workDir?: string;
  resources?: string;
  attributes?: string;
  heartbeatSeconds?: number;
  keepTasks?: boolean;
  logLevel?: LogLevel;
}

/** Where the agent keeps its id and sandboxes when `--work-dir` is not given. */
export function defaultWorkDir(config: ClusterConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (env.MESO_AGENT_WORK_DIR) return resolve(env.MESO_AGENT_WORK_DIR);
  if (config.source.endsWith('.json')) {
    // The local stack: `.meso/dev.json` may name one; else `.meso/agent` beside it.
    try {
      const dev = JSON.parse(readFileSync(config.source, 'utf8')) as DevFile;
      if (dev.agentWorkDir) return resolve(dirname(config.source), dev.agentWorkDir);
    } catch {
      // Fall through to the default beside the file.
    }
    return resolve(dirname(config.source), 'agent');
  }
  return '/var/lib/meso-agent';
}

/** Runs an agent until a signal; resolves with the process exit code. */
export async function runAgent(
  opts: RunOptions,
  log: Log = stderrLog(opts.logLevel ?? 'info'),
): Promise<number> {
  // Bad flags are reported before anything else is looked at.
  const attributes = parseAttributes(opts.attributes);
  withOverrides(EMPTY, opts.resources);
  const config = loadClusterConfig();
  const workDir = resolve(opts.workDir ?? defaultWorkDir(config));
  const agent = new Agent({
    sqs: createSqsClient(config.aws),
    agentCallsQueueUrl: config.queues.agentCalls,
    prefix: config.prefix,
    workDir,
    ...(opts.resources !== undefined ? { resources: opts.resources } : {}),
    attributes,
    ...(opts.heartbeatSeconds !== undefined ? { heartbeatIntervalMs: opts.heartbeatSeconds * 1000 } : {}),
    log,
  });
  log('info', `meso-agent ${AGENT_VERSION}: cluster from ${config.source}`, { workDir });

  const killTasks = !opts.keepTasks;
  // However the process ends, no task outlives it unless --keep-tasks was given.
  const onExit = () => {
    if (killTasks) agent.killAllNow();
  };
  process.once('exit', onExit);

  await agent.start();
  log('info', `offering ${format(agent.resources)}`, { attributes });
  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
  log('info', `${signal}: stopping${killTasks ? ' and killing tasks' : '; tasks keep running'}`);
  // A second signal ends the agent at once (the exit handler SIGKILLs the tasks).
  const force = (s: NodeJS.Signals) => {
    log('warn', `${s} again: exiting now`);
    process.exit(130);
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await agent.stop({ killTasks });
  return 0;
}

export function buildProgram(): Command {
  const program = new Command('meso-agent')
    .description('The Meso node agent: registers this machine with a Meso cluster and runs its tasks.')
    .version(AGENT_VERSION);
  program
    .command('run')
    .description('register with the cluster and run tasks until SIGINT/SIGTERM')
    .option('--work-dir <dir>', 'where the agent id and task sandboxes live')
    .option(
      '--resources <spec>',
      'override detected resources, Mesos syntax: "cpus:4;mem:8192;disk:10000;ports:[31000-32000]"',
    )
    .option('--attributes <spec>', 'node attributes, "rack:r1;zone:a"')
    .option('--heartbeat-seconds <n>', 'heartbeat at most this many seconds apart', positiveNumber)
    .option('--keep-tasks', 'leave tasks running when the agent stops (default: kill them)')
    .option('--log-level <level>', 'debug, info, warn or error', logLevel, 'info' as LogLevel)
    .action(async (opts: RunOptions) => {
      try {
        process.exitCode = await runAgent(opts);
      } catch (e) {
        const known = e instanceof ResourceError || (e as Error).name === 'ConfigError';
        process.stderr.write(`meso-agent: ${known ? (e as Error).message : errorMessage(e)}\n`);
        process.exitCode = 1;
      }
    });
  return program;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function logLevel(value: string): LogLevel {
  if (!['debug', 'info', 'warn', 'error'].includes(value)) {
    throw new InvalidArgumentError('expected debug, info, warn or error');
  }
  return value as LogLevel;
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  await buildProgram().parseAsync([...argv]);
}
