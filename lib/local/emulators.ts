/**
 * The embedded emulators: DynamoDB Local (AWS's own, a Java jar shipped inside the npm package
 * `amplify-dynamodb-simulator`) and fauxqs (SQS), each in a child process on a free loopback port.
 *
 * Used by the test setup and by `meso dev`. When `AWS_ENDPOINT_URL` is set (LocalStack, a real
 * account) the caller must not call this at all: it uses that endpoint instead. This module never
 * looks at `AWS_ENDPOINT_URL`; deciding is the caller's job.
 *
 * Both children die with the parent:
 * - they are killed (and awaited) by `stop()`;
 * - an `exit` handler SIGKILLs them when the parent exits without calling `stop()`;
 * - each child watches its IPC channel and exits when it closes, which covers a parent that is
 *   itself SIGKILLed (no handler runs then). Java cannot watch a Node IPC channel, so it runs
 *   under a tiny Node guardian that does it and takes Java down with it.
 * fauxqs runs in its own process (not in-process) so its CPU is not the control plane's: on a
 * 2-core machine the SDK's CPU is the SQS ceiling (docs/benchmarks.md gives the emulators' ceilings).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { LOCAL_CREDENTIALS } from '../adapters/aws-config.ts';
import { type SqsGateway, type SqsGatewayOptions, startSqsGateway } from './sqs-gateway.ts';

export interface Emulators {
  /** e.g. `http://127.0.0.1:41234` */
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
  /** fauxqs itself, when `sqsEndpoint` is the identity gateway in front of it. */
  readonly sqsEmulatorEndpoint?: string;
  readonly region: string;
  /** Kills both emulators and resolves once both processes have exited. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEmulatorsOptions {
  /**
   * Persist state here (`<dataDir>/dynamodb` via `-dbPath`, `<dataDir>/sqs` via fauxqs's SQLite
   * persistence). Default: everything in memory, gone when the emulators stop.
   */
  readonly dataDir?: string;
  /** Receives the emulators' own output, one line at a time, prefixed `[dynamodb]` / `[sqs]`. */
  readonly log?: (line: string) => void;
  /** Region the endpoints are reported with. Default: `AWS_REGION`, `AWS_DEFAULT_REGION`, us-east-1. */
  readonly region?: string;
  /**
   * Ports to come back on (a `--persist` stack restarted where it was, so clients that were
   * connected reconnect); one that is taken is replaced by a free one.
   */
  readonly preferPorts?: {
    readonly dynamo?: number;
    /** The port of `sqsEndpoint`: the identity gateway's when there is one, else the emulator's. */
    readonly sqs?: number;
    /** The emulator's own port behind the identity gateway. */
    readonly sqsEmulator?: number;
  };
  /** How long to wait for each emulator to answer. Default 30 000 ms. */
  readonly startTimeoutMs?: number;
  /**
   * Put the SigV4-checking gateway (lib/local/sqs-gateway.ts) in front of fauxqs and report its
   * endpoint as `sqsEndpoint`: each access key is then its own SenderId, as in SQS. `true` takes
   * the gateway's defaults (any key id, signed with the local secret).
   */
  readonly identityGateway?: boolean | Omit<SqsGatewayOptions, 'upstream'>;
}

export class EmulatorError extends Error {
  override name = 'EmulatorError';
}

export const JAVA_MISSING = 'DynamoDB Local needs Java 17+: apt-get install -y openjdk-17-jre-headless';

/**
 * Starts DynamoDB Local and fauxqs on free loopback ports and waits until both answer.
 *
 * @example
 * ```ts
 * const emu = process.env.AWS_ENDPOINT_URL ? undefined : await startEmulators();
 * const aws = emu
 *   ? { region: emu.region, dynamoEndpoint: emu.dynamoEndpoint, sqsEndpoint: emu.sqsEndpoint }
 *   : awsConfigFromEnv();
 * // ... provision(aws), run handlers ...
 * await emu?.stop();
 * ```
 */
