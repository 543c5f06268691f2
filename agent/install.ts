/**
 * `meso-agent install` / `uninstall`: one command turns a machine into a Meso node.
 *
 * install writes
 * - `/etc/meso-agent/agent.env`: the agent's configuration as environment variables (the
 *   cluster's agent-calls queue URL and prefix, region, credentials profile, resources,
 *   attributes, task user, isolation), read by systemd's `EnvironmentFile=` and by `meso-agent
 *   run` as the defaults of its flags;
 * - `/etc/systemd/system/meso-agent.service`: a unit that runs `meso-agent run --keep-tasks`
 *   with `KillMode=process` (tasks outlive agent restarts and upgrades; the agent recovers them
 *   from its checkpoint) and `Delegate=yes` (the agent manages its tasks' cgroups below its own);
 * then `systemctl daemon-reload` and `systemctl enable --now meso-agent`.
 * `--dry-run` prints all of that instead of doing it.
 *
 * uninstall stops and disables the service, kills the tasks it left running (from the
 * checkpoint), removes the unit and the configuration, and with `--purge` the work directory.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AGENT_ENV_VARS, NODE_FLAGS } from '../lib/definition/agent-runtime.ts';
import { ENV } from '../lib/definition/env.ts';
import { listRuns } from './checkpoint.ts';
import { Cgroups, type TaskCgroupState } from './isolation/cgroups.ts';
import { isSameLiveProcess } from './isolation/proc.ts';

export const DEFAULT_UNIT_NAME = 'meso-agent';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
export const DEFAULT_CONFIG_DIR = '/etc/meso-agent';
export const DEFAULT_INSTALL_WORK_DIR = '/var/lib/meso-agent';
/** Where install copies a bundled agent (`dist/meso-agent.mjs`). */
export const DEFAULT_BUNDLE_DIR = '/opt/meso-agent';

/** The environment variables `meso-agent run` takes its defaults from. */
export const AGENT_ENV = {
  agentCalls: ENV.queues('agentCalls'),
  prefix: ENV.prefix,
  workDir: 'MESO_AGENT_WORK_DIR',
  resources: 'MESO_AGENT_RESOURCES',
  attributes: 'MESO_AGENT_ATTRIBUTES',
  taskUser: 'MESO_AGENT_TASK_USER',
  allowRootTasks: 'MESO_AGENT_ALLOW_ROOT_TASKS',
  isolation: 'MESO_AGENT_ISOLATION',
  pidNamespace: 'MESO_AGENT_PID_NAMESPACE',
  containers: 'MESO_AGENT_CONTAINERS',
  ec2Metadata: 'MESO_AGENT_EC2_METADATA',
  heartbeatSeconds: 'MESO_AGENT_HEARTBEAT_SECONDS',
  agentId: 'MESO_AGENT_ID',
  /** A fleet instance's own ARN: its command queue is tagged with it (INSTANCE_QUEUE_TAG). */
  instanceArn: 'MESO_AGENT_INSTANCE_ARN',
  logLevel: 'MESO_AGENT_LOG_LEVEL',
} as const;

export interface InstallOptions {
  /** The cluster's `<prefix>-agent-calls.fifo` URL (the stack output QueueAgentCallsUrl). */
  readonly agentCallsQueueUrl: string;
  readonly region: string;
  readonly prefix?: string;
  /** AWS shared-config profile the agent's credentials come from. Default: the default chain. */
  readonly profile?: string;
  /** AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE for that profile. */
  readonly credentialsFile?: string;
  readonly configFile?: string;
  /** AWS_ENDPOINT_URL (LocalStack, a VPC endpoint). */
  readonly endpoint?: string;
  readonly resources?: string;
  readonly attributes?: string;
  /** Default nobody. */
  readonly taskUser?: string;
  readonly allowRootTasks?: boolean;
  readonly isolation?: string;
  readonly containers?: string;
  readonly agentId?: string;
  /** The EC2 instance's ARN, on the fleet: the agent tags its command queue with it. */
  readonly instanceArn?: string;
  /** Default /var/lib/meso-agent. */
  readonly workDir?: string;
  readonly unitName?: string;
  readonly unitDir?: string;
  readonly configDir?: string;
  /** The command systemd runs (before `run`). Default: this node and this agent's entry point. */
  readonly execStart?: readonly string[];
  /**
   * The system's hashed certificate directory, for TLS through the system trust store
   * (`--use-openssl-ca`): default found by `systemCertDir()`; null for Node's bundled store.
   */
  readonly certDir?: string | null;
}

