/**
 * Serving a task's output on request (READ_LOGS, lib/protocol/logs.ts): one chunk of the
 * `stdout` or `stderr` of a task's sandbox. Nothing in the request names a path: the sandbox is
 * the one the agent made for that framework's task (the run it knows, else the newest under
 * `sandboxes/<frameworkId>/<taskId>/`), and the file is one of two fixed names.
 *
 * The sandbox belongs to the task, which may have replaced its output files, and the agent may be
 * root. So, as for the tails of terminal updates (`readTail`): a symlink is not followed, a FIFO
 * or device is not opened for reading (O_NONBLOCK, then it must be a regular file), a file with
 * other names (a hard link to someone else's file) is not read, and at most one chunk of a huge
 * file is read at a time.
 */
import { constants as fsConstants, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LOGS_LIMITS, type LogStream } from '../lib/protocol/logs.ts';
import { sandboxPath } from './executor.ts';

export interface LogChunk {
  /** Where `data` starts in the file. */
  readonly offset: number;
  readonly data: Buffer;
  /** The file's size when read. */
  readonly size: number;
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * Up to `maxBytes` (at most one chunk) of `file` from `offset`, or its last `maxBytes` with
 * `fromEnd`. A missing file is empty (the task has not written yet). An offset past the end reads
 * nothing, at the end.
 */
export async function readChunk(
  file: string,
  offset: number,
  maxBytes: number,
  fromEnd = false,
): Promise<LogChunk> {
  const want = Math.max(0, Math.min(maxBytes, LOGS_LIMITS.chunkBytes));
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile() || st.nlink !== 1)
      return notAFile(
        offset,
        `the task's ${file.slice(file.lastIndexOf('/') + 1)} is not a regular file of its own`,
      );
    const size = st.size;
    const start = fromEnd ? Math.max(0, size - want) : Math.min(offset, size);
    const length = Math.min(want, size - start);
    const data = Buffer.alloc(length);
    const { bytesRead } = length > 0 ? await fh.read(data, 0, length, start) : { bytesRead: 0 };
    return { offset: start, data: data.subarray(0, bytesRead), size };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { offset: 0, data: Buffer.alloc(0), size: 0 };
    // ELOOP: a symlink in place of the file.
    if (code === 'ELOOP') return notAFile(offset, "the task's output file is a symlink: not followed");
    return notAFile(offset, `the task's output cannot be read (${code ?? 'error'})`, 'UNREADABLE');
  } finally {
    await fh?.close();
  }
}

const notAFile = (offset: number, message: string, code = 'NOT_A_FILE'): LogChunk => ({
  offset,
  data: Buffer.alloc(0),
  size: 0,
  error: { code, message },
});

/**
 * The sandbox of a task's newest run under `workDir` (by the run directory's modification time),
 * for a task the agent no longer holds in its table. Undefined when there is none.
 */
export function newestSandbox(workDir: string, frameworkId: string, taskId: string): string | undefined {
  let taskDir: string;
  try {
    taskDir = join(sandboxPath(workDir, frameworkId, taskId, 'run'), '..');
  } catch {
    return undefined;
  }
  let best: { path: string; mtimeMs: number } | undefined;
  try {
    for (const d of readdirSync(taskDir, { withFileTypes: true })) {
      // Dirent.isDirectory() is false for a symlink: only the agent's own run directories.
      if (!d.isDirectory()) continue;
      const path = join(taskDir, d.name);
      const mtimeMs = statSync(path).mtimeMs;
      if (!best || mtimeMs > best.mtimeMs) best = { path, mtimeMs };
    }
  } catch {
    return undefined;
  }
  return best?.path;
}

/** The file of `stream` in `sandbox`: one of two fixed names. */
export const outputFile = (sandbox: string, stream: LogStream): string =>
  join(sandbox, stream === 'stderr' ? 'stderr' : 'stdout');
