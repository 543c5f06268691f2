/**
 * Waiting for the services the local stack uses (LocalStack starting, say) before provisioning:
 * an endpoint that is not ready yet is asked again for a while, and one that never answers is
 * named with its service and address, instead of an SDK's deserialization error.
 */
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type AwsConfig, clientOptions } from '../adapters/aws-config.ts';

/** One attempt of a probe may take this long (an endpoint that accepts and never answers). */
const PROBE_TIMEOUT_MS = 5_000;

export interface WaitOptions {
  /** How long to keep asking (default 60 s). */
  readonly timeoutMs?: number;
  /** Between attempts (default 1 s). */
  readonly intervalMs?: number;
  /** Told once per service when its first attempt fails: the stack is waiting for it. */
  readonly onWaiting?: (service: string, endpoint: string, problem: string) => void;
}

/** The default of `WaitOptions.timeoutMs`. */
export const ENDPOINT_WAIT_MS = 60_000;

/** A service that did not answer within the wait. */
export class EndpointNotReadyError extends Error {
  override name = 'EndpointNotReadyError';
}

function describeProblem(e: unknown): string {
  const err = e as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const status = err?.$metadata?.httpStatusCode;
  const message = err?.message ?? String(e);
  // What the SDK says of a body that is not the API's (a proxy's "Error: …" page) helps nobody.
  const text = /Deserialization error/.test(message)
    ? 'an answer that is not the AWS API'
    : `${err?.code ?? err?.name ?? 'Error'}: ${message}`;
  return (status !== undefined ? `HTTP ${status}, ${text}` : text).replace(/\s+/g, ' ').slice(0, 200);
}

/**
 * Resolves once DynamoDB and SQS both answer a harmless request (ListTables, ListQueues); throws
 * an `EndpointNotReadyError` naming the service and the endpoint that still does not after the wait.
 */
export async function waitForEndpoints(aws: AwsConfig, opts: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? ENDPOINT_WAIT_MS);
  const intervalMs = opts.intervalMs ?? 1000;
  // One attempt per probe: the waiting is done here, where it can be told.
  const dynamo = new DynamoDBClient({ ...clientOptions(aws, aws.dynamoEndpoint), maxAttempts: 1 });
  const sqs = new SQSClient({
    ...clientOptions(aws, aws.sqsEndpoint),
    maxAttempts: 1,
    useQueueUrlAsEndpoint: false,
  });
  const timeout = () => ({ abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const services = [
    {
      name: 'DynamoDB',
      endpoint: aws.dynamoEndpoint ?? aws.endpoint ?? `the AWS endpoint of ${aws.region}`,
      probe: () => dynamo.send(new ListTablesCommand({ Limit: 1 }), timeout()),
    },
    {
      name: 'SQS',
      endpoint: aws.sqsEndpoint ?? aws.endpoint ?? `the AWS endpoint of ${aws.region}`,
      probe: () => sqs.send(new ListQueuesCommand({ MaxResults: 1 }), timeout()),
    },
  ];
  try {
    await Promise.all(
      services.map(async ({ name, endpoint, probe }) => {
        for (let attempt = 0; ; attempt++) {
          try {
            await probe();
            return;
          } catch (e) {
            const problem = describeProblem(e);
            if (Date.now() + intervalMs > deadline) {
              throw new EndpointNotReadyError(
                `${name} at ${endpoint} is not answering (${problem}); is it running and ready?`,
              );
            }
            if (attempt === 0) opts.onWaiting?.(name, endpoint, problem);
            await new Promise((r) => setTimeout(r, intervalMs));
          }
        }
      }),
    );
  } finally {
    dynamo.destroy();
    sqs.destroy();
  }
}
