/**
 * What the global setup hands every test file through `inject('emulators')`: where DynamoDB and
 * SQS answer. `embedded` says whether they are the emulators started for this run (else
 * `AWS_ENDPOINT_URL`: LocalStack or an account). Undefined when `MESO_TEST_EMULATORS=0`.
 */
import type { AwsConfig } from '../../lib/adapters/aws-config.ts';

export interface TestEndpoints extends AwsConfig {
  readonly embedded: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    emulators: TestEndpoints | undefined;
  }
}
