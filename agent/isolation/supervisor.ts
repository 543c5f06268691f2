/**
 * The per-task supervisor: a few lines of POSIX shell that the agent starts for every task. It
 * joins the task's cgroups, runs the task's command in the foreground, and writes the command's
 * exit status to the run's checkpoint directory — so the real outcome of a task survives the
 * agent: if the agent crashes, the supervisor (re-parented to init) still waits for the task and
 * records how it ended, and the restarted agent reads it.
 *
 * Why a shell and not a Node process: a Node process costs ~40 MB per task; `sh` costs ~1 MB.
 * Signals: the supervisor is never sent SIGTERM — the agent sends it to the task's other
 * processes (its process group and cgroup, minus the supervisor) — so it needs no trap (a shell
 * trap would also be inherited by a command caught between fork and exec, and swallow the signal
 * meant for it). In a PID namespace the supervisor is the namespace's init, which the kernel
 * shields from every signal it has no handler for but SIGKILL. SIGKILL ends everything.
 *
 * The status file holds the shell's `$?`: the exit code, or 128 + the signal number when a signal
 * ended the command (a command that itself exits with 129–159 reads as a signal: the same
 * ambiguity every shell has).
 */
import { constants } from 'node:os';

/** argv: $0 = name, $1 = status file, $2 = number of cgroup.procs files, then those files, then the command. */
export const SUPERVISOR_SCRIPT = [
  'f=$1; n=$2; shift 2',
  'while [ "$n" -gt 0 ]; do',
  '  if ! echo $$ > "$1"; then echo "meso: cannot join cgroup $1" >&2; echo launch-failed > "$f"; exit 125; fi',
  '  shift; n=$((n - 1))',
  'done',
  '"$@"',
  'rc=$?',
  'echo "$rc" > "$f"',
  'exit "$rc"',
].join('\n');

/** The argv of a supervised command (before any outer wrapper such as `unshare`). */
export function supervisorArgv(
  statusFile: string,
  cgroupProcsFiles: readonly string[],
  command: readonly string[],
  shell = '/bin/sh',
): string[] {
  return [
    shell,
    '-c',
    SUPERVISOR_SCRIPT,
    'meso-supervisor',
    statusFile,
    String(cgroupProcsFiles.length),
    ...cgroupProcsFiles,
    ...command,
  ];
}

/** What the status file says about how the command ended. */
export type SupervisedExit =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'signaled'; readonly signal: NodeJS.Signals; readonly code: number }
  | { readonly kind: 'launch-failed' };

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** Parses the status file's text; undefined when it is missing, empty or garbled. */
export function parseStatusFile(text: string | undefined): SupervisedExit | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  if (t === 'launch-failed') return { kind: 'launch-failed' };
  if (!/^\d{1,3}$/.test(t)) return undefined;
  const code = Number(t);
  if (code > 128 && code < 128 + 64) {
    const signal = SIGNAL_NAMES.get(code - 128);
    if (signal) return { kind: 'signaled', signal, code };
  }
  return { kind: 'exited', code };
}
