/**
 * A lean SQS client for the agent: SQS's JSON protocol over `node:http(s)` with keep-alive,
 * requests signed (SigV4) by `aws4`, credentials from `credentials.ts`. The AWS SDK's client
 * costs the agent about 12 MB of resident memory at idle (its middleware stack, endpoint rules
 * and credential chain); this does the six calls the agent makes (`sqs-api.ts`) for well under
 * one. What the SDK would do and the agent relies on is kept:
 *
 * - retries with capped, jittered exponential backoff on network errors, 5xx and throttling;
 * - clock-skew correction: a request the service refuses as too skewed is signed again with the
 *   offset the response's `Date` shows (on-premises clocks drift);
 * - the service's error names (`QueueDoesNotExist`, `QueueNameExists`, …) as `Error.name`;
 * - a socket timeout, so a half-open connection cannot stall a long poll forever;
 * - every call counted in the shared API-call tally (`api-calls.ts`).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import aws4 from 'aws4';
import { type CallTally, countCall, countSqsUnits } from './api-calls.ts';
import { type AwsConfig, awsConfigFromEnv, localCredentials } from './aws-config.ts';
import { type CredentialSource, credentialChain, staticCredentials } from './credentials.ts';
import type { SqsApi, SqsOp, SqsOps } from './sqs-api.ts';

export interface SqsHttpOptions {
  readonly region: string;
  /** Default: the region's public endpoint. */
  readonly endpoint?: string;
  readonly credentials: CredentialSource;
  /** Attempts per call, the first included. Default 5 (as the SDK's clients in Meso). */
  readonly maxAttempts?: number;
  /** Milliseconds without a byte before a request is abandoned, on top of a long poll's wait. Default 30 s. */
  readonly socketTimeoutMs?: number;
  readonly tally?: CallTally;
  /** Default: `Date.now`. */
  readonly now?: () => number;
}

/** An error the service returned (or the network gave). */
export class SqsHttpError extends Error {
  constructor(
    name: string,
    message: string,
    /** HTTP status; 0 for a network error. */
    readonly status: number,
    readonly retryable: boolean,
    /** The response's `Date`, for clock-skew correction. */
    readonly serverDate?: number,
  ) {
    super(message);
    this.name = name;
  }
}

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'KmsThrottled',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
]);
const SKEW = new Set([
  'RequestTimeTooSkewed',
  'RequestExpired',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
]);
const SKEW_TOLERANCE_MS = 4 * 60_000;

