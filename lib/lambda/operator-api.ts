/**
 * The operator API in AWS: a Lambda function behind a function URL with IAM auth (the CDK
 * construct `MesoOperatorApi`). The URL's IAM check decides who may call it at all; the signer's
 * IAM user id, from the event's verified identity only, is the principal that KILL and TEARDOWN
 * are authorized as (lib/control/operator-api.ts).
 * The dashboard's files are built at synthesis and inlined into the bundle (`MESO_DASHBOARD`).
 */
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { deadLetterQueues } from '../adapters/dlq.ts';
import { createSqsClient } from '../adapters/sqs.ts';
import type { ControlDeps } from '../control/deps.ts';
import {
  type ApiRequest,
  handleOperatorApi,
  type OperatorApiDeps,
  type StaticAsset,
} from '../control/operator-api.ts';

declare const MESO_DASHBOARD: string | undefined;

/** The dashboard inlined at bundling, if it was. */
export function bundledAssets(): Record<string, StaticAsset> | undefined {
  return typeof MESO_DASHBOARD === 'string'
    ? (JSON.parse(MESO_DASHBOARD) as Record<string, StaticAsset>)
    : undefined;
}

/** The IAM identity the function URL's AWS_IAM auth put in the event (AWS fills it; callers cannot). */
interface IamAuthorizer {
  readonly userId?: unknown;
  readonly userArn?: unknown;
  readonly callerId?: unknown;
}

/**
 * Who signed the request, as the ACLs name principals: the IAM `userId` the function URL's
 * AWS_IAM auth verified (`AIDA…` for a user, `AROA…:<session>` for a role's session: what SQS
 * reports as SenderId and `meso` finds with STS GetCallerIdentity), else its `callerId`.
 * Undefined when the event carries no IAM identity (a URL without AWS_IAM auth): then nobody is
 * trusted. Headers, the query and the body are the caller's to write and are never read for it.
 */
export function signedPrincipal(event: LambdaFunctionURLEvent): string | undefined {
  const iam = (event.requestContext as { authorizer?: { iam?: IamAuthorizer } } | undefined)?.authorizer?.iam;
  for (const v of [iam?.userId, iam?.callerId]) {
    if (typeof v === 'string' && v.length > 0 && v.length <= 512) return v;
  }
  return undefined;
}

/** The router's request from a function URL event; undefined when no signed principal is in it. */
export function apiRequestOf(event: LambdaFunctionURLEvent): ApiRequest | undefined {
  const principal = signedPrincipal(event);
  if (principal === undefined) return undefined;
  const query: Record<string, string | undefined> = { ...(event.queryStringParameters ?? {}) };
  return {
    method: event.requestContext.http.method,
    path: event.rawPath,
    query,
    principal,
  };
}

export function operatorApiHandler(
  deps: () => ControlDeps,
  afterEach?: () => void,
): (event: LambdaFunctionURLEvent) => Promise<LambdaFunctionURLResult> {
  let api: OperatorApiDeps | undefined;
  const sqs = createSqsClient();
  return async (event) => {
    const control = deps();
    if (api?.control !== control) {
      const assets = bundledAssets();
      api = {
        control,
        dlqDepths: async () =>
          Object.fromEntries(
            (await deadLetterQueues(sqs, control.config.prefix)).map((d) => [d.queue, d.count] as const),
          ),
        ...(assets ? { assets } : {}),
      };
    }
    try {
      const req = apiRequestOf(event);
      if (!req) {
        control.metrics.count('OperatorCallsRejected', { call: 'UNSIGNED' });
        return {
          statusCode: 403,
          headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
          body: `${JSON.stringify({ error: 'no IAM identity in the request: the function URL must use AWS_IAM auth' })}\n`,
        };
      }
      const r = await handleOperatorApi(req, api);
      return { statusCode: r.status, headers: { ...r.headers }, body: r.body };
    } finally {
      afterEach?.();
    }
  };
}