export interface InstallPlan {
  readonly unitFile: string;
  readonly unit: string;
  readonly envFile: string;
  readonly env: string;
  readonly workDir: string;
  /** A bundle to copy into place first: [from, to]. */
  readonly copy?: readonly [string, string];
  readonly commands: readonly (readonly string[])[];
}

/** A value for a systemd EnvironmentFile line: double-quoted, with `\` `"` `$` escaped. */
export function envValue(v: string): string {
  if (/[\n\r]/.test(v))
    throw new Error(`configuration values cannot contain line breaks: ${JSON.stringify(v)}`);
  return `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/** Quotes one ExecStart word the way systemd splits them. */
function unitWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Hashed certificate directories (OpenSSL's `c_rehash` layout): Debian, Ubuntu, SUSE; RHEL 9, Fedora, Amazon Linux 2023. */
export const CERT_DIRS = ['/etc/ssl/certs', '/etc/pki/ca-trust/extracted/pem/directory-hash'] as const;

/**
 * The first of `candidates` that holds hashed certificates. With it the agent verifies TLS
 * against the system's trust store, which OpenSSL reads one certificate at a time as a handshake
 * needs it — about 3 MB less resident than Node's bundled store, which is parsed whole (see
 * docs/benchmarks.md). Node's own OpenSSL looks in `/usr/local/ssl`, so the directory is named
 * (`SSL_CERT_DIR`); where none is found the agent keeps Node's store.
 */
export function systemCertDir(candidates: readonly string[] = CERT_DIRS): string | undefined {
  return candidates.find((d) => {
    try {
      return readdirSync(d).some((f) => /^[0-9a-f]{8}\.\d+$/.test(f));
    } catch {
      return false;
    }
  });
}

/** How to run this agent from systemd: the bundle (copied to /opt), the JS shim, or tsx and the sources. */
export function defaultExecStart(
  entry: string = process.argv[1] ?? '',
  node: string = process.execPath,
): { execStart: string[]; copy?: [string, string] } {
  const real = entry ? realpathSync(entry) : entry;
  if (real.endsWith('.ts')) {
    // tsx as a loader in the agent's own process (its CLI would run the agent in a child that
    // systemd's KillMode=process would leave behind).
    const root = resolve(dirname(real), '..');
    const loader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    return { execStart: [node, ...NODE_FLAGS, '--import', loader, real] };
  }
  if (basename(real) === 'meso-agent.js') return { execStart: [node, ...NODE_FLAGS, real] };
  // A bundle: copied to a stable place, so the unit does not depend on where it was unpacked.
  const target = join(DEFAULT_BUNDLE_DIR, 'meso-agent.mjs');
  return {
    execStart: [node, ...NODE_FLAGS, target],
    ...(real !== target ? { copy: [real, target] as [string, string] } : {}),
  };
}

export function renderEnv(o: InstallOptions, now = new Date()): string {
  const workDir = o.workDir ?? DEFAULT_INSTALL_WORK_DIR;
  const lines: [string, string | undefined][] = [
    [AGENT_ENV.agentCalls, o.agentCallsQueueUrl],
    [AGENT_ENV.prefix, o.prefix],
    ['AWS_REGION', o.region],
    ['AWS_PROFILE', o.profile],
    ['AWS_SHARED_CREDENTIALS_FILE', o.credentialsFile],
    ['AWS_CONFIG_FILE', o.configFile],
    ['AWS_ENDPOINT_URL', o.endpoint],
    [AGENT_ENV.workDir, workDir],
    [AGENT_ENV.resources, o.resources],
    [AGENT_ENV.attributes, o.attributes],
    [AGENT_ENV.taskUser, o.taskUser ?? 'nobody'],
    [AGENT_ENV.allowRootTasks, o.allowRootTasks ? 'true' : undefined],
    [AGENT_ENV.isolation, o.isolation],
    [AGENT_ENV.containers, o.containers],
    [AGENT_ENV.agentId, o.agentId],
    [AGENT_ENV.instanceArn, o.instanceArn],
  ];
  return [
    `# Meso agent configuration, written by \`meso-agent install\` on ${now.toISOString()}.`,
    '# systemd reads it (EnvironmentFile=); `meso-agent run` takes its defaults from it, and its',
    '# flags override it. Restart the service after a change: systemctl restart meso-agent',
    ...lines.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${envValue(v!)}`),
    '',
  ].join('\n');
}

export function renderUnit(
  o: InstallOptions & { envFile: string; execStart: readonly string[]; certDir?: string | null },
): string {
  const execStart = o.certDir ? [o.execStart[0]!, '--use-openssl-ca', ...o.execStart.slice(1)] : o.execStart;
  return [
    '[Unit]',
    'Description=Meso agent: runs tasks for a Meso cluster on this node',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `EnvironmentFile=${o.envFile}`,
    ...Object.entries(AGENT_ENV_VARS).map(([k, v]) => `Environment=${k}=${v}`),
    ...(o.certDir ? [`Environment=SSL_CERT_DIR=${o.certDir}`] : []),
    `ExecStart=${[...execStart, 'run', '--keep-tasks'].map(unitWord).join(' ')}`,
    'Restart=always',
    'RestartSec=5',
    // Stopping or restarting the agent leaves its tasks running; the next agent recovers them.
    'KillMode=process',
    // The agent creates its tasks' cgroups below its own.
    'Delegate=yes',
    'LimitNOFILE=65536',
    'TimeoutStopSec=30',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Everything install would do, without doing it. */
export function planInstall(o: InstallOptions, now = new Date()): InstallPlan {
  if (!/^https?:\/\/\S+$/.test(o.agentCallsQueueUrl)) {
    throw new Error(`--queue-url must be the agent-calls queue URL, got "${o.agentCallsQueueUrl}"`);
  }
  const unitName = o.unitName ?? DEFAULT_UNIT_NAME;
  const envFile = join(o.configDir ?? DEFAULT_CONFIG_DIR, 'agent.env');
  const found = o.execStart ? { execStart: [...o.execStart] } : defaultExecStart();
  return {
    unitFile: join(o.unitDir ?? DEFAULT_UNIT_DIR, `${unitName}.service`),
    unit: renderUnit({
      ...o,
      envFile,
      execStart: found.execStart,
      certDir: o.certDir === undefined ? systemCertDir() : o.certDir,
    }),
    envFile,
    env: renderEnv(o, now),
    workDir: o.workDir ?? DEFAULT_INSTALL_WORK_DIR,
    ...('copy' in found && found.copy ? { copy: found.copy } : {}),
    commands: [
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', `${unitName}.service`],
    ],
  };
}

export function describePlan(plan: InstallPlan): string {
  return [
    ...(plan.copy ? [`# would copy ${plan.copy[0]} to ${plan.copy[1]}`] : []),
    `# would create ${plan.workDir} (mode 0755)`,
    `# would write ${plan.envFile} (mode 0600)`,
    plan.env.trimEnd(),
    '',
    `# would write ${plan.unitFile} (mode 0644)`,
    plan.unit.trimEnd(),
    '',
    ...plan.commands.map((c) => `# would run: ${c.join(' ')}`),
    '',
  ].join('\n');
}

