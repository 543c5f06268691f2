/**
 * Where a `--persist` local stack listened, kept beside its data (`.meso/data/ports.json`), so
 * that after a crash it comes back on the same ports and clients that were connected to it (a
 * `meso run` waiting for its task) reconnect instead of failing with ECONNREFUSED.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StackPorts {
  readonly dynamo?: number;
  readonly sqs?: number;
}

const FILE = 'ports.json';

const portOf = (endpoint: string): number | undefined => {
  const port = Number(new URL(endpoint).port);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
};

const validPort = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536 ? v : undefined;

/** The ports recorded in `dataDir`, or none (first start, or an unreadable file). */
export function readStackPorts(dataDir: string): StackPorts {
  try {
    const j = JSON.parse(readFileSync(join(dataDir, FILE), 'utf8')) as Record<string, unknown>;
    const dynamo = validPort(j.dynamo);
    const sqs = validPort(j.sqs);
    return { ...(dynamo ? { dynamo } : {}), ...(sqs ? { sqs } : {}) };
  } catch {
    return {};
  }
}

/** Records the emulators' ports; returns a line for each that could not be the recorded one. */
export function recordStackPorts(
  dataDir: string,
  wanted: StackPorts,
  endpoints: { dynamoEndpoint: string; sqsEndpoint: string },
): string[] {
  const now: StackPorts = { dynamo: portOf(endpoints.dynamoEndpoint), sqs: portOf(endpoints.sqsEndpoint) };
  writeFileSync(join(dataDir, FILE), `${JSON.stringify(now)}\n`);
  const moved: string[] = [];
  for (const [name, key] of [
    ['DynamoDB', 'dynamo'],
    ['SQS', 'sqs'],
  ] as const) {
    const before = wanted[key];
    if (before !== undefined && before !== now[key]) {
      moved.push(
        `${name}'s port ${before} is taken by another program; it is on ${now[key]} now, so clients ` +
          'started before this restart must be started again.',
      );
    }
  }
  return moved;
}
