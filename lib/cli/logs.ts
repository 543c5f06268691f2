/**
 * `meso logs <task> [-f]`: a task's stdout and stderr from its sandbox, for an agent on this
 * machine (the local stack's agents, or an installed agent). The task's stdout goes to stdout and
 * its stderr to stderr; with `-f` new output follows until the task ends (or Ctrl-C).
 *
 * Sandboxes are found in the agents' work directories: `--work-dir`, `MESO_AGENT_WORK_DIR`, the
 * local stack's (those `.meso/dev.json` lists, and `.meso/agent` beside it), and an installed
 * agent's `/var/lib/meso-agent`. The newest run of the task is shown. For a task on another
 * machine, `meso task <id>` shows the last lines its terminal update carried.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type DevFile, findDevFile } from '../config/cluster.ts';
import { parseCount } from './args.ts';
import { type CliIo, EXIT, line } from './io.ts';

export interface LogsDeps {
  io: CliIo;
  /** Work directories to look in, in order. */
  workDirs: () => string[];
  /** How often `-f` looks for more output, ms. Default 250. */
  pollMs?: number;
}

export interface LogsCliOptions {
  follow?: boolean;
  framework?: string;
  workDir?: string;
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
  const { io } = deps;
  const workDirs = opts.workDir ? [resolve(opts.workDir)] : deps.workDirs();
  if (workDirs.length === 0) {
    io.stderr.write(
      line(
        'meso: no agent work directory on this machine (start the local stack, or give --work-dir); ' +
          `\`meso task ${taskId}\` shows the last output of a task on any agent`,
      ),
    );
    return EXIT.USAGE;
  }
  const [run] = findRuns(workDirs, taskId, opts.framework);
  if (!run) {
    io.stderr.write(
      line(
        `meso: no sandbox of task ${taskId} in ${workDirs.join(', ')}; ` +
          `\`meso task ${taskId}\` shows the last output of a task on any agent`,
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
      "Print a task's stdout and stderr from its sandbox on this machine (-f follows until the task ends).",
    )
    .argument('<task-id>', 'the task id')
    .option('-f, --follow', 'keep printing new output until the task ends (or Ctrl-C)')
    .option('--framework <id>', 'the framework that owns the task')
    .option('--tail <n>', 'only the last n lines of each stream', parseCount)
    .option('--stdout', 'only stdout')
    .option('--stderr', 'only stderr')
    .option('--work-dir <dir>', "the agent's work directory (default: this machine's agents)")
    .action(async (taskId: string, o: LogsCliOptions & { stdout?: boolean; stderr?: boolean }) => {
      const stream = o.stdout && !o.stderr ? 'stdout' : o.stderr && !o.stdout ? 'stderr' : undefined;
      const { stdout: _o, stderr: _e, ...rest } = o;
      done(await logsCommand(taskId, { ...rest, ...(stream ? { stream } : {}) }, deps()));
    });
}
