/**
 * What a command touches outside itself, injected so the commands run in tests without a
 * terminal: output streams, the process's signals and its exit.
 */
import { ConfigError } from '../config/cluster.ts';

export interface CliIo {
  /** Task output and results. */
  readonly stdout: { write(text: string): unknown };
  /** Progress and diagnostics. */
  readonly stderr: { write(text: string): unknown };
  /**
   * Calls `handler` on each Ctrl-C, and on each SIGTERM or SIGHUP (a process manager stopping
   * the command, a terminal closing), until the returned function is called.
   */
  onInterrupt(handler: (signal: NodeJS.Signals) => void): () => void;
  /** Ends the process at once (a second Ctrl-C). */
  exit(code: number): never;
}

/** The signals that stop a command the way Ctrl-C does (it cleans up before it exits). */
export const INTERRUPTS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  onInterrupt(handler) {
    for (const signal of INTERRUPTS) process.on(signal, handler);
    return () => {
      for (const signal of INTERRUPTS) process.off(signal, handler);
    };
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

/**
 * Runs `action` on a connection to the cluster and closes it after. No cluster configured
 * (`ConfigError` from `open`) and errors `isUsage` picks are exit status 2, other errors from
 * `action` 1; each is printed as `meso: <message>`.
 */
export async function withConnection<C extends { close: () => void }>(
  io: CliIo,
  open: () => C,
  action: (connection: C) => Promise<number>,
  isUsage: (e: unknown) => e is Error = (e): e is Error => false,
): Promise<number> {
  let connection: C;
  try {
    connection = open();
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr.write(line(`meso: ${e.message}`));
      return EXIT.USAGE;
    }
    throw e;
  }
  try {
    return await action(connection);
  } catch (e) {
    if (isUsage(e)) {
      io.stderr.write(line(`meso: ${e.message}`));
      return EXIT.USAGE;
    }
    io.stderr.write(line(`meso: ${e instanceof Error ? e.message : String(e)}`));
    return EXIT.FAILED;
  } finally {
    connection.close();
  }
}