export type Runner = (file: string, args: readonly string[]) => void;

const runCommand: Runner = (file, args) => {
  execFileSync(file, [...args], { stdio: 'inherit' });
};

/** Whether systemd manages this machine (PID 1). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

/** Carries out an install plan. Throws (with what is done so far written) when a step fails. */
export function applyInstall(
  plan: InstallPlan,
  o: { agentId?: string; run?: Runner; systemd?: boolean } = {},
): void {
  if (plan.copy) {
    mkdirSync(dirname(plan.copy[1]), { recursive: true });
    writeFileSync(plan.copy[1], readFileSync(plan.copy[0]), { mode: 0o755 });
  }
  mkdirSync(plan.workDir, { recursive: true, mode: 0o755 });
  chmodSync(plan.workDir, 0o755);
  if (o.agentId && !existsSync(join(plan.workDir, 'agent-id'))) {
    writeFileSync(join(plan.workDir, 'agent-id'), `${o.agentId}\n`, { mode: 0o644 });
  }
  mkdirSync(dirname(plan.envFile), { recursive: true, mode: 0o755 });
  // The configuration may name credentials files and endpoints: root only.
  writeFileSync(plan.envFile, plan.env, { mode: 0o600 });
  mkdirSync(dirname(plan.unitFile), { recursive: true });
  writeFileSync(plan.unitFile, plan.unit, { mode: 0o644 });
  if (!(o.systemd ?? systemdRunning())) {
    throw new Error(
      `systemd is not running on this machine: ${plan.unitFile} and ${plan.envFile} are written, but the service ` +
        `was not started. Start the agent another way: set -a; . ${plan.envFile}; meso-agent run`,
    );
  }
  const run = o.run ?? runCommand;
  for (const [file, ...args] of plan.commands) run(file!, args);
}

