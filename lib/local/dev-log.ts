/** How the local stack prints what its in-process control plane logs. */

/** One control-plane line, timestamped as the agents' are: `[control] <ISO time> WARN  …`. */
export function formatControlLine(
  level: 'INFO' | 'WARN' | 'ERROR',
  message: string,
  extra?: Record<string, unknown>,
  at: Date = new Date(),
): string {
  return `[control] ${at.toISOString()} ${level.padEnd(5)} ${message}${extra ? ` ${JSON.stringify(extra)}` : ''}`;
}
