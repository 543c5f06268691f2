/**
 * How every AWS client finds its endpoint and region. `AWS_ENDPOINT_URL` (LocalStack, the local
 * emulators or a VPC endpoint) wins; the region comes from `AWS_REGION`, then `AWS_DEFAULT_REGION`,
 * then us-east-1. SQS clients always get an explicit endpoint when one is set: emulator queue URLs
 * name hosts like `sqs.us-east-1.localhost` that do not resolve, so the SDK must not route by URL.
 */
export interface AwsConfig {
  readonly region: string;
  /** Overall endpoint (emulators, LocalStack). */
  readonly endpoint?: string;
  /** Per-service endpoints, when DynamoDB and SQS are served apart (the embedded local stack). */
  readonly dynamoEndpoint?: string;
  readonly sqsEndpoint?: string;
}

export function awsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AwsConfig {
  const endpoint = env.AWS_ENDPOINT_URL || undefined;
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint,
    dynamoEndpoint: env.AWS_ENDPOINT_URL_DYNAMODB || endpoint,
    sqsEndpoint: env.AWS_ENDPOINT_URL_SQS || endpoint,
  };
}

/** The emulators' (and LocalStack's) endpoints: on loopback. */
const isLocalEndpoint = (endpoint: string | undefined): boolean =>
  endpoint !== undefined && /^https?:\/\/(127\.|localhost|\[::1\])/.test(endpoint);

/** What local clients sign with when no keys are set: emulators accept any. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'mesolocal', secretAccessKey: 'mesolocal' } as const;

/** `LOCAL_CREDENTIALS` for an emulator's endpoint when no keys are set; else none (the client's own chain). */
export function localCredentials(endpoint: string | undefined): typeof LOCAL_CREDENTIALS | undefined {
  return isLocalEndpoint(endpoint) && !process.env.AWS_ACCESS_KEY_ID ? LOCAL_CREDENTIALS : undefined;
}

/** Emulators accept any credentials; real accounts use the default provider chain. */
export function clientOptions(config: AwsConfig, endpoint: string | undefined) {
  const credentials = localCredentials(endpoint);
  return {
    region: config.region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 5,
  };
}