export function defaultSqsEndpoint(region: string): string {
  return `https://sqs.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

export class SqsHttpClient implements SqsApi {
  readonly #o: SqsHttpOptions;
  readonly #url: URL;
  readonly #agent: HttpAgent;
  readonly #now: () => number;
  /** Server time minus ours, learnt from a refused request. */
  #skewMs = 0;

  constructor(o: SqsHttpOptions) {
    this.#o = o;
    this.#url = new URL(o.endpoint ?? defaultSqsEndpoint(o.region));
    this.#agent =
      this.#url.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 16 })
        : new HttpAgent({ keepAlive: true, maxSockets: 16 });
    this.#now = o.now ?? Date.now;
  }

  async call<K extends SqsOp>(
    op: K,
    input: SqsOps[K]['input'],
    opts: { readonly signal?: AbortSignal } = {},
  ): Promise<SqsOps[K]['output']> {
    countCall(`SQS.${op}`, this.#o.tally);
    const body = JSON.stringify(input);
    const waitMs = 'WaitTimeSeconds' in input ? (input.WaitTimeSeconds ?? 0) * 1000 : 0;
    const max = this.#o.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        const output = (await this.#send(op, body, waitMs, opts.signal)) as SqsOps[K]['output'];
        countSqsUnits(`SQS.${op}`, input, output);
        return output;
      } catch (e) {
        const err = e as SqsHttpError;
        if (opts.signal?.aborted || attempt >= max) throw e;
        if (SKEW.has(err.name) && err.serverDate !== undefined) {
          const skew = err.serverDate - this.#now();
          if (Math.abs(skew - this.#skewMs) < SKEW_TOLERANCE_MS) throw e; // not the clock: a real refusal
          this.#skewMs = skew;
          continue;
        }
        if (!err.retryable) throw e;
        await delay(Math.random() * Math.min(20_000, 100 * 2 ** attempt), opts.signal);
      }
    }
  }

  /** Closes idle keep-alive connections (a stopping agent). */
  close(): void {
    this.#agent.destroy();
  }

  async #send(op: string, body: string, waitMs: number, signal?: AbortSignal): Promise<unknown> {
    const creds = await this.#o.credentials();
    const url = this.#url;
    const date = new Date(this.#now() + this.#skewMs).toISOString().replace(/[:-]|\.\d{3}/g, '');
    const signed = aws4.sign(
      {
        host: url.host,
        path: url.pathname || '/',
        method: 'POST',
        service: 'sqs',
        region: this.#o.region,
        body,
        headers: {
          'Content-Type': 'application/x-amz-json-1.0',
          'X-Amz-Target': `AmazonSQS.${op}`,
          'X-Amz-Date': date,
        },
      },
      {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
      },
    );
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port || undefined,
          path: signed.path,
          method: 'POST',
          headers: signed.headers as Record<string, string>,
          agent: this.#agent,
          timeout: waitMs + (this.#o.socketTimeoutMs ?? 30_000),
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(networkError(e)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              try {
                resolve(text.length > 0 ? JSON.parse(text) : {});
              } catch {
                reject(new SqsHttpError('InvalidResponse', `SQS ${op}: unparseable response`, status, true));
              }
              return;
            }
            reject(serviceError(op, status, text, res.headers));
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new SqsHttpError('TimeoutError', `SQS ${op}: no response`, 0, true)),
      );
      req.on('error', (e) => reject(e instanceof SqsHttpError || signal?.aborted ? e : networkError(e)));
      req.end(body);
    });
  }
}

function networkError(e: Error): SqsHttpError {
  return new SqsHttpError(
    'NetworkingError',
    `${(e as NodeJS.ErrnoException).code ?? e.name}: ${e.message}`,
    0,
    true,
  );
}

function serviceError(
  op: string,
  status: number,
  text: string,
  headers: Record<string, string | string[] | undefined>,
): SqsHttpError {
  let type = '';
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { __type?: string; message?: string; Message?: string };
    type = (parsed.__type ?? '').split('#').pop() ?? '';
    message = parsed.message ?? parsed.Message ?? message;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  // The query-protocol code, for the names older callers match on (AWS.SimpleQueueService.NonExistentQueue).
  const queryCode = String(headers['x-amzn-query-error'] ?? '').split(';')[0];
  const name = type || `Http${status}`;
  const retryable = status >= 500 || status === 429 || THROTTLING.has(name);
  const serverDate = typeof headers.date === 'string' ? Date.parse(headers.date) : Number.NaN;
  return new SqsHttpError(
    name,
    `SQS ${op}: ${name}${queryCode ? ` (${queryCode})` : ''}: ${message}`,
    status,
    retryable,
    Number.isFinite(serverDate) ? serverDate : undefined,
  );
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** On the emulators without keys set, any credentials do. */
export const signsWithLocalCredentials = (config: AwsConfig): boolean =>
  localCredentials(config.sqsEndpoint) !== undefined;

/** The agent's client for a cluster: its endpoint, and the credential chain (or, on the emulators without keys, any). */
export function createSqsHttpClient(config: AwsConfig = awsConfigFromEnv()): SqsHttpClient {
  const local = localCredentials(config.sqsEndpoint);
  return new SqsHttpClient({
    region: config.region,
    ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint } : {}),
    credentials: local ? staticCredentials(local) : credentialChain(),
  });
}
