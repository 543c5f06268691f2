/**
 * The operator API in AWS: a Lambda function behind a function URL with IAM auth (the CDK
 * construct `MesoOperatorApi`). The URL's IAM check decides who may call it at all; the caller's
 * IAM ARN is the principal that KILL and TEARDOWN are authorized as (lib/control/operator-api.ts).
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

/** The router's request from a function URL event; the principal is the signer's IAM ARN. */
export function apiRequestOf(event: LambdaFunctionURLEvent): ApiRequest {
  const query: Record<string, string | undefined> = { ...(event.queryStringParameters ?? {}) };
  const iam = (event.requestContext as { authorizer?: { iam?: { userArn?: string } } }).authorizer?.iam;
  return {
    method: event.requestContext.http.method,
    path: event.rawPath,
    query,
    principal: iam?.userArn ?? 'unknown',
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
      const r = await handleOperatorApi(apiRequestOf(event), api);
      return { statusCode: r.status, headers: { ...r.headers }, body: r.body };
    } finally {
      afterEach?.();
    }
  };
}
