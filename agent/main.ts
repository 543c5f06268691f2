/**
 * The `meso-agent` program.
 *
 * - `meso-agent run`: finds the cluster (the agent-calls queue URL in the environment — as
 *   `install` writes it — else a deployed stack's full environment, else the local stack's
 *   `.meso/dev.json`), detects isolation, recovers checkpointed tasks, runs an Agent until
 *   SIGINT/SIGTERM, then stops it cleanly — killing its tasks unless `--keep-tasks` is given.
 *   Every flag has an environment default (`MESO_AGENT_*`, see install.ts).
 * - `meso-agent install [--dry-run]` / `meso-agent uninstall`: the systemd service (install.ts).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type AwsConfig, awsConfigFromEnv } from '../lib/adapters/aws-config.ts';
import { credentialOrigin } from '../lib/adapters/credentials.ts';
import { createSqsHttpClient, signsWithLocalCredentials } from '../lib/adapters/sqs-http.ts';
import { loadClusterConfig } from '../lib/config/cluster.ts';
import { EMPTY, format, ResourceError } from '../lib/core/resources.ts';
import { INSTANCE_QUEUE_TAG } from '../lib/definition/agent-runtime.ts';
import { DEFAULT_PREFIX } from '../lib/definition/tables-queues.ts';
import { AGENT_VERSION, Agent } from './agent.ts';
import { ec2Attributes, looksLikeEc2 } from './ec2.ts';
import {
  AGENT_ENV,
  applyInstall,
  DEFAULT_CONFIG_DIR,
  DEFAULT_INSTALL_WORK_DIR,
  DEFAULT_UNIT_DIR,
  describePlan,
  planInstall,
  uninstall,
} from './install.ts';
import { detectIsolation, type IsolationMode, type IsolationOptions } from './isolation/index.ts';
import { errorMessage, type Log, type LogLevel, stderrLog } from './log.ts';
import { agentResources, parseAttributes, parseShare, shareOf, withOverrides } from './resources.ts';

export interface RunOptions {
  workDir?: string;
  resources?: string;
  attributes?: string;
  heartbeatSeconds?: number;
  keepTasks?: boolean;
  logLevel?: LogLevel;
  /** Default: nobody when the agent runs as root, else the agent's own user. */
  taskUser?: string;
  allowRootTasks?: boolean;
  /** Users a task may name in `command.user`, comma-separated. Default: nobody. */
  allowedTaskUsers?: string;
  isolation?: 'auto' | IsolationMode;
  pidNamespace?: 'auto' | 'on' | 'off';
  containers?: 'auto' | 'docker' | 'podman' | 'none';
  ec2Metadata?: 'auto' | 'on' | 'off';
  /** How often tasks are checked against their limits, ms (hidden; tests). */
  monitorIntervalMs?: number;
  /** Long-poll wait of the command queue, seconds (hidden; tests). Default 20. */
  pollWaitSeconds?: number;
  /** The name the agent registers with. Default: the machine's hostname. */
  hostname?: string;
  /** `i/n`: offer the i-th of n equal shares of the resources (n agents on one machine). */
  share?: string;
}

/** What the agent needs of a cluster: where to send its calls. */
export interface AgentClusterConfig {
  readonly aws: AwsConfig;
  readonly prefix: string;
  readonly agentCallsQueueUrl: string;
  /** Where it came from, for messages. */
  readonly source: string;
  /** The local stack's dev file, if that is the source. */
  readonly devFile?: string;
}

/**
 * The agent needs only the agent-calls queue: `MESO_QUEUE_AGENT_CALLS` (with `MESO_PREFIX`, else
 * the prefix the queue's name carries) is enough; otherwise the full cluster configuration.
 */
