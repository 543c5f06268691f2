/**
 * Who the caller is, as SQS would name them in `SenderId`: the principal the control plane's ACLs
 * (lib/core/acl.ts) know. In AWS, STS GetCallerIdentity's `UserId` (an IAM user's unique id, or
 * `<role id>:<session>`); on the emulators, the access key id (what the local SQS gateway reports).
 */
import aws4 from 'aws4';
import { type AwsConfig, localCredentials } from './aws-config.ts';
import { type CredentialSource, credentialChain } from './credentials.ts';

export async function callerPrincipal(
  config: AwsConfig,
  opts: { readonly credentials?: CredentialSource; readonly fetch?: typeof fetch } = {},
): Promise<string> {
  const local = localCredentials(config.sqsEndpoint);
  if (local) return local.accessKeyId;
  const creds = await (opts.credentials ?? credentialChain())();
  if (config.sqsEndpoint && /^https?:\/\/(127\.|localhost|\[::1\])/.test(config.sqsEndpoint))
    return creds.accessKeyId;
  const host = `sts.${config.region}.amazonaws.com${config.region.startsWith('cn-') ? '.cn' : ''}`;
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const signed = aws4.sign(
    {
      host,
      path: '/',
      method: 'POST',
      service: 'sts',
      region: config.region,
      body,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    },
    {
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
    },
  );
  const res = await (opts.fetch ?? fetch)(`https://${host}/`, {
    method: 'POST',
    headers: signed.headers as Record<string, string>,
    body,
  });
  const text = await res.text();
  const id = /<UserId>([^<]+)<\/UserId>/.exec(text)?.[1];
  if (!res.ok || !id) throw new Error(`STS GetCallerIdentity failed (${res.status}): ${text.slice(0, 200)}`);
  return id;
}
