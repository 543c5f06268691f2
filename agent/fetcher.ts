/**
 * The fetcher: puts a task's URIs into its sandbox before the command starts, as Mesos's fetcher.
 *
 * - `http://` and `https://` are downloaded (redirects followed; a status other than 2xx is a
 *   failure), `file://` URLs and absolute paths are copied.
 * - Archives are extracted into the sandbox unless `extract: false`: `.tar`, `.tar.gz`/`.tgz`,
 *   `.tar.bz2`/`.tbz2`, `.tar.xz`/`.txz` (with `tar`), `.zip` (with `unzip`), and a lone `.gz`
 *   (with `gzip -d`); the archive itself stays.
 * - `executable: true` marks the file executable (0755).
 * - `cache: true` keeps the download in `<workDir>/cache`, keyed by the URI, and later tasks get a
 *   copy of it instead of a download; the cache is trimmed to `maxCacheBytes`, oldest first.
 * - Any failure throws a FetchError whose message names the URI and the cause; the task then
 *   ends TASK_FAILED with REASON_FETCHER_FAILED.
 * - When tasks run as another user, a local file is copied only if that user could read it
 *   (the agent itself runs as root and must not become a way around file permissions).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Uri } from '../lib/protocol/common.ts';

export class FetchError extends Error {
  override name = 'FetchError';
}

export interface FetcherOptions {
  /** Where cached downloads live. */
  readonly cacheDir: string;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Per URI, for the download (and for an extraction). Default 300 000. */
  readonly timeoutMs?: number;
  /** The cache is trimmed to this. Default 2 GiB. */
  readonly maxCacheBytes?: number;
}

/** Who the files are for: local files are copied only if this user could read them. */
export interface FetchUser {
  readonly uid: number;
  readonly gid: number;
}

const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz|zip|gz)$/i;

/** The file name a URI gets in the sandbox. */
export function outputName(uri: Uri): string {
  if (uri.outputFile) return uri.outputFile;
  let path = uri.value;
  try {
    path = new URL(uri.value).pathname;
  } catch {
    // A plain path.
  }
  let name = basename(path);
  try {
    name = decodeURIComponent(name);
  } catch {
    // Keep it as it is.
  }
  return name === '' || name === '.' || name === '..' || name.includes('/') ? 'download' : name;
}

function sh(file: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((done, fail) => {
    execFile(file, args, { cwd, timeout: timeoutMs, encoding: 'utf8' }, (e, _out, err) => {
      if (!e) return done();
      const why = String(err).trim().split('\n').slice(-3).join('; ') || e.message;
      fail(new Error(`${file} ${args[0]} failed: ${why}`));
    });
  });
}

function readableBy(s: Stats, user: FetchUser): boolean {
  if (user.uid === 0) return true;
  if (s.uid === user.uid) return (s.mode & 0o400) !== 0;
  if (s.gid === user.gid) return (s.mode & 0o040) !== 0;
  return (s.mode & 0o004) !== 0;
}

/**
 * @example
 * const fetcher = new Fetcher({ cacheDir: join(workDir, 'cache') });
 * await fetcher.fetchAll(task.uris ?? [], sandbox); // throws FetchError
 */
export class Fetcher {
  readonly #opts: FetcherOptions;
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(opts: FetcherOptions) {
    this.#opts = opts;
  }

  /** Fetches every URI into `sandbox`, in order. */
  async fetchAll(uris: readonly Uri[], sandbox: string, user?: FetchUser): Promise<void> {
    for (const uri of uris) {
      try {
        await this.fetchOne(uri, sandbox, user);
      } catch (e) {
        const cause = e instanceof Error ? e.message : String(e);
        throw new FetchError(`failed to fetch ${uri.value}: ${cause}`);
      }
    }
  }

  async fetchOne(uri: Uri, sandbox: string, user?: FetchUser): Promise<void> {
    const name = outputName(uri);
    const dest = join(sandbox, name);
    if (uri.cache) {
      const cached = await this.#cached(uri, user);
      await copyFile(cached, dest);
    } else {
      await this.#download(uri, dest, user);
    }
    if (uri.executable) await chmod(dest, 0o755);
    if (uri.extract !== false && ARCHIVE.test(name)) await this.#extract(dest, sandbox);
  }

