/**
 * A loopback gateway in front of the SQS emulator that gives each access key its own identity,
 * as SQS does. The emulator reports SenderId `000000000000` for every message, so on the local
 * stack any client could pass for any other and no identity check could be tried for real.
 *
 * The gateway checks each request's SigV4 signature (an unknown key or a bad signature is
 * refused, as SQS refuses it), forwards it to the emulator unchanged, and remembers who sent each
 * message: the MessageId of every SendMessage / SendMessageBatch answer, with the access key id
 * that signed the request. In every ReceiveMessage answer that passes through it, it sets
 * `Attributes.SenderId` of the messages it knows to that access key id, and to `""` (no one) for
 * messages it did not see sent (sent around it, or before it started). A sender controls nothing
 * of this: SenderId is not an attribute a send can set, and the gateway takes it from the
 * verified signature, not from the request. So every consumer — the local event-source runner
 * (lib/local/esm-runner.ts) and with it the control plane's handlers, as well as any other client
 * — sees SenderId exactly as SQS would report it for an IAM user: the caller's identity.
 *
 * Only the JSON protocol (`X-Amz-Target: AmazonSQS.*`, what the AWS SDK v3 and Meso's own HTTP
 * client speak) passes; the gateway is for the local stack and tests, never for AWS.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { LOCAL_CREDENTIALS } from '../adapters/aws-config.ts';
import { listenOnLoopback } from './listen.ts';

export interface SqsGatewayOptions {
  /** The emulator's endpoint, e.g. `http://127.0.0.1:41234`. */
  readonly upstream: string;
  /**
   * The secret of an access key id, or undefined for a key that does not exist. Default
   * ({@link localSecretFor}): the local stack's secret for every key id, so each client picks its
   * identity by its key id and still has to sign with the secret.
   */
  readonly secretFor?: (accessKeyId: string) => string | undefined;
  /** Senders remembered, oldest forgotten first. Default 200 000. */
  readonly remember?: number;
  /** Largest request body accepted. Default 2 MiB (SQS's limit is 1 MiB of message). */
  readonly maxBodyBytes?: number;
  /** The port to listen on, when free (a `--persist` stack coming back where it was). Default: any. */
  readonly port?: number;
}

export interface SqsGateway {
  /** e.g. `http://127.0.0.1:41235`: give this to clients instead of the emulator's. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

export type SigV4Check =
  | { readonly ok: true; readonly accessKeyId: string }
  | {
      readonly ok: false;
      readonly code:
        | 'MissingAuthenticationToken'
        | 'InvalidClientTokenId'
        | 'SignatureDoesNotMatch'
        | 'IncompleteSignature';
      readonly message: string;
    };

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** RFC 3986 encoding, as SigV4 wants it. */
const encode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(search: string): string {
  if (!search) return '';
  return [...new URLSearchParams(search)]
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/**
 * Checks a request's SigV4 `Authorization` header against the secret of the key it names. The
 * pure part of the gateway: no I/O.
 */
export function checkSigV4(
  req: {
    readonly method: string;
    readonly url: string;
    readonly headers: IncomingHttpHeaders;
    readonly body: Buffer;
  },
  secretFor: (accessKeyId: string) => string | undefined,
): SigV4Check {
  const auth = req.headers.authorization;
  if (!auth) return { ok: false, code: 'MissingAuthenticationToken', message: 'the request is not signed' };
  const m = AUTH.exec(auth);
  if (!m)
    return {
      ok: false,
      code: 'IncompleteSignature',
      message: 'the Authorization header is not AWS4-HMAC-SHA256',
    };
  const [, keyId, date, region, service, signedList, signature] = m as unknown as string[];
  const secret = secretFor(keyId!);
  if (secret === undefined)
    return { ok: false, code: 'InvalidClientTokenId', message: `the access key id ${keyId} does not exist` };
  const amzDate = req.headers['x-amz-date'];
  const signed = signedList!.split(';');
  if (
    typeof amzDate !== 'string' ||
    !amzDate.startsWith(date!) ||
    !signed.includes('host') ||
    !signed.includes('x-amz-date')
  )
    return {
      ok: false,
      code: 'IncompleteSignature',
      message: 'host and x-amz-date must be signed, and agree with the scope',
    };
  const url = new URL(req.url, 'http://gateway');
  const path =
    url.pathname
      .split('/')
      .map((seg) => encode(decodeURIComponent(seg)))
      .join('/') || '/';
  const headers = signed.map((h) => {
    const v = req.headers[h];
    const value = Array.isArray(v) ? v.join(',') : (v ?? '');
    return `${h}:${value.trim().replace(/\s+/g, ' ')}\n`;
  });
  const canonical = [
    req.method,
    path,
    canonicalQuery(url.search),
    headers.join(''),
    signedList,
    sha256(req.body),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), 'aws4_request');
  const want = hmac(key, toSign);
  const got = Buffer.from(signature!, 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want))
    return { ok: false, code: 'SignatureDoesNotMatch', message: 'the request signature does not match' };
  return { ok: true, accessKeyId: keyId! };
}

