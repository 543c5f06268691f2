/**
 * What the agent reads for READ_LOGS (agent/logs.ts): only a task's own regular output file, one
 * chunk at a time. The task owns its sandbox and may have replaced `stdout` with a symlink to a
 * secret, a FIFO that would block a reader forever, or a hard link to another file; none is read.
 */
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newestSandbox, outputFile, readChunk } from '../../agent/logs.ts';
import { LOGS_LIMITS } from '../../lib/protocol/logs.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meso-agent-logs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readChunk', () => {
  it('reads from an offset, at most a chunk however much is asked, and nothing past the end', async () => {
    const file = join(dir, 'stdout');
    const body = Buffer.alloc(3 * LOGS_LIMITS.chunkBytes + 10, 'x');
    body.write('head', 0);
    writeFileSync(file, body);
    const first = await readChunk(file, 0, Number.MAX_SAFE_INTEGER);
    expect(first.data.length).toBe(LOGS_LIMITS.chunkBytes);
    expect(first.data.subarray(0, 4).toString()).toBe('head');
    expect(first.size).toBe(body.length);
    const last = await readChunk(file, body.length - 10, 100);
    expect(last).toMatchObject({ offset: body.length - 10, size: body.length });
    expect(last.data.length).toBe(10);
    const past = await readChunk(file, Number.MAX_SAFE_INTEGER, 100);
    expect(past).toMatchObject({ offset: body.length, size: body.length });
    expect(past.data.length).toBe(0);
    expect(past.error).toBeUndefined();
    const end = await readChunk(file, 0, 5, true);
    expect(end).toMatchObject({ offset: body.length - 5 });
    expect(end.data.toString()).toBe('xxxxx');
  });

  it('reads a missing file as empty (the task has not written yet)', async () => {
    const r = await readChunk(join(dir, 'stdout'), 0, 100);
    expect(r).toMatchObject({ offset: 0, size: 0 });
    expect(r.error).toBeUndefined();
  });

  it('does not follow a symlink the task put in place of its output', async () => {
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'root-only secret\n');
    symlinkSync(secret, join(dir, 'stdout'));
    const r = await readChunk(join(dir, 'stdout'), 0, 100);
    expect(r.error?.code).toBe('NOT_A_FILE');
    expect(r.data.length).toBe(0);
  });

  it('does not read a hard link to another file', async () => {
    const other = join(dir, 'other');
    writeFileSync(other, 'someone else\n');
    linkSync(other, join(dir, 'stdout'));
    const r = await readChunk(join(dir, 'stdout'), 0, 100);
    expect(r.error?.code).toBe('NOT_A_FILE');
    expect(r.data.length).toBe(0);
  });

  it('does not block on a FIFO the task put in place of its output', async () => {
    const fifo = join(dir, 'stderr');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // Resolves (a blocked open would never do): O_NONBLOCK, then refused as not a regular file.
    const r = await readChunk(fifo, 0, 100);
    expect(r.error?.code).toBe('NOT_A_FILE');
  });
});

describe('newestSandbox', () => {
  it('finds the newest run directory of a task, not a symlink beside them, and nothing for ids that escape', () => {
    const taskDir = join(dir, 'sandboxes', 'f1', 't1');
    mkdirSync(join(taskDir, 'run-old'), { recursive: true });
    mkdirSync(join(taskDir, 'run-new'));
    utimesSync(join(taskDir, 'run-old'), new Date(1000), new Date(1000));
    symlinkSync('/', join(taskDir, 'zz-link'));
    utimesSync(join(taskDir, 'run-new'), new Date(5000), new Date(5000));
    expect(newestSandbox(dir, 'f1', 't1')).toBe(join(taskDir, 'run-new'));
    expect(outputFile(join(taskDir, 'run-new'), 'stderr')).toBe(join(taskDir, 'run-new', 'stderr'));
    expect(newestSandbox(dir, 'f1', 'none')).toBeUndefined();
    expect(newestSandbox(dir, '..', '..')).toBeUndefined();
  });
});
