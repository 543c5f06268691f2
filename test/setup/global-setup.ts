/**
 * Vitest global setup: starts DynamoDB Local and fauxqs once for the whole run and hands their
 * endpoints to every test file (`inject('emulators')`); stops them at teardown.
 *
 * - `AWS_ENDPOINT_URL` set: no emulator is started; tests use that endpoint (LocalStack:
 *   `localstack start`, then `AWS_ENDPOINT_URL=http://localhost:4566 npm test`).
 * - `MESO_TEST_EMULATORS=0`: nothing is started (unit tests only); `createTestCluster` then throws.
 * - `MESO_EMULATOR_LOG=1`: the emulators' own output goes to stderr.
 *
 * SQS is reached through the identity gateway (lib/local/sqs-gateway.ts): each access key is its
 * own SenderId, so a test client signing with another key id (`testCredentials`) is another
 * principal to the control plane.
 *
 * Every test file provisions its own tables and queues under a fresh prefix (`createTestCluster`),
 * so files are isolated from each other and run in parallel against the same emulators.
 */
import type { TestProject } from 'vitest/node';
import { awsConfigFromEnv } from '../../lib/adapters/aws-config.ts';
import { startEmulators } from '../../lib/local/emulators.ts';
import { TEST_CREDENTIALS } from './provided.ts';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (process.env.AWS_ENDPOINT_URL) {
    project.provide('emulators', { ...awsConfigFromEnv(), embedded: false });
    return undefined;
  }
  if (process.env.MESO_TEST_EMULATORS === '0') {
    project.provide('emulators', undefined);
    return undefined;
  }
  // The key every test client signs with unless it picks its own (see `testAwsConfig`); the
  // identity gateway must know its secret, and child processes inherit it.
  process.env.AWS_ACCESS_KEY_ID ??= TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= TEST_CREDENTIALS.secretAccessKey;
  const emulators = await startEmulators({
    // SQS behind the identity gateway: each access key its own SenderId, as in SQS, so every
    // integration test runs with real identities and the impersonation tests can try for real.
    identityGateway: true,
    ...(process.env.MESO_EMULATOR_LOG ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
  });
  project.provide('emulators', {
    region: emulators.region,
    dynamoEndpoint: emulators.dynamoEndpoint,
    sqsEndpoint: emulators.sqsEndpoint,
    ...(emulators.sqsEmulatorEndpoint ? { sqsEmulatorEndpoint: emulators.sqsEmulatorEndpoint } : {}),
    embedded: true,
  });
  return () => emulators.stop();
}
