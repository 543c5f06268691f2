/**
 * `meso ui` against a deployed stack: a proxy on 127.0.0.1 that signs every request for the
 * function URL (SigV4, service lambda) with the operator's credentials. A stand-in for the
 * function URL checks the signature by computing it again; without a cluster API the command
 * says how to get one.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import aws4 from 'aws4';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../../lib/cli/io.ts';
import { regionOfFunctionUrl, uiCommand } from '../../../lib/cli/ui.ts';

const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret', sessionToken: 'token' };

function io() {
  let out = '';
  let err = '';
  const cli: CliIo = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    onInterrupt: () => () => {},
    exit: (c) => {
      throw new Error(`exit ${c}`);
    },
  };
  return { cli, out: () => out, err: () => err };
}

describe('meso ui', () => {
  it('reads the region from a function URL', () => {
    expect(regionOfFunctionUrl('abcdef.lambda-url.eu-west-1.on.aws')).toBe('eu-west-1');
    expect(regionOfFunctionUrl('example.com')).toBeUndefined();
  });

  it('proxies with a SigV4 signature the function URL can verify', async () => {
    const seen: IncomingMessage[] = [];
    const upstream = createServer((req, res) => {
      seen.push(req);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as AddressInfo).port;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const o = io();
    let proxyUrl = '';
    const listening = new Promise<void>((r) => {
      void uiCommand(
        { url: `http://127.0.0.1:${port}/`, region: 'us-east-1' },
        {
          io: o.cli,
          credentials: () => async () => creds,
          devFile: () => undefined,
          untilStopped: () => stopped,
          onListening: (u) => {
            proxyUrl = u;
            r();
          },
        },
      );
    });
    await listening;
    try {
      const res = await fetch(`${proxyUrl}/api/tasks?state=RUNNING&role=eng`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
      const req = seen[0]!;
      expect(req.url).toBe('/api/tasks?state=RUNNING&role=eng');
      const auth = String(req.headers.authorization);
      expect(auth).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/lambda\/aws4_request/);
      expect(req.headers['x-amz-security-token']).toBe('token');
      // The same request signed again at the same time gives the same signature.
      const again = aws4.sign(
        {
          host: `127.0.0.1:${port}`,
          path: req.url,
          method: 'GET',
          service: 'lambda',
          region: 'us-east-1',
          headers: { 'X-Amz-Date': String(req.headers['x-amz-date']) },
        },
        creds,
      );
      expect(auth).toBe((again.headers as Record<string, string>).Authorization);
      expect(o.out()).toContain(proxyUrl);
    } finally {
      stop();
      upstream.close();
    }
  });

  it('without a cluster API, says how to get one (exit status 2)', async () => {
    const o = io();
    const saved = process.env.MESO_API_URL;
    delete process.env.MESO_API_URL;
    try {
      const code = await uiCommand(
        {},
        {
          io: o.cli,
          credentials: () => async () => creds,
          devFile: () => undefined,
          untilStopped: async () => {},
        },
      );
      expect(code).toBe(2);
      expect(o.err()).toMatch(/npm start/);
    } finally {
      if (saved !== undefined) process.env.MESO_API_URL = saved;
    }
  });
});
