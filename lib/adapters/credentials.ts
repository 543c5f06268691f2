/**
 * AWS credentials for the lean SQS client (`sqs-http.ts`), found in the AWS SDK's order — but
 * only the provider that applies is loaded, each the SDK's own:
 *
 * 1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`) in the environment;
 * 2. a profile (`AWS_PROFILE`, or `default` when a shared config or credentials file exists): its
 *    `credential_process` (IAM Roles Anywhere's `aws_signing_helper`) or its keys. Profiles that
 *    assume a role or use SSO are refused with a message saying how to wrap them in a
 *    `credential_process`: the SDK's resolver for those brings an STS and an SSO client, which
 *    would cost every agent megabytes of memory for a setup nodes rarely use;
 * 3. a container's (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`: ECS, EKS Pod Identity);
 * 4. the EC2 instance role, from the instance metadata service (IMDSv2).
 *
 * Temporary credentials are cached and fetched again five minutes before they expire.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

export type CredentialSource = () => Promise<AwsCredentials>;

const REFRESH_BEFORE_MS = 5 * 60_000;

export function staticCredentials(c: AwsCredentials): CredentialSource {
  return async () => c;
}

/** Where credentials come from under `env`, without loading anything (for logs). */
export function credentialOrigin(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return 'environment';
  const profile = profileName(env);
  if (profile) return `profile ${profile}`;
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI)
    return 'container';
  return 'instance metadata';
}

function profileName(env: NodeJS.ProcessEnv): string | undefined {
  if (env.AWS_PROFILE) return env.AWS_PROFILE;
  const files = [
    env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials'),
    env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config'),
  ];
  return files.some((f) => existsSync(f)) ? 'default' : undefined;
}

async function resolve(env: NodeJS.ProcessEnv): Promise<AwsCredentials> {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  const profile = profileName(env);
  if (profile) return fromProfile(profile, env);
  const imds = await import('@smithy/credential-provider-imds');
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI) {
    return imds.fromContainerMetadata({ timeout: 2000, maxRetries: 3 })();
  }
  return imds.fromInstanceMetadata({ timeout: 2000, maxRetries: 3 })();
}

async function fromProfile(profile: string, env: NodeJS.ProcessEnv): Promise<AwsCredentials> {
  const files = {
    ...(env.AWS_SHARED_CREDENTIALS_FILE ? { filepath: env.AWS_SHARED_CREDENTIALS_FILE } : {}),
    ...(env.AWS_CONFIG_FILE ? { configFilepath: env.AWS_CONFIG_FILE } : {}),
  };
  const { parseKnownFiles } = await import('@smithy/core/config');
  const p = (await parseKnownFiles({ profile, ...files }))[profile];
  if (!p) throw new Error(`AWS profile ${profile} is not in the shared config or credentials file`);
  if (p.credential_process) {
    const { fromProcess } = await import('@aws-sdk/credential-provider-process');
    return fromProcess({ profile, ...files })();
  }
  if (p.aws_access_key_id && p.aws_secret_access_key) {
    return {
      accessKeyId: p.aws_access_key_id,
      secretAccessKey: p.aws_secret_access_key,
      ...(p.aws_session_token ? { sessionToken: p.aws_session_token } : {}),
    };
  }
  throw new Error(
    `AWS profile ${profile} has neither credential_process nor keys, which is all the agent reads; ` +
      `for a role or SSO profile, make one that wraps it: credential_process = aws configure ` +
      `export-credentials --profile ${profile} --format process`,
  );
}

/** The chain above, cached; `now` is injectable for tests. */
export function credentialChain(
  env: NodeJS.ProcessEnv = process.env,
  now: () => number = Date.now,
  source: (env: NodeJS.ProcessEnv) => Promise<AwsCredentials> = resolve,
): CredentialSource {
  let current: AwsCredentials | undefined;
  let pending: Promise<AwsCredentials> | undefined;
  return async () => {
    const fresh =
      current && (!current.expiration || current.expiration.getTime() - now() > REFRESH_BEFORE_MS);
    if (fresh) return current!;
    pending ??= source(env)
      .then((c) => {
        current = c;
        return c;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}
