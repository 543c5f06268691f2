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
 * - Everything that touches the sandbox runs as the task's user (a child process with its uid and
 *   gid, no supplementary groups): writing each file, `chmod`, extraction. The sandbox belongs to
 *   that user and the task may have planted symlinks in it (an earlier URI's archive can); as that
 *   user a symlink leads only where the task could write anyway. Local files (`file://`, absolute
 *   paths) are read by that same child, so the kernel decides whether the task's user may read
 *   them (parent directories included, no check-then-copy race), and they are never cached.
 *   Downloads are written as the agent to a private staging file first and handed over on stdin.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
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

/** Runs `file` as `user` (or as the agent), with `stdin` (a file descriptor) as its input. */
function runAs(
  user: FetchUser | undefined,
  file: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  stdin?: number,
): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, {
      cwd,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      stdio: [stdin ?? 'ignore', 'ignore', 'pipe'],
      timeout: timeoutMs,
      // libuv drops supplementary groups (setgroups(0)) when it sets the uid and gid.
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let err = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (err.length < 4096) err += d;
    });
    child.once('error', fail);
    child.once('close', (code, signal) => {
      if (code === 0) return done();
      const why =
        err.trim().split('\n').slice(-3).join('; ') ||
        (signal ? `killed by ${signal} (no end within ${timeoutMs / 1000} s?)` : `exit code ${code}`);
      fail(new Error(file === '/bin/sh' ? why : `${file} ${args[0] ?? ''} failed: ${why}`));
    });
  });
}

/** As the task's user: `src` (a path it must be able to read, or stdin) to `dest`. */
const COPY_SCRIPT = [
  'src=$1; dest=$2',
  'if [ "$src" = - ]; then cat > "$dest"; exit; fi',
  `[ -e "$src" ] || { echo "ENOENT: $src does not exist or the task's user cannot reach it" >&2; exit 1; }`,
  '[ -f "$src" ] || { echo "$src is not a regular file" >&2; exit 1; }',
  `[ -r "$src" ] || { echo "EACCES: permission denied: the task's user cannot read $src" >&2; exit 1; }`,
  'cat -- "$src" > "$dest"',
].join('\n');

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
    const timeoutMs = this.#opts.timeoutMs ?? 300_000;
    if (!isRemote(uri.value)) {
      // Read by the task's user itself: the kernel decides what it may read.
      await runAs(
        user,
        '/bin/sh',
        ['-c', COPY_SCRIPT, 'copy', localPath(uri.value), name],
        sandbox,
        timeoutMs,
      );
    } else {
      let staged: string | undefined;
      let source: string;
      if (uri.cache) {
        source = await this.#cached(uri);
      } else {
        staged = await this.#stagingFile();
        source = staged;
        await this.#download(uri, staged);
      }
      try {
        const fh = await open(source, 'r');
        try {
          await runAs(user, '/bin/sh', ['-c', COPY_SCRIPT, 'copy', '-', name], sandbox, timeoutMs, fh.fd);
        } finally {
          await fh.close();
        }
      } finally {
        if (staged) await rm(staged, { force: true });
      }
    }
    if (uri.executable) await runAs(user, 'chmod', ['0755', '--', name], sandbox, timeoutMs);
    if (uri.extract !== false && ARCHIVE.test(name)) await this.#extract(name, sandbox, user);
  }

  /** A new file name in the agent's private staging directory (under the cache directory). */
  async #stagingFile(): Promise<string> {
    const dir = join(this.#opts.cacheDir, 'staging');
    await mkdir(this.#opts.cacheDir, { recursive: true, mode: 0o700 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${randomUUID()}.part`);
  }

  async #cached(uri: Uri): Promise<string> {
    const key = createHash('sha256').update(uri.value).digest('hex');
    const file = join(this.#opts.cacheDir, key);
    const existing = await stat(file).catch(() => undefined);
    if (existing) {
      const now = new Date();
      await utimes(file, now, now).catch(() => {});
      return file;
    }
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = (async () => {
        const tmp = await this.#stagingFile();
        try {
          await this.#download(uri, tmp);
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

  /** Downloads an http(s) URI to `dest`, a file in the agent's own staging directory. */
  async #download(uri: Uri, dest: string): Promise<void> {
    const timeoutMs = this.#opts.timeoutMs ?? 300_000;
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
      createWriteStream(dest, { flags: 'wx', mode: 0o600 }),
      {
        signal,
      },
    );
  }

  /** Extracts `name` (in the sandbox) as the task's user. */
  async #extract(name: string, sandbox: string, user: FetchUser | undefined): Promise<void> {
    const timeoutMs = this.#opts.timeoutMs ?? 300_000;
    const lower = name.toLowerCase();
    if (lower.endsWith('.zip')) {
      await runAs(user, 'unzip', ['-o', '-q', `./${name}`, '-d', '.'], sandbox, timeoutMs);
    } else if (/\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz)$/.test(lower)) {
      // --no-same-owner: files belong to whoever extracts them, never to ids in the archive.
      await runAs(user, 'tar', ['-xf', `./${name}`, '-C', '.', '--no-same-owner'], sandbox, timeoutMs);
    } else if (lower.endsWith('.gz')) {
      await runAs(user, 'gzip', ['-d', '-k', '-f', '--', `./${name}`], sandbox, timeoutMs);
    }
  }

  async #trimCache(keep: string): Promise<void> {
    const max = this.#opts.maxCacheBytes ?? 2 * 1024 ** 3;
    const entries = await readdir(this.#opts.cacheDir).catch(() => [] as string[]);
    const files: { path: string; size: number; mtime: number }[] = [];
    for (const name of entries) {
      if (name.endsWith('.part') || name === 'staging') continue;
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
