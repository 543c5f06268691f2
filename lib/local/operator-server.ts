/**
 * The operator HTTP API (lib/control/operator-api.ts) on this machine: node:http on 127.0.0.1
 * only, for `npm start` and the tests. Also the shell of `meso ui`'s proxy, which hands each
 * request to a function of its own (it signs and forwards to the deployed API).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ApiRequest, ApiResponse } from '../control/operator-api.ts';
import { listenOnLoopback } from './listen.ts';

export interface LocalHttpServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Bodies are not read: every route takes its input from the path and query. */
function requestOf(req: IncomingMessage, principal: string): ApiRequest {
  const u = new URL(req.url ?? '/', 'http://127.0.0.1');
  const query: Record<string, string> = {};
  for (const [k, v] of u.searchParams) query[k] = v;
  return { method: req.method ?? 'GET', path: u.pathname, query, principal };
}

const refusal = (status: number, error: string): ApiResponse => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: `${JSON.stringify({ error })}\n`,
});

/**
 * Serves `handle` on 127.0.0.1 (`port` 0: any free port). Requests whose Host is not the
 * loopback address are refused (DNS rebinding), as are cross-site POSTs.
 */
export async function serveLocally(
  handle: (req: ApiRequest) => Promise<ApiResponse>,
  opts: {
    port?: number;
    principal: string;
    /** `port` is only a wish (a `--persist` stack's last port): any free port when it is taken. */
    portMayMove?: boolean;
  },
): Promise<LocalHttpServer> {
  let origin = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (r: ApiResponse) => {
      res.writeHead(r.status, r.headers);
      res.end(r.body);
    };
    const host = req.headers.host ?? '';
    if (!/^(127\.0\.0\.1|localhost)(:\d+)?$/.test(host)) {
      return send(refusal(421, 'wrong host: the API answers on 127.0.0.1 only'));
    }
    const from = req.headers.origin;
    if (
      req.method !== 'GET' &&
      from !== undefined &&
      from !== origin &&
      from !== origin.replace('127.0.0.1', 'localhost')
    ) {
      return send(refusal(403, 'cross-site request refused'));
    }
    req.resume();
    handle(requestOf(req, opts.principal)).then(send, (e: unknown) => send(refusal(500, String(e))));
  });
  const port = await listenOnLoopback(server, opts.port, opts.portMayMove ?? false);
  origin = `http://127.0.0.1:${port}`;
  return {
    url: origin,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
