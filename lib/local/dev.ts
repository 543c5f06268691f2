/**
 * `meso dev` (= `npm start`): Meso on this machine. Starts DynamoDB Local and the SQS emulator on
 * free loopback ports (or uses `AWS_ENDPOINT_URL`: LocalStack or a real account), creates the
 * tables and queues from the same definition the CDK stack uses, runs the control plane's
 * handlers in-process behind local event-source mappings, starts agents as child processes with
 * this machine's real resources, and writes `.meso/dev.json` so the CLI finds it all. Ctrl-C
 * stops everything and removes the file.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { awsConfigFromEnv, LOCAL_CREDENTIALS } from '../adapters/aws-config.ts';
import { type ClusterConfig, configToEnv, DEV_FILE, type DevFile } from '../config/cluster.ts';
import type { Logger } from '../control/deps.ts';
import { DEFAULT_PREFIX } from '../definition/tables-queues.ts';
import { localAgentOptions } from './agent-hosts.ts';
import { KeptAgent } from './agent-keeper.ts';
import { startLocalControlPlane } from './control-plane.ts';
import { formatControlLine } from './dev-log.ts';
import { type Emulators, startEmulators } from './emulators.ts';
import { waitForEndpoints } from './endpoints.ts';
import { startLocalJobs } from './jobs.ts';
import { startLocalOperatorApi } from './operator-api.ts';
import { readStackPorts, recordStackPorts } from './persist-ports.ts';
import { provision } from './provision.ts';
import { startLocalServices } from './services.ts';

export interface DevOptions {
  /** Agents to start (default 1). */
  readonly agents?: number;
  /** Where agents keep their ids and sandboxes (default `.meso/agent-<n>`). */
  readonly workDir?: string;
  /** Override the agents' resources (Mesos syntax). */
  readonly resources?: string;
  /** Keep emulator state in `.meso/data` across restarts. */
  readonly persist?: boolean;
  /** Resource-name prefix (default `meso`). */
  readonly prefix?: string;
  /** Print the control plane's own log lines. */
  readonly verbose?: boolean;
  /** The operator API's port on 127.0.0.1 (default `MESO_API_PORT`, else any free one). */
  readonly apiPort?: number;
}

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

const devLogger = (verbose: boolean): Logger => ({
  info: (m, e) => verbose && console.error(formatControlLine('INFO', m, e)),
  warn: (m, e) => console.error(formatControlLine('WARN', m, e)),
  error: (m, e) => console.error(formatControlLine('ERROR', m, e)),
});

/**
 * On the embedded emulators each agent signs with its own access key (the local secret), so the
 * identity gateway gives it its own SenderId, as each node has its own session in AWS: one node
 * cannot pass for another. The CLI and the control plane keep the default local key.
 */
export function agentKey(index: number): { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string } {
  return {
    AWS_ACCESS_KEY_ID: `mesoagent${index}`,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  };
}

