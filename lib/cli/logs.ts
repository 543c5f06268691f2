/**
 * `meso logs <task> [-f]`: a task's stdout and stderr, from any machine that can reach the
 * cluster. The task's stdout goes to stdout and its stderr to stderr; with `-f` new output
 * follows until the task ends (or Ctrl-C).
 *
 * The output is read through the queues (lib/cli/logs-reader.ts, lib/protocol/logs.ts): the
 * registry checks the caller may read the task's framework and asks the task's agent, which
 * answers chunk by chunk. The framework is `--framework`, else looked up in the tasks table (for
 * callers that can read it).
 *
 * `--work-dir <dir>` (or `--local`, this machine's agents' work directories: `MESO_AGENT_WORK_DIR`,
 * the local stack's, an installed agent's `/var/lib/meso-agent`) reads sandboxes directly instead,
 * for an agent on this machine: asked for, never a silent fallback.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Command } from 'commander';
import { ConfigError, type DevFile, findDevFile, loadClusterConfig } from '../config/cluster.ts';
import type { TaskRecord } from '../core/model.ts';
import { isTerminal } from '../core/task-state.ts';
import type { Item } from '../ports/store.ts';
import type { LogStream, LogsReply } from '../protocol/logs.ts';
import { openClusterStore } from './agents.ts';
import { parseCount } from './args.ts';
import { type CliIo, EXIT, line } from './io.ts';
import { type ChunkRequest, LogsError, type LogsReader, openLogsReader } from './logs-reader.ts';

export interface LogsDeps {
  io: CliIo;
  /** Work directories `--local` looks in, in order. */
  workDirs: () => string[];
  /** How often `-f` looks for more output, ms. Default 250 (local) and 1000 (through the queues). */
  pollMs?: number;
  /** The reader through the queues. Default: the configured cluster's, as this machine's identity. */
  openReader?: (timeoutMs: number) => Promise<LogsReader>;
  /** The frameworks that have a task by this id. Default: a scan of the tasks table. */
  frameworksOf?: (taskId: string) => Promise<string[]>;
}

export interface LogsCliOptions {
  follow?: boolean;
  framework?: string;
  workDir?: string;
  /** Read this machine's agents' work directories instead of asking through the queues. */
  local?: boolean;
  /** Seconds to wait for each answer through the queues (default 30). */
  timeout?: number;
  /** Only the last n lines of each stream (before following). */
  tail?: number;
  /** 'stdout', 'stderr' or both (default). */
  stream?: 'stdout' | 'stderr';
}

export interface RunLocation {
  readonly workDir: string;
  readonly frameworkId: string;
  readonly taskId: string;
  readonly runId: string;
  readonly sandbox: string;
  readonly mtimeMs: number;
}

/** The work directories of agents on this machine, as far as they can be found. */
export function localWorkDirs(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.MESO_AGENT_WORK_DIR) out.push(resolve(env.MESO_AGENT_WORK_DIR));
  const devFile = findDevFile(cwd);
  if (devFile) {
    const mesoDir = dirname(devFile);
    try {
      const dev = JSON.parse(readFileSync(devFile, 'utf8')) as DevFile;
      for (const d of dev.agentWorkDirs ?? []) out.push(resolve(mesoDir, d));
      // An agent started by hand beside it (`meso-agent run`'s default there).
      out.push(join(mesoDir, 'agent'));
    } catch {
      // An unreadable dev file: no local stack to look in.
    }
  }
  out.push('/var/lib/meso-agent');
  return [...new Set(out)].filter((d) => existsSync(join(d, 'sandboxes')));
}

function dirs(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** Every run of `taskId` in these work directories, newest first. */
export function findRuns(workDirs: readonly string[], taskId: string, frameworkId?: string): RunLocation[] {
  const runs: RunLocation[] = [];
  for (const workDir of workDirs) {
    const root = join(workDir, 'sandboxes');
    for (const fw of frameworkId ? [frameworkId] : dirs(root)) {
      const taskDir = join(root, fw, taskId);
      for (const runId of dirs(taskDir)) {
        const sandbox = join(taskDir, runId);
        let mtimeMs = 0;
        try {
          mtimeMs = statSync(sandbox).mtimeMs;
        } catch {
          continue;
        }
        runs.push({ workDir, frameworkId: fw, taskId, runId, sandbox, mtimeMs });
      }
    }
  }
  return runs.sort((a, b) => b.mtimeMs - a.mtimeMs);
}

/** Whether the run has ended (or was never checkpointed by this agent version). */
export function runEnded(run: RunLocation): boolean {
  const meta = join(run.workDir, 'meta', 'runs', run.runId);
  return !existsSync(meta) || existsSync(join(meta, 'ended.json'));
}

async function readFrom(file: string, offset: number): Promise<{ text: string; next: number }> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(file, 'r');
    const { size } = await fh.stat();
    if (size <= offset) return { text: '', next: Math.min(size, offset) };
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    // Hold back an incomplete UTF-8 sequence at the end for the next read.
    let end = bytesRead;
    for (let i = 1; i <= Math.min(3, end); i++) {
      const b = buf[end - i]!;
      if ((b & 0xc0) === 0x80) continue;
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
      if (need > i) end -= i;
      break;
    }
    return { text: buf.subarray(0, end).toString('utf8'), next: offset + end };
  } catch {
    return { text: '', next: offset };
  } finally {
    await fh?.close();
  }
}

