/**
 * SQS through the AWS SDK's client: the factory every control-plane, framework-SDK and CLI client
 * comes from, and `sdkSqs`, which serves `sqs-api.ts`'s calls with it. (The agent uses the lean
 * client in `sqs-http.ts` instead.)
 */
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { countCalls } from './api-calls.ts';
import { type AwsConfig, awsConfigFromEnv, clientOptions } from './aws-config.ts';
import type { SqsApi, SqsOp } from './sqs-api.ts';

export * from './sqs-api.ts';

export function createSqsClient(config: AwsConfig = awsConfigFromEnv()): SQSClient {
  const client = new SQSClient({
    ...clientOptions(config, config.sqsEndpoint),
    // Route by the configured (or regional) endpoint, never by the queue URL's host: emulator
    // hosts do not resolve, and a queue URL named in a call must not choose where signed
    // requests go.
    useQueueUrlAsEndpoint: false,
  });
  countCalls(client.middlewareStack, 'SQS');
  return client;
}

const COMMANDS = {
  SendMessageBatch: SendMessageBatchCommand,
  ReceiveMessage: ReceiveMessageCommand,
  DeleteMessageBatch: DeleteMessageBatchCommand,
  ChangeMessageVisibilityBatch: ChangeMessageVisibilityBatchCommand,
  CreateQueue: CreateQueueCommand,
  GetQueueUrl: GetQueueUrlCommand,
} satisfies Record<SqsOp, unknown>;

/** The SDK's client as an `SqsApi` (the inputs and outputs are the same shapes). */
export function sdkSqs(client: SQSClient): SqsApi {
  return {
    call: (op, input, opts) => {
      const Command = COMMANDS[op] as unknown as new (i: unknown) => ReceiveMessageCommand;
      return client.send(new Command(input), opts?.signal ? { abortSignal: opts.signal } : {}) as never;
    },
  };
}