export async function startEmulators(opts: StartEmulatorsOptions = {}): Promise<Emulators> {
  const region = opts.region ?? (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1');
  // Generous: a cold JVM on a busy 2-core machine can take most of a minute to answer at first.
  const timeoutMs = opts.startTimeoutMs ?? 90_000;
  const dataDir = opts.dataDir ? resolve(opts.dataDir) : undefined;
  // Start both at once. If one fails, report it at once (a missing `java` must not wait for
  // fauxqs) and stop the other as soon as it is up; the exit handler covers the gap.
  const prefer = opts.preferPorts;
  const dynamo = startDynamo(region, timeoutMs, dataDir, opts.log, prefer?.dynamo);
  const sqs = startFauxqs(
    region,
    timeoutMs,
    dataDir,
    opts.log,
    opts.identityGateway ? prefer?.sqsEmulator : prefer?.sqs,
  );
  let started: [Started, Started];
  try {
    started = await Promise.all([dynamo, sqs]);
  } catch (e) {
    void Promise.allSettled([dynamo, sqs]).then((all) => {
      for (const r of all) if (r.status === 'fulfilled') void r.value.stop();
    });
    throw e;
  }
  const [db, mq] = started;
  let gateway: SqsGateway | undefined;
  if (opts.identityGateway) {
    const options = opts.identityGateway === true ? {} : opts.identityGateway;
    try {
      gateway = await startSqsGateway({
        ...options,
        upstream: mq.endpoint,
        ...(prefer?.sqs !== undefined ? { port: prefer.sqs } : {}),
      });
    } catch (e) {
      await Promise.allSettled([db.stop(), mq.stop()]);
      throw e;
    }
  }
  let stopping: Promise<void> | undefined;
  return {
    dynamoEndpoint: db.endpoint,
    sqsEndpoint: gateway?.endpoint ?? mq.endpoint,
    ...(gateway ? { sqsEmulatorEndpoint: mq.endpoint } : {}),
    region,
    stop() {
      stopping ??= Promise.all([gateway?.stop(), db.stop(), mq.stop()]).then(() => undefined);
      return stopping;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Children

interface Started {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Every live child, so one `exit` handler can SIGKILL whatever is left. */
const live = new Set<ChildProcess>();
/** Extra pids to SIGKILL at exit (Java, which the guardian normally takes care of). */
const livePids = new Set<number>();
let exitHandlerInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
      for (const pid of livePids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

/** Runs Java under a guardian that kills it when our IPC channel closes or on SIGTERM/SIGINT. */
const GUARDIAN = `
const { spawn } = require('node:child_process');
const [cmd, ...args] = JSON.parse(process.env.MESO_GUARD_ARGV);
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let ending = false;
child.on('error', (e) => { process.send?.({ type: 'error', code: e.code, message: e.message }); process.exit(127); });
child.on('spawn', () => process.send?.({ type: 'spawned', pid: child.pid }));
child.on('exit', (code, signal) => process.exit(ending ? 0 : (code ?? 1)));
const end = () => {
  if (ending) return;
  ending = true;
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 3000).unref();
};
process.on('disconnect', end);
process.on('SIGTERM', end);
process.on('SIGINT', end);
`;

/** Starts fauxqs in this child; exits when the parent's IPC channel closes. */
const FAUXQS_CHILD = `
// fauxqs listens on 0.0.0.0; test and dev servers here listen on loopback only.
const net = await import('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === 'object' && ['0.0.0.0', '::', undefined].includes(args[0].host)) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
const { startFauxqs } = await import(process.env.MESO_FAUXQS_URL);
const dataDir = process.env.MESO_FAUXQS_DATA_DIR || undefined;
const server = await startFauxqs({
  port: Number(process.env.FAUXQS_PORT),
  host: process.env.FAUXQS_HOST,
  logger: false,
  ...(dataDir ? { dataDir } : {}),
});
const end = () => { server.stop().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); };
process.on('disconnect', end);
process.on('SIGTERM', end);
process.on('SIGINT', end);
process.send?.({ type: 'ready', port: server.port });
`;

async function startDynamo(
  region: string,
  timeoutMs: number,
  dataDir: string | undefined,
  log: ((line: string) => void) | undefined,
  preferPort?: number,
): Promise<Started> {
  const dir = join(findPackageDir('amplify-dynamodb-simulator'), 'emulator');
  const jar = join(dir, 'DynamoDBLocal.jar');
  if (!existsSync(jar)) throw new EmulatorError(`DynamoDB Local jar not found at ${jar}; run npm ci`);
  let storage = ['-inMemory'];
  if (dataDir) {
    const path = join(dataDir, 'dynamodb');
    mkdirSync(path, { recursive: true });
    storage = ['-dbPath', path];
  }
  return withPortRetry(preferPort, async (port) => {
    const argv = [
      'java',
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      jar,
      ...storage,
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ];
    const child = spawn(process.execPath, ['-e', GUARDIAN], {
      cwd: dir,
      env: { ...process.env, MESO_GUARD_ARGV: JSON.stringify(argv) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    track(child);
    const out = collectOutput(child, '[dynamodb]', log);
    let javaPid: number | undefined;
    const failed = new Promise<never>((_, reject) => {
      child.on('message', (m: { type: string; pid?: number; code?: string; message?: string }) => {
        if (m.type === 'spawned' && m.pid) {
          javaPid = m.pid;
          livePids.add(javaPid);
        }
        if (m.type === 'error') {
          reject(
            new EmulatorError(m.code === 'ENOENT' ? JAVA_MISSING : `could not start java: ${m.message}`),
          );
        }
      });
      child.once('exit', (code) => {
        if (javaPid) livePids.delete(javaPid);
        reject(exitedEarly('DynamoDB Local', code, out()));
      });
      child.once('error', (e) => reject(new EmulatorError(`could not start DynamoDB Local: ${e.message}`)));
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new DynamoDBClient({
      region,
      endpoint,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      await Promise.race([
        failed,
        waitUntil(
          (wait) =>
            client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(wait) }),
          timeoutMs,
          `DynamoDB Local did not answer on ${endpoint}`,
          out,
        ),
      ]);
    } catch (e) {
      await stopChild(child);
      throw e;
    } finally {
      client.destroy();
    }
    failed.catch(() => undefined); // later exits are reported by stop(), not as unhandled rejections
    unrefChild(child);
    return { endpoint, stop: () => stopChild(child).then(() => void (javaPid && livePids.delete(javaPid))) };
  });
}

async function startFauxqs(
  region: string,
  timeoutMs: number,
  dataDir: string | undefined,
  log: ((line: string) => void) | undefined,
  preferPort?: number,
): Promise<Started> {
  const app = join(findPackageDir('fauxqs'), 'dist', 'app.js');
  if (!existsSync(app)) throw new EmulatorError(`fauxqs not found at ${app}; run npm ci`);
  let sqsDir: string | undefined;
  if (dataDir) {
    sqsDir = join(dataDir, 'sqs');
    mkdirSync(sqsDir, { recursive: true });
  }
  return withPortRetry(preferPort, async (port) => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', FAUXQS_CHILD],
      {
        env: {
          ...process.env,
          FAUXQS_PORT: String(port),
          FAUXQS_HOST: 'localhost',
          FAUXQS_LOGGER: 'false',
          FAUXQS_DEFAULT_REGION: region,
          MESO_FAUXQS_URL: pathToFileURL(app).href,
          MESO_FAUXQS_DATA_DIR: sqsDir ?? '',
        },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    track(child);
    const out = collectOutput(child, '[sqs]', log);
    const failed = new Promise<never>((_, reject) => {
      child.once('exit', (code) => reject(exitedEarly('fauxqs', code, out())));
      child.once('error', (e) => reject(new EmulatorError(`could not start fauxqs: ${e.message}`)));
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new SQSClient({
      region,
      endpoint,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      await Promise.race([
        failed,
        waitUntil(
          (wait) =>
            client.send(new ListQueuesCommand({ MaxResults: 1 }), { abortSignal: AbortSignal.timeout(wait) }),
          timeoutMs,
          `fauxqs did not answer on ${endpoint}`,
          out,
        ),
      ]);
    } catch (e) {
      await stopChild(child);
      throw e;
    } finally {
      client.destroy();
    }
    failed.catch(() => undefined);
    unrefChild(child);
    return { endpoint, stop: () => stopChild(child) };
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers

class PortInUse extends EmulatorError {}

/** A port taken between our probe and the child's bind: try another, a few times. */
async function withPortRetry<T>(
  preferPort: number | undefined,
  start: (port: number) => Promise<T>,
): Promise<T> {
  // The preferred port first, when it is free; then ports the kernel hands out.
  let next = preferPort !== undefined && (await isFree(preferPort)) ? preferPort : undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(next ?? (await freePort()));
    } catch (e) {
      if (!(e instanceof PortInUse) || attempt >= 3) throw e;
    }
    next = undefined;
  }
}

/** Whether `port` can be bound on loopback now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => answer(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => answer(true)));
  });
}

/** A port the kernel just handed out on loopback; free again once we close it. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Keeps the last lines of a child's output for error messages and hands each line to `log`. */
function collectOutput(
  child: ChildProcess,
  tag: string,
  log: ((line: string) => void) | undefined,
): () => string[] {
  const tail: string[] = [];
  const onData = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split(/\r?\n/)) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 30) tail.shift();
      log?.(`${tag} ${line}`);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return () => tail;
}

function exitedEarly(what: string, code: number | null, tail: string[]): EmulatorError {
  const text = tail.join('\n');
  const Err = /EADDRINUSE|Address already in use|BindException/i.test(text) ? PortInUse : EmulatorError;
  return new Err(`${what} exited (code ${code}) before it answered${text ? `:\n${text}` : ''}`);
}

/**
 * Probes until `probe` answers. Each probe may take longer than the last (2 s, then 4 s, up to
 * 10 s): the first request to a cold emulator on a loaded machine can take several seconds, and a
 * probe given up at a fixed 2 s would give up on every such answer in turn.
 */
async function waitUntil(
  probe: (waitMs: number) => Promise<unknown>,
  timeoutMs: number,
  message: string,
  out: () => string[],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let wait = 2000;
  while (Date.now() < deadline) {
    try {
      await probe(Math.max(500, Math.min(wait, deadline - Date.now())));
      return;
    } catch (e) {
      // It answered, with an error (bad credentials, say): waiting longer will not help.
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        throw new EmulatorError(`${message}: ${(e as Error).message}`);
      }
      last = e;
      wait = Math.min(wait * 2, 10_000);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const tail = out().join('\n');
  throw new EmulatorError(
    `${message} within ${timeoutMs} ms (last error: ${last instanceof Error ? last.message : String(last)})${tail ? `:\n${tail}` : ''}`,
  );
}

/** Once ready, a child must not keep the parent alive: the exit handler and IPC watch cover it. */
function unrefChild(child: ChildProcess): void {
  child.unref();
  child.channel?.unref();
  for (const s of [child.stdout, child.stderr]) (s as { unref?: () => void } | null)?.unref?.();
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

/** `node_modules/<name>` nearest to this file (or, failing that, to the working directory). */
function findPackageDir(name: string): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = start;
    for (;;) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new EmulatorError(`package ${name} not found in node_modules; run npm ci`);
}
