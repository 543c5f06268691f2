/**
 * One Lambda function of Meso's stack as every one is built: bundled from this repository with
 * esbuild (ESM, Node 22, arm64, the pinned AWS SDK inside rather than the runtime's, minified with
 * source maps), with its own log group and its own role that may write only to that group. The
 * control plane's functions, the operator API and the built-in frameworks all come from here;
 * each adds its own grants, event sources and cdk-nag acknowledgements.
 */
import { fileURLToPath } from 'node:url';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

/**
 * Makes `require` exist in the ESM bundle, so CommonJS dependencies that call it still work.
 * The alias avoids a clash with any `createRequire` import in the bundled code.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __mesoCreateRequire } from 'node:module'; const require = __mesoCreateRequire(import.meta.url);";

/** The repository root: functions are bundled from here, against its package-lock.json. */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LOCK_FILE = fileURLToPath(new URL('../../../package-lock.json', import.meta.url));

export interface BundledFunctionProps {
  /** Construct ids `<id>Logs`, `<id>Role`, `<id>Function` ('' for `Logs`, `Role`, `Function`). */
  readonly id: string;
  readonly functionName: string;
  /** The entry file (functions/*.ts). */
  readonly entry: string;
  /** What the role is for (its IAM description). */
  readonly roleDescription: string;
  readonly environment: Record<string, string>;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly reservedConcurrentExecutions?: number;
  /** Retries of a failed asynchronous invocation (Lambda's default: 2). */
  readonly retryAttempts?: number;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** esbuild `define`: values built at synthesis that travel inside the bundle. */
  readonly define?: Record<string, string>;
  /** Why the function has no X-Ray tracing (cdk-nag Serverless-LambdaTracing). */
  readonly noTracingBecause: string;
}

export function bundledFunction(scope: Construct, props: BundledFunctionProps): nodejs.NodejsFunction {
  const { id } = props;
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention,
    removalPolicy: props.removalPolicy,
  });
  // Its own log group only, rather than AWSLambdaBasicExecutionRole's logs on every group.
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: props.roleDescription,
  });
  logGroup.grantWrite(role);
  const fn = new nodejs.NodejsFunction(scope, `${id}Function`, {
    role,
    functionName: props.functionName,
    entry: props.entry,
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: LOCK_FILE,
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize,
    timeout: props.timeout,
    ...(props.reservedConcurrentExecutions !== undefined
      ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
      : {}),
    logGroup,
    environment: props.environment,
    ...(props.retryAttempts !== undefined ? { retryAttempts: props.retryAttempts } : {}),
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: ESM_REQUIRE_BANNER,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      // Bundle the pinned AWS SDK too, rather than whatever version the runtime ships.
      externalModules: [],
      forceDockerBundling: false,
      ...(props.define ? { define: props.define } : {}),
    },
  });
  const runtime =
    'Node.js 22 on purpose: the version package.json pins, the bundles target (node22) and CI tests on';
  acknowledge(fn, 'AwsSolutions-L1', runtime);
  acknowledge(fn, 'Serverless-LambdaLatestVersion', runtime);
  acknowledge(fn, 'Serverless-LambdaTracing', props.noTracingBecause);
  return fn;
}
