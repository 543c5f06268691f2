/**
 * The local SQS gateway gives each access key its own identity: two clients with different keys
 * are two different SenderIds to the event-source runner (and so to the control plane's handlers),
 * and no client can pass for another — not with another's key id and a wrong secret, not with a
 * message attribute, not by leaving the request unsigned.
 */

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/aws-config.ts';
import { staticCredentials } from '../../lib/adapters/credentials.ts';
import { SqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import { startEventSource } from '../../lib/local/esm-runner.ts';
import { checkSigV4, type SqsGateway, startSqsGateway } from '../../lib/local/sqs-gateway.ts';
import { eventually } from '../integration/harness.ts';
import { sqsEmulatorEndpoint, testAwsConfig, uniquePrefix } from '../setup/cluster.ts';
import { deferred } from './helpers.ts';

const SECRETS: Record<string, string> = { alice: 'alice-secret', bob: 'bob-secret' };
let gateway: SqsGateway;
let region: string;
const clients: SQSClient[] = [];

const client = (accessKeyId: string, secretAccessKey: string, endpoint = gateway.endpoint) => {
  const c = new SQSClient({
    region,
    endpoint,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
    useQueueUrlAsEndpoint: false,
  });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  const aws = testAwsConfig();
  region = aws.region;
  // In front of the emulator itself (the run's own gateway knows other secrets).
  gateway = await startSqsGateway({ upstream: sqsEmulatorEndpoint(), secretFor: (k) => SECRETS[k] });
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  await gateway?.stop();
});

async function fifoQueue(c: SQSClient): Promise<string> {
  const r = await c.send(
    new CreateQueueCommand({
      QueueName: `${uniquePrefix()}-calls.fifo`,
      Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
    }),
  );
  return r.QueueUrl!;
}

describe('the local SQS gateway', () => {
  it('two access keys are two senders, as the event-source runner sees them', async () => {
    const alice = client('alice', SECRETS.alice!);
    const bob = client('bob', SECRETS.bob!);
    const url = await fifoQueue(alice);
    await alice.send(
      new SendMessageCommand({ QueueUrl: url, MessageBody: 'from alice', MessageGroupId: 'g1' }),
    );
    await bob.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          {
            Id: '1',
            MessageBody: 'from bob, claiming to be alice',
            MessageGroupId: 'g2',
            // A sender's attempt to name itself: attributes are the sender's to set, SenderId is not.
            MessageAttributes: { SenderId: { DataType: 'String', StringValue: 'alice' } },
          },
        ],
      }),
    );
    const seen = new Map<string, string>();
    const both = deferred<void>();
    const runner = startEventSource({
      client: client('alice', SECRETS.alice!),
      queueUrl: url,
      fifo: true,
      batchSize: 10,
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
      waitTimeSeconds: 1,
      handler: async (event: SQSEvent): Promise<SQSBatchResponse> => {
        for (const r of event.Records) seen.set(r.body, r.attributes.SenderId);
        if (seen.size === 2) both.resolve();
        return { batchItemFailures: [] };
      },
    });
    try {
      await both.promise;
    } finally {
      await runner.stop();
    }
    expect(Object.fromEntries(seen)).toEqual({
      'from alice': 'alice',
      'from bob, claiming to be alice': 'bob',
    });
  });

  it('another key id with the wrong secret, an unknown key, or no signature is refused; nothing is sent', async () => {
    const url = await fifoQueue(client('alice', SECRETS.alice!));
    const attempts = [client('alice', SECRETS.bob!), client('mallory', 'anything')];
    for (const c of attempts)
      await expect(
        c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'forged', MessageGroupId: 'g' })),
      ).rejects.toMatchObject({
        $metadata: { httpStatusCode: 403 },
      });
    const unsigned = await fetch(gateway.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' },
      body: JSON.stringify({ QueueUrl: url, MessageBody: 'unsigned', MessageGroupId: 'g' }),
    });
    expect(unsigned.status).toBe(403);
    const r = await client('alice', SECRETS.alice!).send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    expect(r.Messages ?? []).toEqual([]);
  });

  it("the agent's own SQS client (aws4 signing) passes too, as its own sender", async () => {
    const url = await fifoQueue(client('alice', SECRETS.alice!));
    const agentSqs = new SqsHttpClient({
      region,
      endpoint: gateway.endpoint,
      credentials: staticCredentials({ accessKeyId: 'bob', secretAccessKey: SECRETS.bob! }),
      maxAttempts: 1,
    });
    await agentSqs.call('SendMessageBatch', {
      QueueUrl: url,
      Entries: [
        { Id: '1', MessageBody: 'from the agent', MessageGroupId: 'g', MessageDeduplicationId: 'd1' },
      ],
    });
    const r = await agentSqs.call('ReceiveMessage', {
      QueueUrl: url,
      MessageSystemAttributeNames: ['SenderId'],
      WaitTimeSeconds: 0,
    });
    expect(r.Messages?.map((m) => m.Attributes?.SenderId)).toEqual(['bob']);
  });

  it("a message sent around the gateway has no sender, not the emulator's shared 000000000000", async () => {
    const alice = client('alice', SECRETS.alice!);
    const url = await fifoQueue(alice);
    const direct = client(
      LOCAL_CREDENTIALS.accessKeyId,
      LOCAL_CREDENTIALS.secretAccessKey,
      sqsEmulatorEndpoint(),
    );
    await direct.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'around', MessageGroupId: 'g' }));
    const r = await alice.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MessageSystemAttributeNames: ['SenderId'],
        WaitTimeSeconds: 0,
      }),
    );
    expect(r.Messages?.map((m) => m.Attributes?.SenderId)).toEqual(['']);
  });
});