export function agentClusterConfig(env: NodeJS.ProcessEnv = process.env): AgentClusterConfig {
  const url = env[AGENT_ENV.agentCalls];
  if (url) {
    const name = url.split('/').pop() ?? '';
    // Control-plane queues are `<prefix>-cp-<name>` (lib/definition/tables-queues.ts).
    const fromName = name.endsWith('-cp-agent-calls.fifo')
      ? name.slice(0, -'-cp-agent-calls.fifo'.length)
      : undefined;
    return {
      aws: awsConfigFromEnv(env),
      prefix: env[AGENT_ENV.prefix] || fromName || DEFAULT_PREFIX,
      agentCallsQueueUrl: url,
      source: 'environment',
    };
  }
  const c = loadClusterConfig(env);
  return {
    aws: c.aws,
    prefix: c.prefix,
    agentCallsQueueUrl: c.queues.agentCalls,
    source: c.source,
    ...(c.source.endsWith('.json') ? { devFile: c.source } : {}),
  };
}

/** Where the agent keeps its id and sandboxes when `--work-dir` is not given. */
export function defaultWorkDir(
  config: Pick<AgentClusterConfig, 'source'>,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (env[AGENT_ENV.workDir]) return resolve(env[AGENT_ENV.workDir]!);
  if (config.source.endsWith('.json')) {
    // An agent started by hand beside the local stack (whose own are `.meso/agent-<n>`).
    return resolve(dirname(config.source), 'agent');
  }
  return DEFAULT_INSTALL_WORK_DIR;
}

/** The environment variable (in the installed config file) behind `--allowed-task-users`. */
export const ALLOWED_TASK_USERS_ENV = 'MESO_AGENT_ALLOWED_TASK_USERS';

/** Flags first, then `MESO_AGENT_*` from the environment (the installed config file). */
export function withEnvDefaults(opts: RunOptions, env: NodeJS.ProcessEnv = process.env): RunOptions {
  const e = (k: keyof typeof AGENT_ENV) => env[AGENT_ENV[k]] || undefined;
  const hb = e('heartbeatSeconds');
  return {
    ...opts,
    resources: opts.resources ?? e('resources'),
    attributes: opts.attributes ?? e('attributes'),
    taskUser: opts.taskUser ?? e('taskUser'),
    allowRootTasks: opts.allowRootTasks ?? (e('allowRootTasks') === 'true' ? true : undefined),
    allowedTaskUsers: opts.allowedTaskUsers ?? (env[ALLOWED_TASK_USERS_ENV] || undefined),
    isolation: opts.isolation ?? (e('isolation') as RunOptions['isolation']),
    pidNamespace: opts.pidNamespace ?? (e('pidNamespace') as RunOptions['pidNamespace']),
    containers: opts.containers ?? (e('containers') as RunOptions['containers']),
    ec2Metadata: opts.ec2Metadata ?? (e('ec2Metadata') as RunOptions['ec2Metadata']),
    heartbeatSeconds: opts.heartbeatSeconds ?? (hb !== undefined ? Number(hb) : undefined),
  };
}

/** The isolation the flags ask for (the task user defaults to nobody for a root agent). */
export function isolationOptions(opts: RunOptions): IsolationOptions {
  const root = process.geteuid?.() === 0;
  const taskUser = opts.taskUser ?? (root && !opts.allowRootTasks ? 'nobody' : undefined);
  return {
    mode: opts.isolation ?? 'auto',
    pidNamespace: opts.pidNamespace === 'on' ? true : opts.pidNamespace === 'off' ? false : 'auto',
    ...(taskUser !== undefined ? { taskUser } : {}),
    allowRootTasks: !!opts.allowRootTasks,
    // Tasks never get the node's instance role (where the agent can enforce it).
    blockMetadata: 'auto',
    ...(opts.allowedTaskUsers !== undefined
      ? {
          allowedTaskUsers: opts.allowedTaskUsers
            .split(',')
            .map((u) => u.trim())
            .filter(Boolean),
        }
      : {}),
    containers: opts.containers ?? 'auto',
  };
}

