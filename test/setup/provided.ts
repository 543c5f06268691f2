/**
 * What the global setup hands every test file through `inject('emulators')`: where DynamoDB and
 * SQS answer. `embedded` says whether they are the emulators started for this run (else
 * `AWS_ENDPOINT_URL`: LocalStack or an account). Undefined when `MESO_TEST_EMULATORS=0`.
 */
import type { AwsConfig } from '../../lib/adapters/aws-config.ts';

export interface TestEndpoints extends AwsConfig {
  readonly embedded: boolean;
  /**
   * The SQS emulator itself, behind the identity gateway that `sqsEndpoint` names (embedded
   * emulators only): for the gateway's own tests, and for sending around it.
   */
  readonly sqsEmulatorEndpoint?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    emulators: TestEndpoints | undefined;
  }
}

/**
 * What test clients sign with when no keys are set (DynamoDB Local ≥ 1.23 refuses access key ids
 * that are not purely alphanumeric).
 */
export const TEST_CREDENTIALS = { accessKeyId: 'mesotest', secretAccessKey: 'mesotest' } as const;
