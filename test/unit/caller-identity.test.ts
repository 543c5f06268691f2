import { describe, expect, it } from 'vitest';
import { callerPrincipal } from '../../lib/adapters/caller-identity.ts';
import { staticCredentials } from '../../lib/adapters/credentials.ts';

describe('callerPrincipal', () => {
  it("asks STS who the caller is, signed, and returns its UserId (SQS's SenderId for it)", async () => {
    let seen: { url: string; init: RequestInit } | undefined;
    const fakeFetch = (async (url: string, init: RequestInit) => {
      seen = { url, init };
      return new Response(
        '<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::1:assumed-role/ops/alice</Arn><UserId>AROAEXAMPLE:alice</UserId><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>',
      );
    }) as unknown as typeof fetch;
    const principal = await callerPrincipal(
      { region: 'eu-west-1' },
      { credentials: staticCredentials({ accessKeyId: 'AKIA1', secretAccessKey: 's' }), fetch: fakeFetch },
    );
    expect(principal).toBe('AROAEXAMPLE:alice');
    expect(seen?.url).toBe('https://sts.eu-west-1.amazonaws.com/');
    expect((seen!.init.headers as Record<string, string>).Authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIA1\/\d{8}\/eu-west-1\/sts\/aws4_request/,
    );
  });

  it('fails loudly rather than guessing when STS refuses', async () => {
    const refusing = (async () =>
      new Response('<Error>denied</Error>', { status: 403 })) as unknown as typeof fetch;
    await expect(
      callerPrincipal(
        { region: 'us-east-1' },
        { credentials: staticCredentials({ accessKeyId: 'A', secretAccessKey: 's' }), fetch: refusing },
      ),
    ).rejects.toThrow(/STS GetCallerIdentity failed \(403\)/);
  });

  it('on the emulators: the access key id, which the local SQS gateway reports as SenderId', async () => {
    expect(
      await callerPrincipal(
        { region: 'us-east-1', sqsEndpoint: 'http://127.0.0.1:4566' },
        { credentials: staticCredentials({ accessKeyId: 'alice-key', secretAccessKey: 's' }) },
      ),
    ).toBe(process.env.AWS_ACCESS_KEY_ID ? 'alice-key' : 'mesolocal'); // without keys set, clients sign as mesolocal
  });
});
