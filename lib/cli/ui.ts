/**
 * `meso ui`: the dashboard and operator API in the browser. Against `meso dev` it prints the
 * local URL. Against a deployed stack (`--url`, the stack's `OperatorApiUrl` output, or
 * `MESO_API_URL`) it serves a proxy on 127.0.0.1 that signs every request with the operator's
 * AWS credentials (SigV4, service `lambda`), since the function URL takes IAM auth only.
 */
import { readFileSync } from 'node:fs';
import aws4 from 'aws4';
import type { Command } from 'commander';
import { type CredentialSource, credentialChain } from '../adapters/credentials.ts';
import { type DevFile, findDevFile } from '../config/cluster.ts';
import type { ApiRequest, ApiResponse } from '../control/operator-api.ts';
import { type LocalHttpServer, serveLocally } from '../local/operator-server.ts';
import { type CliIo, EXIT, line } from './io.ts';

export interface UiDeps {
  io: CliIo;
  credentials: () => CredentialSource;
  /** The running `meso dev`'s file, if any. */
  devFile: () => DevFile | undefined;
  /** Resolves when the proxy should stop (Ctrl-C). */
  untilStopped: () => Promise<void>;
  /** Told the proxy's URL once it listens (tests). */
  onListening?: (url: string) => void;
}

export interface UiOptions {
  url?: string;
  region?: string;
  port?: string;
}

/** `abc.lambda-url.eu-west-1.on.aws` → `eu-west-1`. */
export function regionOfFunctionUrl(host: string): string | undefined {
  return /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(host)?.[1];
}

/** A handler that forwards each request to `target`, signed with `credentials`. */
export function signingProxy(
  target: URL,
  region: string,
  credentials: CredentialSource,
): (req: ApiRequest) => Promise<ApiResponse> {
  return async (req) => {
    const qs = new URLSearchParams(
      Object.entries(req.query).filter((e): e is [string, string] => e[1] !== undefined),
    ).toString();
    const path = `${target.pathname.replace(/\/$/, '')}${req.path}${qs ? `?${qs}` : ''}`;
    const c = await credentials();
    const signed = aws4.sign(
      { host: target.host, path, method: req.method, service: 'lambda', region, headers: {} },
      { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken },
    );
    const r = await fetch(`${target.protocol}//${target.host}${path}`, {
      method: req.method,
      headers: signed.headers as Record<string, string>,
    });
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'cache-control', 'content-security-policy', 'x-content-type-options']) {
      const v = r.headers.get(h);
      if (v) headers[h] = v;
    }
    return { status: r.status, headers, body: await r.text() };
  };
}

export async function uiCommand(opts: UiOptions, deps: UiDeps): Promise<number> {
  const url = opts.url ?? process.env.MESO_API_URL;
  if (!url) {
    const dev = deps.devFile();
    if (dev?.apiUrl) {
      deps.io.stdout.write(line(`${dev.apiUrl}/   (the dashboard of meso dev)`));
      return EXIT.OK;
    }
    deps.io.stderr.write(
      line(
        'meso ui: no cluster API: start one with `npm start`, or give --url <OperatorApiUrl output of the stack> (or MESO_API_URL)',
      ),
    );
    return EXIT.USAGE;
  }
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    deps.io.stderr.write(line(`meso ui: not a URL: ${url}`));
    return EXIT.USAGE;
  }
  const region = opts.region ?? regionOfFunctionUrl(target.hostname) ?? process.env.AWS_REGION;
  if (!region) {
    deps.io.stderr.write(line('meso ui: cannot tell the region from the URL: give --region'));
    return EXIT.USAGE;
  }
  const port = opts.port !== undefined ? Number(opts.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
    deps.io.stderr.write(line(`meso ui: --port wants a port number, got ${opts.port}`));
    return EXIT.USAGE;
  }
  let server: LocalHttpServer;
  try {
    server = await serveLocally(signingProxy(target, region, deps.credentials()), {
      principal: 'proxy',
      ...(port !== undefined ? { port } : {}),
    });
  } catch (e) {
    deps.io.stderr.write(line(`meso ui: ${(e as Error).message}`));
    return EXIT.FAILED;
  }
  deps.io.stdout.write(line(`${server.url}/   (signed proxy to ${target.origin}; Ctrl-C stops it)`));
  deps.onListening?.(server.url);
  await deps.untilStopped();
  await server.close();
  return EXIT.OK;
}

export function defaultUiDeps(io: CliIo): UiDeps {
  return {
    io,
    credentials: () => credentialChain(),
    devFile: () => {
      const f = findDevFile();
      if (!f) return undefined;
      try {
        return JSON.parse(readFileSync(f, 'utf8')) as DevFile;
      } catch {
        return undefined;
      }
    },
    untilStopped: () =>
      new Promise<void>((done) => {
        const off = io.onInterrupt(() => {
          off();
          done();
        });
      }),
  };
}

/** Adds `meso ui` to the program. */
export function registerUiCommand(
  program: Command,
  deps: () => UiDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('ui')
    .description(
      "Open the dashboard: the local stack's URL, or a signed proxy on 127.0.0.1 to a deployed stack's operator API.",
    )
    .option('--url <url>', "the stack's OperatorApiUrl output (default MESO_API_URL)")
    .option('--region <region>', 'the region to sign for (default: from the URL)')
    .option('--port <port>', 'the local port (default: any free one)')
    .action(async (opts: UiOptions) => done(await uiCommand(opts, deps())));
}