export interface UninstallOptions {
  readonly unitName?: string;
  readonly unitDir?: string;
  readonly configDir?: string;
  readonly workDir?: string;
  /** Also remove the work directory (sandboxes, checkpoints, the agent id). */
  readonly purge?: boolean;
  readonly run?: Runner;
  readonly systemd?: boolean;
}

/**
 * SIGKILLs the tasks an agent left running, from its checkpoint, and removes their cgroups;
 * returns how many were running.
 */
export async function killCheckpointedTasks(workDir: string): Promise<number> {
  let killed = 0;
  const cgroups: TaskCgroupState[] = [];
  for (const files of listRuns(workDir)) {
    const rec = files.readRun();
    const cg = rec?.isolation.cgroups as TaskCgroupState | undefined;
    if (cg) cgroups.push(cg);
    if (rec?.pid === undefined || rec.startTime === undefined) continue;
    if (!isSameLiveProcess(rec.pid, rec.startTime)) continue;
    try {
      process.kill(-rec.pid, 'SIGKILL');
      killed++;
    } catch {
      // Gone.
    }
  }
  // The kernel lets a cgroup go once its last process has exited.
  for (const cg of cgroups) await new Cgroups(cg.version, [], cg.dirs).destroy(cg, 20);
  return killed;
}

export async function uninstall(o: UninstallOptions = {}): Promise<string[]> {
  const done: string[] = [];
  const unitName = o.unitName ?? DEFAULT_UNIT_NAME;
  const unitFile = join(o.unitDir ?? DEFAULT_UNIT_DIR, `${unitName}.service`);
  const configDir = o.configDir ?? DEFAULT_CONFIG_DIR;
  const workDir = o.workDir ?? DEFAULT_INSTALL_WORK_DIR;
  const run = o.run ?? runCommand;
  if (o.systemd ?? systemdRunning()) {
    try {
      run('systemctl', ['disable', '--now', `${unitName}.service`]);
      done.push(`stopped and disabled ${unitName}.service`);
    } catch {
      done.push(`${unitName}.service was not running`);
    }
  }
  const killed = await killCheckpointedTasks(workDir);
  if (killed > 0) done.push(`killed ${killed} task(s) left running`);
  for (const f of [unitFile, join(configDir, 'agent.env')]) {
    if (existsSync(f)) {
      rmSync(f, { force: true });
      done.push(`removed ${f}`);
    }
  }
  if (o.systemd ?? systemdRunning()) {
    try {
      run('systemctl', ['daemon-reload']);
    } catch {
      // Nothing to reload.
    }
  }
  if (o.purge && existsSync(workDir)) {
    rmSync(workDir, { recursive: true, force: true });
    done.push(`removed ${workDir}`);
  }
  return done;
}