async function ec2AttributesFor(mode: RunOptions['ec2Metadata'], log: Log): Promise<Record<string, string>> {
  if (mode === 'off' || (mode !== 'on' && !looksLikeEc2())) return {};
  try {
    return await ec2Attributes();
  } catch (e) {
    log('warn', 'could not read EC2 instance metadata; no ec2.* attributes', { error: errorMessage(e) });
    return {};
  }
}

/** Runs an agent until a signal; resolves with the process exit code. */
export async function runAgent(rawOpts: RunOptions, log?: Log): Promise<number> {
  const opts = withEnvDefaults(rawOpts);
  log ??= stderrLog(opts.logLevel ?? (process.env[AGENT_ENV.logLevel] as LogLevel | undefined) ?? 'info');
  // Bad flags are reported before anything else is looked at.
  const given = parseAttributes(opts.attributes);
  withOverrides(EMPTY, opts.resources);
  const share = opts.share !== undefined ? parseShare(opts.share) : undefined;
  const config = agentClusterConfig();
  const workDir = resolve(opts.workDir ?? defaultWorkDir(config));
  // Detected before the agent starts, so a bad --task-user or --isolation stops it at once.
  const [isolation, ec2] = await Promise.all([
    detectIsolation(isolationOptions(opts)),
    ec2AttributesFor(opts.ec2Metadata, log),
  ]);
  const attributes = { ...ec2, ...given };
  const agentId = process.env[AGENT_ENV.agentId];
  if (agentId) {
    mkdirSync(workDir, { recursive: true });
    const file = resolve(workDir, 'agent-id');
    if (!existsSync(file)) writeFileSync(file, `${agentId}\n`);
  }
  // Disk is measured where the work directory lives: it must exist first.
  if (share !== undefined) mkdirSync(workDir, { recursive: true });
  const agent = new Agent({
    sqs: createSqsHttpClient(config.aws),
    agentCallsQueueUrl: config.agentCallsQueueUrl,
    prefix: config.prefix,
    workDir,
    ...(share !== undefined
      ? { resources: shareOf(agentResources(workDir, opts.resources), share.index, share.count) }
      : opts.resources !== undefined
        ? { resources: opts.resources }
        : {}),
    attributes,
    ...(opts.heartbeatSeconds !== undefined ? { heartbeatIntervalMs: opts.heartbeatSeconds * 1000 } : {}),
    isolation,
    ...(opts.monitorIntervalMs !== undefined ? { monitorIntervalMs: opts.monitorIntervalMs } : {}),
    ...(opts.pollWaitSeconds !== undefined ? { pollWaitSeconds: opts.pollWaitSeconds } : {}),
    ...(opts.hostname !== undefined ? { hostname: opts.hostname } : {}),
    ...(process.env[AGENT_ENV.instanceArn]
      ? { queueTags: { [INSTANCE_QUEUE_TAG]: process.env[AGENT_ENV.instanceArn]! } }
      : {}),
    log,
  });
  log('info', `meso-agent ${AGENT_VERSION} on ${os.hostname()}: cluster from ${config.source}`, {
    workDir,
    credentials: signsWithLocalCredentials(config.aws) ? 'local (emulators)' : credentialOrigin(),
  });

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

interface InstallCliOptions {
  queueUrl?: string;
  region?: string;
  prefix?: string;
  profile?: string;
  credentialsFile?: string;
  endpoint?: string;
  resources?: string;
  attributes?: string;
  taskUser?: string;
  allowRootTasks?: boolean;
  isolation?: string;
  containers?: string;
  agentId?: string;
  instanceArn?: string;
  workDir?: string;
  unitDir?: string;
  configDir?: string;
  dryRun?: boolean;
}

function installCommand(o: InstallCliOptions, out: (s: string) => void): number {
  const env = process.env;
  const queueUrl = o.queueUrl ?? env[AGENT_ENV.agentCalls];
  if (!queueUrl) {
    throw new InvalidArgumentError(
      '--queue-url is required: the agent-calls queue URL (the stack output QueueAgentCallsUrl)',
    );
  }
  if (o.attributes) parseAttributes(o.attributes);
  if (o.resources) withOverrides(EMPTY, o.resources);
  const plan = planInstall({
    agentCallsQueueUrl: queueUrl,
    region: o.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(o.prefix ? { prefix: o.prefix } : {}),
    ...(o.profile ? { profile: o.profile } : {}),
    ...(o.credentialsFile ? { credentialsFile: o.credentialsFile } : {}),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.resources ? { resources: o.resources } : {}),
    ...(o.attributes ? { attributes: o.attributes } : {}),
    ...(o.taskUser ? { taskUser: o.taskUser } : {}),
    ...(o.allowRootTasks ? { allowRootTasks: true } : {}),
    ...(o.isolation ? { isolation: o.isolation } : {}),
    ...(o.containers ? { containers: o.containers } : {}),
    ...(o.agentId ? { agentId: o.agentId } : {}),
    ...(o.instanceArn ? { instanceArn: o.instanceArn } : {}),
    ...(o.workDir ? { workDir: resolve(o.workDir) } : {}),
    ...(o.unitDir ? { unitDir: o.unitDir } : {}),
    ...(o.configDir ? { configDir: o.configDir } : {}),
  });
  if (o.dryRun) {
    out(describePlan(plan));
    return 0;
  }
  applyInstall(plan, { ...(o.agentId ? { agentId: o.agentId } : {}) });
  out(`installed: ${plan.unitFile}, ${plan.envFile}; the agent is starting (journalctl -u meso-agent -f)\n`);
  return 0;
}

