/**
 * `meso dev` (= `npm start`): Meso on this machine. Starts DynamoDB Local and the SQS emulator on
 * free loopback ports (or uses `AWS_ENDPOINT_URL`: LocalStack or a real account), creates the
 * tables and queues from the same definition the CDK stack uses, runs the control plane's
 * handlers in-process behind local event-source mappings, starts agents as child processes with
 * this machine's real resources, and writes `.meso/dev.json` so the CLI finds it all. Ctrl-C
 * stops everything and removes the file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { awsConfigFromEnv } from '../adapters/aws-config.ts';
import { type ClusterConfig, configToEnv, DEV_FILE, type DevFile } from '../config/cluster.ts';
import type { Logger } from '../control/deps.ts';
import { DEFAULT_PREFIX } from '../definition/tables-queues.ts';
import { startLocalControlPlane } from './control-plane.ts';
import { type Emulators, startEmulators } from './emulators.ts';
import { startLocalJobs } from './jobs.ts';
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
}

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

const devLogger = (verbose: boolean): Logger => ({
  info: (m, e) => verbose && console.error(`[control] ${m}`, e ? JSON.stringify(e) : ''),
  warn: (m, e) => console.error(`[control] WARN ${m}`, e ? JSON.stringify(e) : ''),
  error: (m, e) => console.error(`[control] ERROR ${m}`, e ? JSON.stringify(e) : ''),
});

export async function runDev(opts: DevOptions = {}): Promise<void> {
  const cwd = process.cwd();
  const mesoDir = join(cwd, '.meso');
  const devFile = join(cwd, DEV_FILE);
  mkdirSync(mesoDir, { recursive: true });
  const prefix = opts.prefix ?? DEFAULT_PREFIX;

  let emulators: Emulators | undefined;
  const external = awsConfigFromEnv();
  if (external.endpoint) {
    say(`Using AWS_ENDPOINT_URL=${external.endpoint} (no emulators started).`);
  } else {
    say('Starting DynamoDB Local and the SQS emulator…');
    emulators = await startEmulators({ ...(opts.persist ? { dataDir: join(mesoDir, 'data') } : {}) });
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
  };
  writeFileSync(devFile, `${JSON.stringify(dev, null, 2)}\n`);

  const agents: ChildProcess[] = [];
  const registered: Promise<void>[] = [];
  for (const [i, workDir] of workDirs.entries()) {
    const args = [
      join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
      join(ROOT, 'bin/meso-agent.ts'),
      'run',
      '--work-dir',
      workDir,
    ];
    if (opts.resources) args.push('--resources', opts.resources);
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, ...configToEnv(cluster) },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    registered.push(
      new Promise((done) => {
        child.stderr?.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          process.stderr.write(text.replace(/^(?=.)/gm, `[agent-${i}] `));
          if (/registered/i.test(text)) done();
        });
        child.once('exit', () => done());
      }),
    );
    agents.push(child);
  }
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(registered), new Promise((r) => (giveUp = setTimeout(r, 30_000)))]);
  clearTimeout(giveUp);

  say('');
  say(`Meso is running: control plane in-process, ${agentCount} agent(s).`);
  say(`  DynamoDB ${dev.dynamoEndpoint}   SQS ${dev.sqsEndpoint}   (${DEV_FILE})`);
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
      await Promise.all(
        agents.map(
          (a) =>
            new Promise<void>((exited) => {
              if (a.exitCode !== null || a.signalCode !== null) return exited();
              a.once('exit', () => exited());
              a.kill('SIGTERM');
              setTimeout(() => a.kill('SIGKILL'), 10_000).unref();
            }),
        ),
      );
      // Ctrl-C in a terminal signals the whole process group, emulators included: stopping what
      // is already gone must not keep the rest from stopping.
      await services.stop().catch(() => {});
      await jobs.stop().catch(() => {});
      await controlPlane.stop().catch(() => {});
      await emulators?.stop().catch(() => {});
      say('Stopped.');
      done();
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}
