/**
 * `meso dev` against an endpoint that is not ready yet (LocalStack starting): it waits, and one
 * that never answers is named with its service and address. Fake endpoints over HTTP on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { EndpointNotReadyError, waitForEndpoints } from '../../lib/local/endpoints.ts';

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** An endpoint that answers its first `notReady` requests as a proxy whose backend is down, then `{}`. */
async function endpoint(notReady: number): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      if (n <= notReady) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('Error: connect ECONNREFUSED 127.0.0.1:4510');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.end('{}');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => n };
}

it('waits for endpoints that answer after a while, saying once per service what it waits for', async () => {
  const dynamo = await endpoint(2);
  const sqs = await endpoint(3);
  const waiting: string[] = [];
  await waitForEndpoints(
    { region: 'us-east-1', dynamoEndpoint: dynamo.url, sqsEndpoint: sqs.url },
    { intervalMs: 20, timeoutMs: 30_000, onWaiting: (service, at) => waiting.push(`${service} ${at}`) },
  );
  expect(waiting.sort()).toEqual([`DynamoDB ${dynamo.url}`, `SQS ${sqs.url}`]);
  expect(dynamo.requests()).toBe(3);
  expect(sqs.requests()).toBe(4);
});

it('names the service and the endpoint that never answers', async () => {
  const dynamo = await endpoint(0);
  const sqs = await endpoint(Number.POSITIVE_INFINITY);
  const failure = await waitForEndpoints(
    { region: 'us-east-1', dynamoEndpoint: dynamo.url, sqsEndpoint: sqs.url },
    { intervalMs: 20, timeoutMs: 300 },
  ).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(EndpointNotReadyError);
  expect((failure as Error).message).toContain(`SQS at ${sqs.url} is not answering (HTTP 502`);
  expect((failure as Error).message).not.toMatch(/JSON|Deserialization/);
  expect(sqs.requests()).toBeGreaterThan(1);
});
