/**
 * The operator API's Lambda adapter (lib/lambda/operator-api.ts) takes the caller's principal
 * only from the identity the function URL's AWS_IAM auth verified (`requestContext.authorizer.iam`),
 * never from a header, the query or the body, which the caller writes. Driven through the real
 * handler over the in-memory store, with stored ACLs that let only `AIDAOPS` kill tasks.
 */
import type { LambdaFunctionURLEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { saveAcls } from '../../../lib/control/acl-store.ts';
import { aclsFromJson } from '../../../lib/core/acl.ts';
import { apiRequestOf, operatorApiHandler, signedPrincipal } from '../../../lib/lambda/operator-api.ts';
import { putAgent, putFramework, putTask, testControl } from '../control/helpers.ts';

function event(opts: {
  method?: string;
  path: string;
  iam?: Record<string, unknown>;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  body?: string;
}): LambdaFunctionURLEvent {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: opts.path,
    rawQueryString: new URLSearchParams(opts.query ?? {}).toString(),
    headers: opts.headers ?? {},
    ...(opts.query ? { queryStringParameters: opts.query } : {}),
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'url-id',
      domainName: 'url-id.lambda-url.us-east-1.on.aws',
      domainPrefix: 'url-id',
      http: {
        method: opts.method ?? 'GET',
        path: opts.path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.9',
        userAgent: 'test',
      },
      requestId: 'r1',
      routeKey: '$default',
      stage: '$default',
      time: '03/Dec/2026:15:00:00 +0000',
      timeEpoch: 0,
      ...(opts.iam ? { authorizer: { iam: opts.iam } } : {}),
    },
  } as unknown as LambdaFunctionURLEvent;
}

/** Every place a caller could write a claim of being `AIDAOPS`. */
const FORGED = {
  headers: {
    'x-meso-principal': 'AIDAOPS',
    'x-amz-user-id': 'AIDAOPS',
    'x-amzn-iam-userid': 'AIDAOPS',
    principal: 'AIDAOPS',
  },
  query: { principal: 'AIDAOPS', userId: 'AIDAOPS' },
  body: JSON.stringify({
    principal: 'AIDAOPS',
    requestContext: { authorizer: { iam: { userId: 'AIDAOPS' } } },
  }),
};

async function setup() {
  const t = testControl();
  await saveAcls(
    t.store,
    aclsFromJson({
      permissive: false,
      operator_calls: [{ principals: { values: ['AIDAOPS'] }, calls: { type: 'ANY' } }],
      teardown_frameworks: [{ principals: { values: ['AIDAOPS'] }, framework_principals: { type: 'ANY' } }],
    }),
    undefined,
    t.now,
  );
  await putFramework(t, 'f1');
  await putAgent(t, 'a1');
  await putTask(t, 'f1', 't1', 'a1');
  const lambda = operatorApiHandler(() => t.deps);
  const handler = async (e: LambdaFunctionURLEvent) =>
    (await lambda(e)) as { statusCode: number; body: string };
  return { t, handler };
}

describe('the operator API Lambda: whose request it is', () => {
  it('is the signed IAM user id, whatever headers, query or body say', async () => {
    const e = event({
      method: 'POST',
      path: '/api/tasks/t1/kill',
      iam: { userId: 'AIDAINTERN', userArn: 'arn:aws:iam::123456789012:user/intern' },
      ...FORGED,
    });
    expect(signedPrincipal(e)).toBe('AIDAINTERN');
    expect(apiRequestOf(e)?.principal).toBe('AIDAINTERN');
  });

  it('refuses a kill by a signer the ACLs do not allow, though every forgeable field names the operator', async () => {
    const { t, handler } = await setup();
    const res = await handler(
      event({ method: 'POST', path: '/api/tasks/t1/kill', iam: { userId: 'AIDAINTERN' }, ...FORGED }),
    );
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(res.body).error).toContain('"AIDAINTERN"');
    // Nothing was sent to the agent, and the refusal was counted.
    expect(t.bus.sent).toHaveLength(0);
    expect([...t.counters.keys()].some((k) => k.startsWith('OperatorCallsRejected'))).toBe(true);
  });

  it('refuses any request that carries no verified IAM identity, with the forged claims and without', async () => {
    const { t, handler } = await setup();
    for (const e of [
      event({ method: 'POST', path: '/api/tasks/t1/kill', ...FORGED }),
      event({ path: '/api/state', ...FORGED }),
      event({
        method: 'POST',
        path: '/api/frameworks/f1/teardown',
        iam: { userArn: 'arn:aws:iam::1:user/x' },
      }),
    ]) {
      const res = await handler(e);
      expect(res.statusCode).toBe(403);
      expect(String(res.body)).toContain('no IAM identity');
    }
    expect(t.bus.sent).toHaveLength(0);
  });

  it('lets the signer the ACLs name kill the task', async () => {
    const { t, handler } = await setup();
    const res = await handler(
      event({ method: 'POST', path: '/api/tasks/t1/kill', iam: { userId: 'AIDAOPS' } }),
    );
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(String(res.body))).toMatchObject({ taskId: 't1', outcome: 'kill-sent' });
    expect(t.bus.sent.some((s) => s.body.type === 'KILL')).toBe(true);
  });
});