function lastLines(text: string, n: number): string {
  const trailing = text.endsWith('\n');
  const lines = (trailing ? text.slice(0, -1) : text).split('\n');
  const kept = lines.slice(-n).join('\n');
  return kept === '' ? '' : trailing ? `${kept}\n` : kept;
}

export async function logsCommand(taskId: string, opts: LogsCliOptions, deps: LogsDeps): Promise<number> {
  if (opts.workDir !== undefined || opts.local) return localLogs(taskId, opts, deps);
  return remoteLogs(taskId, opts, deps);
}

/** The frameworks with a task `taskId`, from the tasks table (needs read access to it). */
async function frameworksInTable(taskId: string): Promise<string[]> {
  const { store, close } = openClusterStore();
  try {
    const tasks = await store.scan<TaskRecord & Item>('tasks');
    return [...new Set(tasks.filter((t) => t.taskId === taskId).map((t) => t.frameworkId))];
  } finally {
    close();
  }
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * A task whose LAUNCH has not reached its agent yet has no sandbox there: while the registry
 * records it as not ended, `-f` waits for it rather than giving up.
 */
async function notYet(read: Promise<LogsReply & { readonly bytes: Buffer }>) {
  try {
    return await read;
  } catch (e) {
    if (!(e instanceof LogsError) || e.code !== 'NO_SANDBOX' || !e.state || isTerminal(e.state)) throw e;
    return { bytes: Buffer.alloc(0), ended: false, state: e.state, offset: undefined, size: 0 };
  }
}

/** The output through the queues. */
async function remoteLogs(taskId: string, opts: LogsCliOptions, deps: LogsDeps): Promise<number> {
  const { io } = deps;
  let frameworkId = opts.framework;
  if (frameworkId === undefined) {
    let ids: string[];
    try {
      ids = await (deps.frameworksOf ?? frameworksInTable)(taskId);
    } catch (e) {
      if (e instanceof ConfigError) {
        io.stderr.write(line(`meso: ${e.message}`));
        return EXIT.USAGE;
      }
      io.stderr.write(
        line(`meso: cannot look up the framework of task ${taskId} (${message(e)}); give --framework <id>`),
      );
      return EXIT.USAGE;
    }
    if (ids.length === 0) {
      io.stderr.write(line(`meso: no task ${taskId} is recorded`));
      return EXIT.FAILED;
    }
    if (ids.length > 1) {
      io.stderr.write(
        line(
          `meso: ${ids.length} frameworks have a task ${taskId} (${ids.join(', ')}): name one with --framework`,
        ),
      );
      return EXIT.USAGE;
    }
    frameworkId = ids[0]!;
  }
  const timeoutMs = (opts.timeout ?? 30) * 1000;
  let reader: LogsReader;
  try {
    reader = await (deps.openReader ?? ((ms) => openLogsReader(loadClusterConfig(), { timeoutMs: ms })))(
      timeoutMs,
    );
  } catch (e) {
    io.stderr.write(line(`meso: ${message(e)}`));
    return e instanceof ConfigError ? EXIT.USAGE : EXIT.FAILED;
  }
  let interrupted = false;
  const stop = io.onInterrupt(() => {
    interrupted = true;
  });
  try {
    const streams: LogStream[] = opts.stream ? [opts.stream] : ['stdout', 'stderr'];
    interface StreamState {
      offset: number;
      done: boolean;
      readonly decoder: StringDecoder;
    }
    const st = new Map<LogStream, StreamState>(
      streams.map((s) => [s, { offset: 0, done: false, decoder: new StringDecoder('utf8') }]),
    );
    const fw = frameworkId;
    const ask = (req: Omit<ChunkRequest, 'frameworkId' | 'taskId'>) => {
      const read = reader.read({ frameworkId: fw, taskId, ...req });
      return opts.follow ? notYet(read) : read;
    };
    // What is there now: the last lines (--tail), or everything up to the size the first answer gives.
    for (const s of streams) {
      const state = st.get(s)!;
      if (opts.tail !== undefined) {
        const r = await ask({ stream: s, offset: 0, fromEnd: true });
        const text = state.decoder.write(r.bytes).replace(/^\uFFFD+/, '');
        const kept = lastLines(text, opts.tail);
        if (kept) io[s].write(kept);
        state.offset = (r.offset ?? 0) + r.bytes.length;
        state.done = !!r.ended && state.offset >= (r.size ?? 0);
        continue;
      }
      let target: number | undefined;
      while (!interrupted) {
        const r = await ask({ stream: s, offset: state.offset });
        target ??= r.size ?? 0;
        const text = state.decoder.write(r.bytes);
        if (text) io[s].write(text);
        state.offset = (r.offset ?? state.offset) + r.bytes.length;
        state.done = !!r.ended && state.offset >= (r.size ?? 0);
        if (r.bytes.length === 0 || state.offset >= target) break;
      }
    }
    if (opts.follow) {
      // Until the task's run has ended and every stream is drained: ask again from each offset.
      while (!interrupted && [...st.values()].some((x) => !x.done)) {
        let progressed = false;
        for (const s of streams) {
          const state = st.get(s)!;
          if (state.done || interrupted) continue;
          const r = await ask({ stream: s, offset: state.offset });
          const text = state.decoder.write(r.bytes);
          if (text) io[s].write(text);
          state.offset = (r.offset ?? state.offset) + r.bytes.length;
          if (r.bytes.length > 0) progressed = true;
          state.done =
            (!!r.ended || (r.state !== undefined && isTerminal(r.state) && r.bytes.length === 0)) &&
            state.offset >= (r.size ?? 0);
        }
        if (!progressed && [...st.values()].some((x) => !x.done))
          await new Promise((r) => setTimeout(r, deps.pollMs ?? 1000));
      }
    }
    for (const s of streams) {
      const rest = st.get(s)!.decoder.end();
      if (rest) io[s].write(rest);
    }
    return EXIT.OK;
  } catch (e) {
    // A LogsError says what the registry or agent answered (FORBIDDEN, AGENT_GONE, a timeout...).
    io.stderr.write(line(`meso: ${e instanceof LogsError ? `${e.code}: ` : ''}${message(e)}`));
    return EXIT.FAILED;
  } finally {
    stop();
    reader.close();
  }
}

/** The output from sandboxes in work directories on this machine. */
async function localLogs(taskId: string, opts: LogsCliOptions, deps: LogsDeps): Promise<number> {
  const { io } = deps;
  const workDirs = opts.workDir ? [resolve(opts.workDir)] : deps.workDirs();
  if (workDirs.length === 0) {
    io.stderr.write(
      line(
        'meso: no agent work directory on this machine (start the local stack, or give --work-dir); ' +
          `without --local, \`meso logs ${taskId}\` asks the task's agent through the cluster`,
      ),
    );
    return EXIT.USAGE;
  }
  const [run] = findRuns(workDirs, taskId, opts.framework);
  if (!run) {
    io.stderr.write(
      line(
        `meso: no sandbox of task ${taskId} in ${workDirs.join(', ')}; ` +
          `without --work-dir, \`meso logs ${taskId}\` asks the task's agent through the cluster`,
      ),
    );
    return EXIT.FAILED;
  }
  const streams = (opts.stream ? [opts.stream] : ['stdout', 'stderr']) as ('stdout' | 'stderr')[];
  const offsets = new Map<string, number>(streams.map((s) => [s, 0]));
  const pump = async (first: boolean) => {
    for (const s of streams) {
      const r = await readFrom(join(run.sandbox, s), offsets.get(s)!);
      offsets.set(s, r.next);
      const text = first && opts.tail !== undefined ? lastLines(r.text, opts.tail) : r.text;
      if (text) io[s].write(text);
    }
  };
  await pump(true);
  if (!opts.follow) return EXIT.OK;
  let interrupted = false;
  const stop = io.onInterrupt(() => {
    interrupted = true;
  });
  try {
    while (!interrupted) {
      const ended = runEnded(run);
      await new Promise((r) => setTimeout(r, deps.pollMs ?? 250));
      await pump(false);
      if (ended) break;
    }
  } finally {
    stop();
  }
  return EXIT.OK;
}

/** Adds `meso logs` to the program. */
export function registerLogsCommand(
  program: Command,
  deps: () => LogsDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('logs')
    .description(
      "Print a task's stdout and stderr, read from its agent through the cluster's queues (-f follows until the task ends).",
    )
    .argument('<task-id>', 'the task id')
    .option('-f, --follow', 'keep printing new output until the task ends (or Ctrl-C)')
    .option('--framework <id>', 'the framework that owns the task')
    .option('--tail <n>', 'only the last n lines of each stream', parseCount)
    .option('--stdout', 'only stdout')
    .option('--stderr', 'only stderr')
    .option('--timeout <seconds>', 'how long to wait for each answer from the agent (default 30)', parseCount)
    .option('--local', "read the sandbox in this machine's agents' work directories instead")
    .option('--work-dir <dir>', 'read the sandbox in this agent work directory instead')
    .action(async (taskId: string, o: LogsCliOptions & { stdout?: boolean; stderr?: boolean }) => {
      const stream = o.stdout && !o.stderr ? 'stdout' : o.stderr && !o.stdout ? 'stderr' : undefined;
      const { stdout: _o, stderr: _e, ...rest } = o;
      done(await logsCommand(taskId, { ...rest, ...(stream ? { stream } : {}) }, deps()));
    });
}