/** Who sent which message, forgetting the oldest first. */
class Senders {
  private readonly byId = new Map<string, string>();
  constructor(private readonly max: number) {}
  set(messageId: string, sender: string): void {
    this.byId.set(messageId, sender);
    if (this.byId.size > this.max) this.byId.delete(this.byId.keys().next().value!);
  }
  get(messageId: string): string {
    return this.byId.get(messageId) ?? '';
  }
}

type Json = Record<string, unknown>;

/**
 * The local stack's keys: any key id signed with the local secret (each key id its own
 * identity), and the key pair in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` if set (what local
 * clients sign with then, see `localCredentials` in lib/adapters/aws-config.ts).
 */
export function localSecretFor(
  env: Readonly<Record<string, string | undefined>>,
): (accessKeyId: string) => string {
  return (accessKeyId) =>
    accessKeyId === env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY !== undefined
      ? env.AWS_SECRET_ACCESS_KEY
      : LOCAL_CREDENTIALS.secretAccessKey;
}

export async function startSqsGateway(opts: SqsGatewayOptions): Promise<SqsGateway> {
  const upstream = new URL(opts.upstream);
  const secretFor = opts.secretFor ?? localSecretFor(process.env);
  const maxBody = opts.maxBodyBytes ?? 2 * 1024 * 1024;
  const senders = new Senders(opts.remember ?? 200_000);

  const refuse = (res: import('node:http').ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-query-error': `${code};Sender`,
    });
    res.end(JSON.stringify({ __type: `com.amazonaws.sqs#${code}`, message }));
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) {
        refuse(res, 413, 'RequestEntityTooLarge', `a request body is at most ${maxBody} bytes`);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const body = Buffer.concat(chunks);
      const target = req.headers['x-amz-target'];
      if (typeof target !== 'string' || !target.startsWith('AmazonSQS.'))
        return refuse(res, 400, 'InvalidAction', 'the local gateway speaks the SQS JSON protocol only');
      const check = checkSigV4(
        { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body },
        secretFor,
      );
      if (!check.ok) return refuse(res, 403, check.code, check.message);
      const action = target.slice('AmazonSQS.'.length);
      const headers = { ...req.headers };
      delete headers['accept-encoding'];
      const up = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (upRes) => {
          const out: Buffer[] = [];
          upRes.on('data', (c: Buffer) => out.push(c));
          upRes.on('end', () => {
            let text: Buffer = Buffer.concat(out);
            if (upRes.statusCode === 200) text = rewrite(action, text, check.accessKeyId);
            // The client may be gone (it gave up on a slow send): the sender is recorded anyway.
            if (res.destroyed) return;
            const h = { ...upRes.headers, 'content-length': String(text.length) };
            delete h['transfer-encoding'];
            res.writeHead(upRes.statusCode ?? 502, h);
            res.end(text);
          });
          upRes.on('error', () => res.destroy());
        },
      );
      up.on('error', (e) => {
        if (!res.headersSent)
          refuse(res, 502, 'ServiceUnavailable', `the emulator did not answer: ${e.message}`);
      });
      // A client that gives up on a receive (an aborted long poll) ends the upstream request too.
      // A send is never cut short: once forwarded it may be in the queue, and its sender must be
      // known when it is received, even if the client timed out waiting (and retries it).
      if (action === 'ReceiveMessage') res.on('close', () => up.destroy());
      up.end(body);
    });
  });

  /** Records the sender of what was sent; sets SenderId on what is received. */
  function rewrite(action: string, text: Buffer, sender: string): Buffer {
    if (action !== 'SendMessage' && action !== 'SendMessageBatch' && action !== 'ReceiveMessage') return text;
    let json: Json;
    try {
      json = JSON.parse(text.toString('utf8')) as Json;
    } catch {
      return text;
    }
    if (action === 'SendMessage' && typeof json.MessageId === 'string') senders.set(json.MessageId, sender);
    if (action === 'SendMessageBatch')
      for (const s of (json.Successful as Json[] | undefined) ?? [])
        if (typeof s.MessageId === 'string') senders.set(s.MessageId, sender);
    if (action === 'ReceiveMessage') {
      for (const m of (json.Messages as Json[] | undefined) ?? []) {
        const attributes = m.Attributes as Record<string, string> | undefined;
        if (attributes && 'SenderId' in attributes) attributes.SenderId = senders.get(String(m.MessageId));
      }
      return Buffer.from(JSON.stringify(json));
    }
    return text;
  }

  const port = await listenOnLoopback(server, opts.port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
