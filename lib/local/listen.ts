/**
 * Listening on loopback at a port asked for again (a `--persist` stack coming back where it was),
 * or at any free port when that one is taken.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Binds `server` to 127.0.0.1:`port` (any free port when 0 or absent); returns the port. A taken
 * `port` means any free port with `fallback`, and the bind's error without it (a port the user
 * named must not move silently).
 */
export async function listenOnLoopback(server: Server, port?: number, fallback = true): Promise<number> {
  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => reject(e);
      server.once('error', failed);
      server.listen(p, '127.0.0.1', () => {
        server.off('error', failed);
        resolve();
      });
    });
  try {
    await listen(port ?? 0);
  } catch (e) {
    if (!port || !fallback || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    await listen(0);
  }
  return (server.address() as AddressInfo).port;
}
