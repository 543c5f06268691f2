/**
 * `meso task <id>`: a task's last status as the registry recorded it — state, reason, message,
 * exit code, health — with the last lines of its stdout and stderr (the agent puts them in every
 * terminal update), so a failure can be understood from any machine, whatever agent ran it. For a
 * task still running, the last lines are asked of its agent now, through the queues (as
 * `meso logs --tail` does); `--no-output` skips that.
 */
import type { Command } from 'commander';
import { loadClusterConfig } from '../config/cluster.ts';
import type { TaskRecord } from '../core/model.ts';
import { wholeTask } from '../core/task-row.ts';
import { isTerminal } from '../core/task-state.ts';
import type { LogStream } from '../protocol/logs.ts';
import { ago, type ClusterStoreDeps, withStore } from './agents.ts';
import { EXIT, line } from './io.ts';
import { type LogsReader, openLogsReader } from './logs-reader.ts';

export interface TaskCliOptions {
  framework?: string;
  json?: boolean;
  /** Ask a running task's agent for its last lines (default true; `--no-output`). */
  output?: boolean;
}

export interface TaskDeps extends ClusterStoreDeps {
  /** The reader through the queues. Default: the configured cluster's, as this machine's identity. */
  openReader?: (timeoutMs: number) => Promise<LogsReader>;
}

/** What a running task's agent says its output ends with, or why it could not be asked. */
export type LiveOutput = { readonly stdout: string; readonly stderr: string } | { readonly error: string };

/** Bytes of each stream asked for: enough for the 20 lines shown. */
const LIVE_BYTES = 8192;

async function liveOutput(t: TaskRecord, deps: TaskDeps): Promise<LiveOutput> {
  let reader: LogsReader | undefined;
  try {
    reader = await (deps.openReader ?? ((ms) => openLogsReader(loadClusterConfig(), { timeoutMs: ms })))(
      10_000,
    );
    const read = async (stream: LogStream) => {
      const r = await reader!.read({
        frameworkId: t.frameworkId,
        taskId: t.taskId,
        stream,
        offset: 0,
        maxBytes: LIVE_BYTES,
        fromEnd: true,
      });
      return r.bytes.toString('utf8').replace(/^\uFFFD+/, '');
    };
    return { stdout: await read('stdout'), stderr: await read('stderr') };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  } finally {
    reader?.close();
  }
}

/** The last `n` lines of a text. */
function tail(text: string, n: number): string {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return lines.slice(-n).join('\n');
}

export function formatTask(t: TaskRecord, now: number, live?: LiveOutput): string {
  // The latest state its agent reported, even while an earlier update waits for its framework.
  const s = t.latest ?? t.status;
  const out: string[] = [];
  out.push(`task ${t.taskId}${t.info?.name ? ` (${t.info.name})` : ''} of framework ${t.frameworkId}`);
  out.push(`agent:     ${t.agentId}`);
  let state = s?.state ?? t.state;
  if (s?.reason) state += ` (${s.reason})`;
  out.push(`state:     ${state}, ${ago(now - (t.updatedAt ?? s?.timestamp ?? now))} ago`);
  if (s?.exitCode !== undefined) out.push(`exit code: ${s.exitCode}`);
  if (s?.healthy !== undefined) out.push(`healthy:   ${s.healthy}`);
  if (t.info?.command) {
    const c = t.info.command;
    out.push(
      `command:   ${c.shell === false ? [c.value, ...(c.arguments ?? []).slice(1)].join(' ') : c.value}`,
    );
  }
  if (t.info?.container) out.push(`image:     ${t.info.container.image}`);
  if (s?.message) {
    const [first, ...rest] = s.message.split('\n');
    out.push(`message:   ${first}`);
    // A failure message quotes stderr; shown once below.
    const quoted = rest.indexOf('--- last lines of stderr ---');
    const more = quoted >= 0 ? rest.slice(0, quoted) : rest;
    for (const l of more) out.push(`           ${l}`);
  }
  if (s?.stdoutTail) out.push('--- stdout (last lines) ---', tail(s.stdoutTail, 20));
  if (s?.stderrTail) out.push('--- stderr (last lines) ---', tail(s.stderrTail, 20));
  if (live && 'error' in live) out.push(`output:    not available now (${live.error})`);
  else if (live) {
    if (live.stdout) out.push('--- stdout (last lines, from its agent now) ---', tail(live.stdout, 20));
    if (live.stderr) out.push('--- stderr (last lines, from its agent now) ---', tail(live.stderr, 20));
  }
  return `${out.join('\n')}\n`;
}

export async function taskCommand(taskId: string, opts: TaskCliOptions, deps: TaskDeps): Promise<number> {
  return withStore(deps, async (store) => {
    let found: TaskRecord[];
    if (opts.framework) {
      const t = await store.get<TaskRecord & Record<string, unknown>>('tasks', {
        frameworkId: opts.framework,
        taskId,
      });
      found = t ? [t] : [];
    } else {
      // The table is keyed by framework: without one, look through it (an operator's query).
      found = (await store.scan<TaskRecord & Record<string, unknown>>('tasks')).filter(
        (t) => t.taskId === taskId,
      );
    }
    if (found.length === 0) {
      deps.io.stderr.write(
        line(`meso: no task ${taskId}${opts.framework ? ` in framework ${opts.framework}` : ''} is recorded`),
      );
      return EXIT.FAILED;
    }
    if (opts.json) {
      const whole = found.map(wholeTask);
      deps.io.stdout.write(`${JSON.stringify(whole.length === 1 ? whole[0] : whole, null, 2)}\n`);
      return EXIT.OK;
    }
    const now = (deps.now ?? Date.now)();
    const shown: string[] = [];
    for (const t of found) {
      const live = opts.output !== false && !isTerminal(t.state) ? await liveOutput(t, deps) : undefined;
      shown.push(formatTask(t, now, live));
    }
    deps.io.stdout.write(shown.join('\n'));
    return EXIT.OK;
  });
}

/** Adds `meso task <id>` to the program. */
export function registerTaskCommand(
  program: Command,
  deps: () => TaskDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('task')
    .description(
      "Show a task's last status (state, reason, message, exit code) and the last lines of its output.",
    )
    .argument('<task-id>', 'the task id')
    .option('--framework <id>', 'the framework that owns it (faster; needed when two frameworks use the id)')
    .option('--json', 'the task record as JSON')
    .option('--no-output', 'for a running task, do not ask its agent for the last lines of its output')
    .action(async (taskId: string, opts: TaskCliOptions) => {
      done(await taskCommand(taskId, opts, deps()));
    });
}
