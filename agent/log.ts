/** The agent's logger: one line per event on stderr, with a timestamp. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Log = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Writes `2026-05-01T12:00:00.000Z INFO message {"fields":...}` lines to stderr (or `write`).
 *
 * @example
 * const log = stderrLog('info');
 * log('info', 'registered', { agentId });
 */
export function stderrLog(
  minLevel: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Log {
  return (level, message, fields) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}${extra}\n`);
  };
}

export const silentLog: Log = () => {};

export function errorMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
