/**
 * A fresh Meso cluster (tables and queues) for one test file, in the emulators the global setup
 * started: everything lives under a new random prefix, so test files never see each other's
 * data and can run in parallel.
 *
 * @example
 * ```ts
 * let cluster: TestCluster;
 * beforeAll(async () => { cluster = await createTestCluster(); });
 * afterAll(() => cluster.destroy());
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { type AwsConfig, LOCAL_CREDENTIALS } from '../../lib/adapters/aws-config.ts';
import { createSqsClient } from '../../lib/adapters/sqs.ts';
import type { ClusterConfig } from '../../lib/config/cluster.ts';
import type { QueueName } from '../../lib/definition/tables-queues.ts';
import { deprovision, provision } from '../../lib/local/provision.ts';
import { TEST_CREDENTIALS } from './provided.ts';

export interface TestCluster {
  readonly config: ClusterConfig;
  /** Dead-letter queue URLs by the logical name of the queue they serve. */
  readonly dlqs: Record<QueueName, string>;
  /** An SQS client for the emulator (explicit endpoint). Destroyed by `destroy()`. */
  readonly sqs: SQSClient;
  /** Deletes this cluster's tables and queues. */
  destroy(): Promise<void>;
}

/** The endpoints of this run's emulators (or of `AWS_ENDPOINT_URL`), as an `AwsConfig`. */
export function testAwsConfig(): AwsConfig {
  const endpoints = inject('emulators');
  if (!endpoints) {
    throw new Error('No emulators in this run (MESO_TEST_EMULATORS=0): this test needs DynamoDB and SQS.');
  }
  const { embedded: _embedded, sqsEmulatorEndpoint: _emulator, ...aws } = endpoints;
  if (endpoints.embedded && !process.env.AWS_ACCESS_KEY_ID) {
    process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
  }
  return aws;
}

/**
 * Credentials of another principal: an access key id of its own, signed with the local secret,
 * which the identity gateway accepts for any key id (alphanumeric, so DynamoDB Local takes it
 * too). Each `name` is its own SenderId to the control plane.
 */
export function testCredentials(name: string): { accessKeyId: string; secretAccessKey: string } {
  if (!/^[A-Za-z0-9]+$/.test(name)) throw new Error(`a test key id is alphanumeric: ${name}`);
  return { accessKeyId: name, secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey };
}

/** The SQS emulator itself, without the identity gateway in front (else the run's SQS endpoint). */
export function sqsEmulatorEndpoint(): string {
  const aws = testAwsConfig();
  return inject('emulators')?.sqsEmulatorEndpoint ?? aws.sqsEndpoint ?? aws.endpoint!;
}

/** A fresh, unique prefix: `t` and 8 hex digits. */
export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

export async function createTestCluster(opts: { prefix?: string } = {}): Promise<TestCluster> {
  const aws = testAwsConfig();
  const prefix = opts.prefix ?? uniquePrefix();
  const { queues, tables, dlqs } = await provision({ aws, prefix });
  const sqs = createSqsClient(aws);
  return {
    config: { aws, prefix, queues, tables, source: `test cluster ${prefix}` },
    dlqs,
    sqs,
    async destroy() {
      sqs.destroy();
      await deprovision({ aws, prefix });
    },
  };
}
