/**
 * The agent's lean SQS client against a loopback HTTP server that plays SQS: what goes on the
 * wire (JSON protocol, a SigV4 signature equal to the AWS SDK's signer's), and how it handles
 * errors, throttling, clock skew, timeouts and aborts.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apiUnits, type CallTally } from '../../../lib/adapters/api-calls.ts';
import { staticCredentials } from '../../../lib/adapters/credentials.ts';
import { SqsBus } from '../../../lib/adapters/sqs-api.ts';
import { defaultSqsEndpoint, SqsHttpClient } from '../../../lib/adapters/sqs-http.ts';
import { QueueGoneError } from '../../../lib/ports/bus.ts';

interface Seen {
  headers: IncomingMessage['headers'];
  body: string;
}
type Reply = (req: Seen, res: ServerResponse) => void;

let server: Server;
let endpoint: string;
let seen: Seen[] = [];
let replies: Reply[] = [];

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  ((_req: Seen, res: ServerResponse) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...headers });
    res.end(JSON.stringify(body));
  }) satisfies Reply;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const reply = replies.shift() ?? json(200, {});
      reply(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  seen = [];
  replies = [];
});

const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

function client(o: Partial<ConstructorParameters<typeof SqsHttpClient>[0]> = {}): SqsHttpClient {
  return new SqsHttpClient({ region: 'eu-west-1', endpoint, credentials: staticCredentials(CREDS), ...o });
}

class Sha256 {
  readonly #h;
  constructor(secret?: unknown) {
    this.#h = secret ? createHmac('sha256', secret as string) : createHash('sha256');
  }
  update(d: unknown) {
    this.#h.update(d as string);
  }
  async digest() {
    return new Uint8Array(this.#h.digest());
  }
}

describe('SqsHttpClient', () => {
  it('speaks the JSON protocol, signed as the AWS SDK signs', async () => {
    replies.push(json(200, { QueueUrl: `${endpoint}/000000000000/q.fifo` }));
    const fixed = Date.parse('2026-11-24T10:00:00Z');
    const c = client({ now: () => fixed });
    const input = { QueueName: 'q.fifo', Attributes: { FifoQueue: 'true' } };
    expect(await c.call('CreateQueue', input)).toEqual({ QueueUrl: `${endpoint}/000000000000/q.fifo` });
    c.close();

    const got = seen[0]!;
    expect(got.headers['x-amz-target']).toBe('AmazonSQS.CreateQueue');
    expect(got.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(got.headers['x-amz-date']).toBe('20261124T100000Z');
    expect(JSON.parse(got.body)).toEqual(input);

    // The AWS SDK's own signer, over the same request, gives the same signature.
    const u = new URL(endpoint);
    const reference = await new SignatureV4({
      service: 'sqs',
      region: 'eu-west-1',
      credentials: CREDS,
      sha256: Sha256,
      applyChecksum: false,
    }).sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: u.hostname,
        port: Number(u.port),
        path: '/',
        query: {},
        headers: {
          host: u.host,
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'AmazonSQS.CreateQueue',
          'content-length': String(Buffer.byteLength(got.body)),
        },
        body: got.body,
      },
      { signingDate: new Date(fixed) },
    );
    const signature = (h: string) => /Signature=([0-9a-f]{64})/.exec(h)?.[1];
    expect(signature(String(got.headers.authorization))).toBe(
      signature(String(reference.headers.authorization ?? reference.headers.Authorization)),
    );
    expect(got.headers.authorization).toContain('Credential=AKIDEXAMPLE/20261124/eu-west-1/sqs/aws4_request');
  });

  it('sends the session token of temporary credentials', async () => {
    const c = client({ credentials: staticCredentials({ ...CREDS, sessionToken: 'token-1' }) });
    await c.call('GetQueueUrl', { QueueName: 'q' });
    c.close();
    expect(seen[0]!.headers['x-amz-security-token']).toBe('token-1');
  });

  it("names errors as the service does and does not retry the caller's mistakes", async () => {
    replies.push(
      json(
        400,
        { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' },
        { 'x-amzn-query-error': 'AWS.SimpleQueueService.NonExistentQueue;Sender' },
      ),
    );
    const c = client();
    const err = await c.call('GetQueueUrl', { QueueName: 'nope' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('QueueDoesNotExist');
    expect((err as Error).message).toContain('AWS.SimpleQueueService.NonExistentQueue');
    expect(seen).toHaveLength(1);

    // The Bus turns it into the port's QueueGoneError.
    replies.push(json(400, { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'gone' }));
    await expect(new SqsBus(c).send(`${endpoint}/1/q`, [{ body: '{}' }])).rejects.toBeInstanceOf(
      QueueGoneError,
    );
    c.close();
  });

  it('retries 5xx and throttling with backoff, up to maxAttempts, and counts each call once', async () => {
    replies.push(json(500, { __type: 'InternalError', message: 'boom' }));
    replies.push(json(400, { __type: 'com.amazonaws.sqs#RequestThrottled', message: 'slow down' }));
    replies.push(json(200, { Messages: [] }));
    const tally: CallTally = new Map();
    const c = client({ tally });
    expect(await c.call('ReceiveMessage', { QueueUrl: 'q', WaitTimeSeconds: 0 })).toEqual({ Messages: [] });
    expect(seen).toHaveLength(3);
    expect(tally.get('SQS.ReceiveMessage')).toBe(1);

    seen = [];
    for (let i = 0; i < 3; i++) replies.push(json(503, { message: 'unavailable' }));
    const err = await client({ maxAttempts: 3 })
      .call('ReceiveMessage', { QueueUrl: 'q', WaitTimeSeconds: 0 })
      .catch((e: Error) => e);
    expect((err as Error).name).toBe('Http503');
    expect(seen).toHaveLength(3);
    c.close();
  });

  it('counts the entries it sends and deletes and the messages it receives, once per call', async () => {
    const unitsOf = (k: string) => apiUnits.get(k) ?? 0;
    const sent = unitsOf('SQS.SendMessageBatch');
    const received = unitsOf('SQS.ReceiveMessage');
    replies.push(json(500, { __type: 'InternalError', message: 'boom' })); // a retry counts nothing more
    replies.push(json(200, { Successful: [], Failed: [] }));
    replies.push(json(200, { Messages: [{ MessageId: 'a' }, { MessageId: 'b' }] }));
    const c = client({ tally: new Map() });
    const entries = ['0', '1', '2'].map((Id) => ({ Id, MessageBody: Id, MessageGroupId: Id }));
    await c.call('SendMessageBatch', { QueueUrl: 'q', Entries: entries });
    await c.call('ReceiveMessage', { QueueUrl: 'q', WaitTimeSeconds: 0 });
    expect(unitsOf('SQS.SendMessageBatch') - sent).toBe(3);
    expect(unitsOf('SQS.ReceiveMessage') - received).toBe(2);
    c.close();
  });

  it('signs again with the offset the server shows when its clock and ours disagree', async () => {
    const ours = Date.parse('2026-11-24T10:00:00Z');
    const theirs = new Date(ours + 3_600_000).toUTCString();
    replies.push(
      json(400, { __type: 'RequestTimeTooSkewed', message: 'Signature expired' }, { date: theirs }),
      json(200, { QueueUrl: 'u' }),
    );
    const c = client({ now: () => ours });
    expect(await c.call('GetQueueUrl', { QueueName: 'q' })).toEqual({ QueueUrl: 'u' });
    expect(seen.map((s) => s.headers['x-amz-date'])).toEqual(['20261124T100000Z', '20261124T110000Z']);

    // A signature refused while the clocks agree is a real refusal: not retried.
    seen = [];
    replies.push(json(400, { __type: 'InvalidSignatureException', message: 'no' }, { date: theirs }));
    const err = await c.call('GetQueueUrl', { QueueName: 'q' }).catch((e: Error) => e);
    expect((err as Error).name).toBe('InvalidSignatureException');
    expect(seen).toHaveLength(1);
    c.close();
  });

  it('abandons a silent connection after its socket timeout, and retries it', async () => {
    replies.push(() => {
      // Never answers.
    });
    replies.push(json(200, { Messages: [] }));
    const c = client({ socketTimeoutMs: 200 });
    expect(await c.call('ReceiveMessage', { QueueUrl: 'q', WaitTimeSeconds: 0 })).toEqual({ Messages: [] });
    expect(seen).toHaveLength(2);
    c.close();
  });

  it('stops a long poll when its signal aborts, without retrying', async () => {
    replies.push(() => {
      // A long poll in progress.
    });
    const c = client();
    const ac = new AbortController();
    const call = c.call('ReceiveMessage', { QueueUrl: 'q', WaitTimeSeconds: 20 }, { signal: ac.signal });
    await new Promise<void>((r) => {
      const check = () => (seen.length > 0 ? r() : setImmediate(check));
      check();
    });
    ac.abort();
    await expect(call).rejects.toThrow();
    expect(seen).toHaveLength(1);
    c.close();
  });

  it("defaults to the region's public endpoint", () => {
    expect(defaultSqsEndpoint('eu-west-1')).toBe('https://sqs.eu-west-1.amazonaws.com');
    expect(defaultSqsEndpoint('cn-north-1')).toBe('https://sqs.cn-north-1.amazonaws.com.cn');
  });
});
