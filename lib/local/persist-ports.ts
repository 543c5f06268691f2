/**
 * Where a `--persist` local stack listened, kept beside its data (`.meso/data/ports.json`), so
 * that after a crash it comes back on the same ports and clients that were connected to it (a
 * `meso run` waiting for its task, a dashboard tab) reconnect instead of failing with
 * ECONNREFUSED: DynamoDB Local, the SQS endpoint clients use (the identity gateway), the SQS
 * emulator behind it, and the operator API.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StackPorts {
  readonly dynamo?: number;
  /** The SQS endpoint clients use: the identity gateway in front of the emulator. */
  readonly sqs?: number;
  /** The SQS emulator itself, behind the gateway. */
  readonly sqsEmulator?: number;
  /** The operator API and dashboard. */
  readonly api?: number;
}

/** The endpoints a stack came up on; each absent one is not recorded. */
export interface StackEndpoints {
  readonly dynamoEndpoint?: string;
  readonly sqsEndpoint?: string;
  readonly sqsEmulatorEndpoint?: string;
  readonly apiUrl?: string;
}

const FILE = 'ports.json';

const NAMES: ReadonlyArray<readonly [keyof StackPorts, keyof StackEndpoints, string]> = [
  ['dynamo', 'dynamoEndpoint', 'DynamoDB'],
  ['sqs', 'sqsEndpoint', 'SQS'],
  ['sqsEmulator', 'sqsEmulatorEndpoint', 'The SQS emulator'],
  ['api', 'apiUrl', 'The operator API'],
];

const validPort = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536 ? v : undefined;

const portOf = (endpoint: string | undefined): number | undefined =>
  endpoint === undefined ? undefined : validPort(Number(new URL(endpoint).port));

const only = (ports: Record<string, number | undefined>): StackPorts =>
  Object.fromEntries(Object.entries(ports).filter(([, v]) => v !== undefined)) as StackPorts;

/** The ports recorded in `dataDir`, or none (first start, or an unreadable file). */
export function readStackPorts(dataDir: string): StackPorts {
  try {
    const j = JSON.parse(readFileSync(join(dataDir, FILE), 'utf8')) as Record<string, unknown>;
    return only(Object.fromEntries(NAMES.map(([key]) => [key, validPort(j[key])])));
  } catch {
    return {};
  }
}

/** Records the stack's ports; returns a line for each that could not be the recorded one. */
export function recordStackPorts(dataDir: string, wanted: StackPorts, endpoints: StackEndpoints): string[] {
  const now = only(Object.fromEntries(NAMES.map(([key, endpoint]) => [key, portOf(endpoints[endpoint])])));
  writeFileSync(join(dataDir, FILE), `${JSON.stringify(now)}\n`);
  const moved: string[] = [];
  for (const [key, , name] of NAMES) {
    // Clients reach the emulator only through the gateway, so its own port may move unsaid.
    if (key === 'sqsEmulator') continue;
    const before = wanted[key];
    if (before !== undefined && now[key] !== undefined && before !== now[key]) {
      moved.push(
        `${name}'s port ${before} is taken by another program; it is on ${now[key]} now, so clients ` +
          'started before this restart must be started again.',
      );
    }
  }
  return moved;
}