export async function runDev(opts: DevOptions = {}): Promise<void> {
  const cwd = process.cwd();
  const mesoDir = join(cwd, '.meso');
  const devFile = join(cwd, DEV_FILE);
  mkdirSync(mesoDir, { recursive: true });
  const prefix = opts.prefix ?? DEFAULT_PREFIX;

  let emulators: Emulators | undefined;
  const external = awsConfigFromEnv();
  const dataDir = !external.endpoint && opts.persist ? join(mesoDir, 'data') : undefined;
  // With --persist the stack comes back on the ports it had (lib/local/persist-ports.ts).
  const preferPorts = dataDir ? readStackPorts(dataDir) : {};
  if (external.endpoint) {
    say(`Using AWS_ENDPOINT_URL=${external.endpoint} (no emulators started).`);
    await waitForEndpoints(external, {
      onWaiting: (service, endpoint, problem) =>
        say(`Waiting for ${service} at ${endpoint} to answer (${problem})…`),
    });
  } else {
    say('Starting DynamoDB Local and the SQS emulator…');
    // SQS behind the identity gateway: each access key its own SenderId, as in AWS.
    emulators = await startEmulators({ identityGateway: true, ...(dataDir ? { dataDir, preferPorts } : {}) });
  }
  const aws = emulators
    ? {
        region: emulators.region,
        dynamoEndpoint: emulators.dynamoEndpoint,
        sqsEndpoint: emulators.sqsEndpoint,
      }
    : external;
  const provisioned = await provision({ aws, prefix });
  const cluster: ClusterConfig = {
    aws,
    prefix,
    queues: provisioned.queues,
    tables: provisioned.tables,
    source: devFile,
  };
  const controlPlane = startLocalControlPlane({
    cluster,
    dlqs: provisioned.dlqs,
    log: devLogger(!!opts.verbose),
  });

  const apiPort = opts.apiPort ?? (process.env.MESO_API_PORT ? Number(process.env.MESO_API_PORT) : undefined);
  const api = await startLocalOperatorApi({
    cluster,
    controlPlane,
    ...(apiPort !== undefined
      ? { port: apiPort }
      : preferPorts.api !== undefined
        ? { port: preferPorts.api, portMayMove: true }
        : {}),
  });
  if (dataDir && emulators) {
    for (const moved of recordStackPorts(dataDir, preferPorts, { ...emulators, apiUrl: api.url })) say(moved);
  }
  // The built-in services framework (`meso app`), driven as its Lambda function would be.
  const services = await startLocalServices({ cluster, log: devLogger(!!opts.verbose) });
  const jobs = await startLocalJobs({ cluster, log: devLogger(!!opts.verbose) });

  const agentCount = opts.agents ?? 1;
  const workDirs = Array.from({ length: agentCount }, (_, i) =>
    opts.workDir && agentCount === 1
      ? resolve(opts.workDir)
      : join(opts.workDir ? resolve(opts.workDir) : mesoDir, `agent-${i}`),
  );
  const dev: DevFile = {
    region: aws.region,
    dynamoEndpoint: aws.dynamoEndpoint ?? aws.endpoint ?? '',
    sqsEndpoint: aws.sqsEndpoint ?? aws.endpoint ?? '',
    prefix,
    queues: provisioned.queues,
    tables: provisioned.tables,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    agentWorkDirs: workDirs,
    apiUrl: api.url,
  };
  writeFileSync(devFile, `${JSON.stringify(dev, null, 2)}\n`);

  const agents: KeptAgent[] = [];
  for (const [i, workDir] of workDirs.entries()) {
    const args = [
      join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
      join(ROOT, 'bin/meso-agent.ts'),
      'run',
      // Its share of the machine, and its own loopback address as hostname (lib/local/agent-hosts.ts).
      ...localAgentOptions(i, workDirs.length, workDir, opts.resources),
    ];
    // Kept running: one that dies is said so and started again (lib/local/agent-keeper.ts).
    agents.push(
      new KeptAgent({
        name: `agent-${i}`,
        say,
        spawn: () =>
          spawn(process.execPath, args, {
            cwd,
            env: { ...process.env, ...configToEnv(cluster), ...(emulators ? agentKey(i) : {}) },
            stdio: ['ignore', 'inherit', 'pipe'],
          }),
      }),
    );
  }
  const registered = agents.map((a) => a.firstRegistration);
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(registered), new Promise((r) => (giveUp = setTimeout(r, 30_000)))]);
  clearTimeout(giveUp);

  say('');
  say(`Meso is running: control plane in-process, ${agentCount} agent(s).`);
  say(`  DynamoDB ${dev.dynamoEndpoint}   SQS ${dev.sqsEndpoint}   (${DEV_FILE})`);
  say(`  Dashboard and operator API: ${api.url}/   (docs/operator-api.md)`);
  say('');
  say('Try, in another terminal:');
  say("  npx meso run --cpus 0.5 --mem 64 -- sh -c 'echo hello from meso'");
  say('  npx meso run -- false            # a failing task: state, reason, exit code');
  say("  npx meso app deploy --name web --instances 2 --cmd 'exec sleep 3600' && npx meso apps");
  say("  npx meso job create hello --cron '* * * * *' --cmd 'date' && npx meso job history hello");
  say('');
  say('Ctrl-C stops everything.');

  let stopping = false;
  await new Promise<void>((done) => {
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      say(`\n${signal}: stopping Meso…`);
      // The file goes first: whatever happens next, no client should find a stack that is going.
      rmSync(devFile, { force: true });
      await Promise.all(agents.map((a) => a.stop()));
      // Ctrl-C in a terminal signals the whole process group, emulators included: stopping what
      // is already gone must not keep the rest from stopping.
      await api.close().catch(() => {});
      await services.stop().catch(() => {});
      await jobs.stop().catch(() => {});
      await controlPlane.stop().catch(() => {});
      await emulators?.stop().catch(() => {});
      say('Stopped.');
      done();
    };
    // `on`, not `once`: under `npm start` a Ctrl-C reaches this process twice (from the terminal
    // and relayed by tsx), and a second SIGINT with no listener would kill it mid-cleanup.
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGHUP', () => void stop('SIGHUP'));
  });
}