describe('the local SQS gateway, with a slow upstream', () => {
  it('a send the client gave up waiting for still has its sender when received', async () => {
    // A stand-in for the emulator that holds its answer to SendMessage until the client is gone.
    const forwarded = deferred<void>();
    const clientGone = deferred<void>();
    const upstream = createServer((req, res) => {
      req.resume();
      req.on('end', async () => {
        res.setHeader('content-type', 'application/x-amz-json-1.0');
        if (req.headers['x-amz-target'] === 'AmazonSQS.SendMessage') {
          forwarded.resolve();
          await clientGone.promise;
          res.end(JSON.stringify({ MessageId: 'm-slow', MD5OfMessageBody: 'x' }));
        } else {
          res.end(
            JSON.stringify({
              Messages: [
                {
                  MessageId: 'm-slow',
                  ReceiptHandle: 'r',
                  Body: 'slow',
                  MD5OfBody: createHash('md5').update('slow').digest('hex'),
                  Attributes: { SenderId: '000000000000' },
                },
              ],
            }),
          );
        }
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const slow = await startSqsGateway({
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      secretFor: (k) => SECRETS[k],
    });
    try {
      const abort = new AbortController();
      const alice = client('alice', SECRETS.alice!, slow.endpoint);
      const sent = alice.send(
        new SendMessageCommand({
          QueueUrl: 'http://q/000000000000/q.fifo',
          MessageBody: 'slow',
          MessageGroupId: 'g',
        }),
        { abortSignal: abort.signal },
      );
      await forwarded.promise;
      abort.abort();
      await expect(sent).rejects.toThrow();
      // A round trip through the gateway after the abort: by then it has seen alice's
      // connection close (which, before, cut the forwarded send short).
      const bob = client('bob', SECRETS.bob!, slow.endpoint);
      await bob.send(new ReceiveMessageCommand({ QueueUrl: 'http://q/000000000000/q.fifo' }));
      clientGone.resolve();
      // The gateway hears the answer after the client left; the sender is known once it has.
      const senderOf = async () =>
        (
          await bob.send(
            new ReceiveMessageCommand({
              QueueUrl: 'http://q/000000000000/q.fifo',
              MessageSystemAttributeNames: ['SenderId'],
            }),
          )
        ).Messages?.[0]?.Attributes?.SenderId;
      await eventually(async () => (await senderOf()) === 'alice', 'the sender to be recorded');
    } finally {
      await slow.stop();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });
});

describe('checkSigV4', () => {
  it('any change to a signed request breaks its signature', async () => {
    const alice = client('alice', SECRETS.alice!);
    let captured: { method: string; url: string; headers: Record<string, string>; body: Buffer } | undefined;
    alice.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as {
          method: string;
          path: string;
          headers: Record<string, string>;
          body: string;
        };
        captured = {
          method: req.method,
          url: req.path,
          headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v])),
          body:
            typeof req.body === 'string'
              ? Buffer.from(req.body, 'utf8')
              : Buffer.from(req.body as unknown as Uint8Array),
        };
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'capture' },
    );
    await alice.send(new CreateQueueCommand({ QueueName: `${uniquePrefix()}-sig` }));
    const req = captured!;
    const secretFor = (k: string) => SECRETS[k];
    expect(checkSigV4(req, secretFor)).toEqual({ ok: true, accessKeyId: 'alice' });
    expect(checkSigV4({ ...req, body: Buffer.from(`${req.body} `) }, secretFor)).toMatchObject({
      ok: false,
      code: 'SignatureDoesNotMatch',
    });
    expect(
      checkSigV4({ ...req, headers: { ...req.headers, 'x-amz-target': 'AmazonSQS.DeleteQueue' } }, secretFor),
    ).toMatchObject({ ok: false });
    expect(
      checkSigV4(
        {
          ...req,
          headers: {
            ...req.headers,
            authorization: req.headers.authorization!.replace('Credential=alice/', 'Credential=bob/'),
          },
        },
        secretFor,
      ),
    ).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(
      checkSigV4(
        { ...req, headers: { ...req.headers, authorization: undefined as unknown as string } },
        secretFor,
      ),
    ).toMatchObject({ ok: false, code: 'MissingAuthenticationToken' });
  });
});
