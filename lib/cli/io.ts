/**
 * What a command touches outside itself, injected so the commands run in tests without a
 * terminal: output streams, the process's signals and its exit.
 */

export interface CliIo {
  /** Task output and results. */
  readonly stdout: { write(text: string): unknown };
  /** Progress and diagnostics. */
  readonly stderr: { write(text: string): unknown };
  /** Calls `handler` on each Ctrl-C until the returned function is called. */
  onInterrupt(handler: () => void): () => void;
  /** Ends the process at once (a second Ctrl-C). */
  exit(code: number): never;
}

export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  onInterrupt(handler) {
    process.on('SIGINT', handler);
    return () => process.off('SIGINT', handler);
  },
  exit: (code) => process.exit(code),
};

/** Exit statuses of `meso`. */
export const EXIT = {
  OK: 0,
  /** The task did not finish (or the run failed). */
  FAILED: 1,
  /** Bad arguments or no cluster configured. */
  USAGE: 2,
  /** Interrupted before anything ran (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

/** Bad command-line input: printed without a stack, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Ends text with a newline, unless empty. */
export function line(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}
