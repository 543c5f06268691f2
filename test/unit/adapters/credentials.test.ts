/** Where the agent's credentials come from, and how long they are kept. */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AwsCredentials, credentialChain, credentialOrigin } from '../../../lib/adapters/credentials.ts';
import { tempDir } from '../../agent/helpers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir('meso-creds-');
});
afterEach(async () => {
  await dir.remove();
});

/** An environment that sees only the files given (no ~/.aws of the machine running the tests). */
function envWith(
  files: { config?: string; credentials?: string },
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return {
    AWS_CONFIG_FILE: files.config ?? join(dir.path, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: files.credentials ?? join(dir.path, 'no-credentials'),
    ...extra,
  };
}

describe('credentialChain', () => {
  it('takes keys from the environment first', async () => {
    const env = envWith(
      {},
      { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_SESSION_TOKEN: 'T', AWS_PROFILE: 'p' },
    );
    expect(await credentialChain(env)()).toEqual({
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      sessionToken: 'T',
    });
    expect(credentialOrigin(env)).toBe('environment');
  });

  it("reads a profile's keys", async () => {
    const credentials = join(dir.path, 'credentials');
    await writeFile(credentials, '[node]\naws_access_key_id = AKP\naws_secret_access_key = SKP\n');
    const env = envWith({ credentials }, { AWS_PROFILE: 'node' });
    expect(await credentialChain(env)()).toEqual({ accessKeyId: 'AKP', secretAccessKey: 'SKP' });
    expect(credentialOrigin(env)).toBe('profile node');
    // With no AWS_PROFILE, the files' default profile.
    const other = join(dir.path, 'credentials-default');
    await writeFile(other, '[default]\naws_access_key_id = AKD\naws_secret_access_key = SKD\n');
    expect(await credentialChain(envWith({ credentials: other }))()).toMatchObject({ accessKeyId: 'AKD' });
  });

  it("runs a profile's credential_process (as IAM Roles Anywhere's signing helper is run)", async () => {
    const helper = join(dir.path, 'helper.sh');
    const expiration = new Date(Date.now() + 3_600_000).toISOString();
    await writeFile(
      helper,
      `#!/bin/sh\necho '{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"S1","SessionToken":"T1","Expiration":"${expiration}"}'\n`,
    );
    await chmod(helper, 0o755);
    const config = join(dir.path, 'config');
    await writeFile(config, `[profile ra]\ncredential_process = ${helper}\n`);
    const c = await credentialChain(envWith({ config }, { AWS_PROFILE: 'ra' }))();
    expect(c).toMatchObject({ accessKeyId: 'ASIA1', secretAccessKey: 'S1', sessionToken: 'T1' });
    expect(c.expiration?.toISOString()).toBe(expiration);
  });

  it('refuses a role or SSO profile with a way to make it work', async () => {
    const config = join(dir.path, 'config');
    await writeFile(
      config,
      '[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = default\n',
    );
    await expect(credentialChain(envWith({ config }, { AWS_PROFILE: 'admin' }))()).rejects.toThrow(
      /credential_process = aws configure export-credentials --profile admin --format process/,
    );
    await expect(credentialChain(envWith({ config }, { AWS_PROFILE: 'missing' }))()).rejects.toThrow(
      /AWS profile missing is not in the shared config/,
    );
  });

  it('names the container and the instance as the origins without a profile', () => {
    expect(credentialOrigin(envWith({}, { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/creds' }))).toBe(
      'container',
    );
    expect(credentialOrigin(envWith({}))).toBe('instance metadata');
  });

  it('keeps temporary credentials until five minutes before they expire, fetching once at a time', async () => {
    let t = 0;
    let fetches = 0;
    const source = async (): Promise<AwsCredentials> => {
      fetches++;
      return { accessKeyId: `K${fetches}`, secretAccessKey: 'S', expiration: new Date(t + 60 * 60_000) };
    };
    const get = credentialChain({}, () => t, source);
    const [a, b] = await Promise.all([get(), get()]);
    expect(a.accessKeyId).toBe('K1');
    expect(b.accessKeyId).toBe('K1');
    t += 54 * 60_000;
    expect((await get()).accessKeyId).toBe('K1');
    t += 2 * 60_000; // 4 minutes left
    expect((await get()).accessKeyId).toBe('K2');
    expect(fetches).toBe(2);
  });
});