export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('meso-agent')
    .description('The Meso node agent: registers this machine with a Meso cluster and runs its tasks.')
    .version(AGENT_VERSION);
  program
    .command('run')
    .description('register with the cluster and run tasks until SIGINT/SIGTERM')
    .option(
      '--work-dir <dir>',
      `where the agent id, checkpoints and task sandboxes live (env ${AGENT_ENV.workDir})`,
    )
    .option(
      '--resources <spec>',
      'override detected resources, Mesos syntax: "cpus:4;mem:8192;disk:10000;ports:[31000-32000]"',
    )
    .option(
      '--share <i/n>',
      'offer the i-th of n equal shares of the resources, ports included (n agents on one machine)',
    )
    .option('--attributes <spec>', 'node attributes, "rack:r1;zone:a"')
    .option('--hostname <name>', "the name to register with (default: the machine's hostname)")
    .option('--task-user <user>', 'run tasks as this user (default: nobody when the agent is root)')
    .option('--allow-root-tasks', 'allow tasks to run as root (never the default)')
    .option(
      '--allowed-task-users <users>',
      `users a task may name in command.user, comma-separated (default: nobody; env ${ALLOWED_TASK_USERS_ENV})`,
    )
    .option(
      '--isolation <mode>',
      'auto, cgroups-v2, cgroups-v1, process-tree or none',
      choice(['auto', 'cgroups-v2', 'cgroups-v1', 'process-tree', 'none']),
    )
    .option(
      '--pid-namespace <when>',
      'auto, on or off: a PID namespace per task',
      choice(['auto', 'on', 'off']),
    )
    .option(
      '--containers <engine>',
      'auto, docker, podman or none',
      choice(['auto', 'docker', 'podman', 'none']),
    )
    .option(
      '--ec2-metadata <when>',
      'auto (only on EC2), on or off: ec2.* attributes',
      choice(['auto', 'on', 'off']),
    )
    .option('--heartbeat-seconds <n>', 'heartbeat at most this many seconds apart', positiveNumber)
    .option(
      '--keep-tasks',
      'leave tasks running when the agent stops; the next agent recovers them (default: kill them)',
    )
    .option('--log-level <level>', 'debug, info, warn or error', logLevel)
    .addOption(
      new Option('--monitor-interval-ms <ms>', 'how often limits are checked')
        .argParser(positiveNumber)
        .hideHelp(),
    )
    .addOption(
      new Option('--poll-wait-seconds <s>', 'long-poll wait on the command queue')
        .argParser(positiveNumber)
        .hideHelp(),
    )
    .action(async (opts: RunOptions) => {
      try {
        process.exitCode = await runAgent(opts);
      } catch (e) {
        const known =
          e instanceof ResourceError || ['ConfigError', 'IsolationError'].includes((e as Error).name);
        process.stderr.write(`meso-agent: ${known ? (e as Error).message : errorMessage(e)}\n`);
        process.exitCode = 1;
      }
    });
  program
    .command('install')
    .description(
      'install the agent as a systemd service (writes a unit and a configuration file, then starts it)',
    )
    .option(
      '--queue-url <url>',
      `the cluster's agent-calls queue URL (stack output QueueAgentCallsUrl; env ${AGENT_ENV.agentCalls})`,
    )
    .option('--region <region>', 'AWS region (default AWS_REGION)')
    .option('--prefix <prefix>', "the cluster's prefix (default: from the queue's name)")
    .option('--profile <name>', 'AWS profile the agent takes its credentials from')
    .option('--credentials-file <path>', 'the shared credentials file that holds that profile')
    .option('--endpoint <url>', 'AWS_ENDPOINT_URL (LocalStack, a VPC endpoint)')
    .option('--resources <spec>', 'resources to offer (default: detected)')
    .option('--attributes <spec>', 'node attributes, "rack:r1;zone:a"')
    .option('--task-user <user>', 'run tasks as this user (default nobody)')
    .option('--allow-root-tasks', 'allow tasks to run as root')
    .option('--isolation <mode>', 'auto, cgroups-v2, cgroups-v1, process-tree or none')
    .option('--containers <engine>', 'auto, docker, podman or none')
    .option('--agent-id <id>', 'use this agent id (e.g. the instance id) instead of a random one')
    .option('--instance-arn <arn>', "on the EC2 fleet: this instance's ARN, the tag its command queue needs")
    .option('--work-dir <dir>', `the agent's work directory (default ${DEFAULT_INSTALL_WORK_DIR})`)
    .option('--unit-dir <dir>', `where the systemd unit goes (default ${DEFAULT_UNIT_DIR})`)
    .option('--config-dir <dir>', `where the configuration goes (default ${DEFAULT_CONFIG_DIR})`)
    .option('--dry-run', 'print the unit and configuration it would write, and do nothing')
    .action((o: InstallCliOptions) => {
      try {
        process.exitCode = installCommand(o, out);
      } catch (e) {
        process.stderr.write(`meso-agent install: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  program
    .command('uninstall')
    .description("stop and remove the agent's service, kill the tasks it left, remove its configuration")
    .option('--work-dir <dir>', `the agent's work directory (default ${DEFAULT_INSTALL_WORK_DIR})`)
    .option('--purge', 'also remove the work directory (sandboxes, checkpoints, agent id)')
    .option('--unit-dir <dir>', `default ${DEFAULT_UNIT_DIR}`)
    .option('--config-dir <dir>', `default ${DEFAULT_CONFIG_DIR}`)
    .action(async (o: { workDir?: string; purge?: boolean; unitDir?: string; configDir?: string }) => {
      try {
        const done = await uninstall({
          ...(o.workDir ? { workDir: resolve(o.workDir) } : {}),
          ...(o.unitDir ? { unitDir: o.unitDir } : {}),
          ...(o.configDir ? { configDir: o.configDir } : {}),
          purge: !!o.purge,
        });
        out(done.length > 0 ? `${done.join('\n')}\n` : 'nothing to remove\n');
      } catch (e) {
        process.stderr.write(`meso-agent uninstall: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  return program;
}

function choice<T extends string>(values: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`expected ${values.join(', ')}`);
    return v as T;
  };
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
