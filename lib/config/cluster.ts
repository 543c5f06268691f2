/**
 * How clients (the CLI, the framework SDK, the agent) find a Meso cluster: explicit environment
 * variables first (a deployed stack's outputs), else the local stack's `.meso/dev.json`, found by
 * walking up from the working directory. The control plane's own handlers read `ENV` directly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type AwsConfig, awsConfigFromEnv } from '../adapters/aws-config.ts';
import { ENV } from '../definition/env.ts';
import {
  DEFAULT_PREFIX,
  QUEUES,
  type QueueName,
  TABLES,
  type TableName,
} from '../definition/tables-queues.ts';

export interface ClusterConfig {
  readonly aws: AwsConfig;
  readonly prefix: string;
  readonly queues: Readonly<Record<QueueName, string>>;
  readonly tables: Readonly<Record<TableName, string>>;
  /** Where it came from, for messages. */
  readonly source: string;
}

/** The contents of `.meso/dev.json`, written by `meso dev` when the local stack is ready. */
export interface DevFile {
  readonly region: string;
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
  readonly prefix: string;
  readonly queues: Record<QueueName, string>;
  readonly tables: Record<TableName, string>;
  readonly pid: number;
  readonly startedAt: string;
  /** The work directories of the agents `meso dev` started (for `meso logs`). */
  readonly agentWorkDirs?: readonly string[];
  /** The operator API and dashboard on 127.0.0.1 (for `meso ui`). */
  readonly apiUrl?: string;
}

export const DEV_FILE = join('.meso', 'dev.json');

export function findDevFile(from = process.cwd()): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, DEV_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function configFromDevFile(dev: DevFile, source: string): ClusterConfig {
  return {
    aws: { region: dev.region, dynamoEndpoint: dev.dynamoEndpoint, sqsEndpoint: dev.sqsEndpoint },
    prefix: dev.prefix,
    queues: dev.queues,
    tables: dev.tables,
    source,
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadClusterConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ClusterConfig {
  const fromEnv = Object.keys(QUEUES).every((q) => env[ENV.queues(q as QueueName)]);
  if (fromEnv) {
    return {
      aws: awsConfigFromEnv(env),
      prefix: env[ENV.prefix] || DEFAULT_PREFIX,
      queues: Object.fromEntries(
        Object.keys(QUEUES).map((q) => [q, env[ENV.queues(q as QueueName)]!]),
      ) as Record<QueueName, string>,
      tables: Object.fromEntries(
        Object.keys(TABLES).map((t) => [
          t,
          env[ENV.tables(t as TableName)] || `${env[ENV.prefix] || DEFAULT_PREFIX}-${t}`,
        ]),
      ) as Record<TableName, string>,
      source: 'environment',
    };
  }
  const file = findDevFile(cwd);
  if (!file) {
    throw new ConfigError(
      'No Meso cluster configured. Start the local stack in another terminal with `npm start`, or set ' +
        `${Object.keys(QUEUES)
          .map((q) => ENV.queues(q as QueueName))
          .join(', ')} (the deployed stack's outputs) and AWS_REGION.`,
    );
  }
  const dev = JSON.parse(readFileSync(file, 'utf8')) as DevFile;
  const stale = staleDevFile(dev);
  if (stale) {
    throw new ConfigError(
      `${file} is left over from a local stack that is no longer running (${stale}). ` +
        'Start it again with `npm start` (which replaces the file), or delete the file.',
    );
  }
  return configFromDevFile(dev, file);
}

/**
 * Why a `.meso/dev.json` is stale (its `meso dev` process is gone, after a kill -9 say), or
 * undefined when its process still runs. A pid reused by a process that is not Meso's counts as gone.
 */
export function staleDevFile(dev: Pick<DevFile, 'pid' | 'startedAt'>): string | undefined {
  if (typeof dev.pid !== 'number' || !Number.isInteger(dev.pid) || dev.pid <= 0) return undefined;
  const what = `pid ${dev.pid}${dev.startedAt ? `, started ${dev.startedAt}` : ''}`;
  try {
    process.kill(dev.pid, 0);
  } catch (e) {
    // EPERM: it runs, as another user.
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return `${what}: no such process`;
    return undefined;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${dev.pid}/cmdline`, 'utf8');
  } catch {
    return undefined; // No /proc (not Linux): the pid is all there is to go by.
  }
  return /meso/.test(cmdline) ? undefined : `${what}: that pid is now another program`;
}

/** Environment variables that hand a cluster config to a child process (the agent, a handler). */
export function configToEnv(c: ClusterConfig): Record<string, string> {
  const env: Record<string, string> = { [ENV.prefix]: c.prefix, AWS_REGION: c.aws.region };
  if (c.aws.dynamoEndpoint) env.AWS_ENDPOINT_URL_DYNAMODB = c.aws.dynamoEndpoint;
  if (c.aws.sqsEndpoint) env.AWS_ENDPOINT_URL_SQS = c.aws.sqsEndpoint;
  if (c.aws.endpoint) env.AWS_ENDPOINT_URL = c.aws.endpoint;
  for (const [q, url] of Object.entries(c.queues)) env[ENV.queues(q as QueueName)] = url;
  for (const [t, name] of Object.entries(c.tables)) env[ENV.tables(t as TableName)] = name;
  return env;
}