  async #cached(uri: Uri, user?: FetchUser): Promise<string> {
    const key = createHash('sha256').update(uri.value).digest('hex');
    const file = join(this.#opts.cacheDir, key);
    const existing = await stat(file).catch(() => undefined);
    if (existing) {
      if (!isRemote(uri.value) && user && !readableBy(await stat(localPath(uri.value)), user)) {
        throw new Error(`permission denied: the task's user cannot read ${localPath(uri.value)}`);
      }
      const now = new Date();
      await utimes(file, now, now).catch(() => {});
      return file;
    }
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = (async () => {
        await mkdir(this.#opts.cacheDir, { recursive: true });
        const tmp = `${file}.${process.pid}.${Date.now()}.part`;
        try {
          await this.#download(uri, tmp, user);
          await rename(tmp, file);
        } finally {
          await rm(tmp, { force: true });
        }
        await this.#trimCache(file);
        return file;
      })();
      this.#inFlight.set(key, pending);
      void pending.finally(() => this.#inFlight.delete(key)).catch(() => {});
    }
    return pending;
  }

  async #download(uri: Uri, dest: string, user?: FetchUser): Promise<void> {
    const timeoutMs = this.#opts.timeoutMs ?? 300_000;
    if (!isRemote(uri.value)) {
      const path = localPath(uri.value);
      const s = await stat(path);
      if (!s.isFile()) throw new Error(`${path} is not a regular file`);
      if (user && !readableBy(s, user))
        throw new Error(`permission denied: the task's user cannot read ${path}`);
      await copyFile(path, dest);
      return;
    }
    const doFetch = this.#opts.fetch ?? fetch;
    const signal = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await doFetch(uri.value, { redirect: 'follow', signal });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if ((e as Error).name === 'TimeoutError') throw new Error(`no answer within ${timeoutMs / 1000} s`);
      throw new Error(cause?.code ?? cause?.message ?? (e as Error).message);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    }
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      createWriteStream(dest),
      {
        signal,
      },
    );
  }

  async #extract(file: string, sandbox: string): Promise<void> {
    const timeoutMs = this.#opts.timeoutMs ?? 300_000;
    const lower = file.toLowerCase();
    if (lower.endsWith('.zip')) {
      await sh('unzip', ['-o', '-q', file, '-d', sandbox], sandbox, timeoutMs);
    } else if (/\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz)$/.test(lower)) {
      // --no-same-owner: files belong to whoever extracts them, never to ids in the archive.
      await sh('tar', ['-xf', file, '-C', sandbox, '--no-same-owner'], sandbox, timeoutMs);
    } else if (lower.endsWith('.gz')) {
      await sh('gzip', ['-d', '-k', '-f', file], sandbox, timeoutMs);
    }
  }

  async #trimCache(keep: string): Promise<void> {
    const max = this.#opts.maxCacheBytes ?? 2 * 1024 ** 3;
    const entries = await readdir(this.#opts.cacheDir).catch(() => [] as string[]);
    const files: { path: string; size: number; mtime: number }[] = [];
    for (const name of entries) {
      if (name.endsWith('.part')) continue;
      const path = join(this.#opts.cacheDir, name);
      const s = await stat(path).catch(() => undefined);
      if (s?.isFile()) files.push({ path, size: s.size, mtime: s.mtimeMs });
    }
    let total = files.reduce((n, f) => n + f.size, 0);
    for (const f of files.sort((a, b) => a.mtime - b.mtime)) {
      if (total <= max) break;
      if (f.path === keep) continue;
      await rm(f.path, { force: true });
      total -= f.size;
    }
  }
}

function isRemote(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

function localPath(value: string): string {
  if (/^file:/i.test(value)) return fileURLToPath(value);
  if (value.startsWith('/')) return value;
  throw new Error('unsupported URI: use http://, https://, file:// or an absolute path');
}
