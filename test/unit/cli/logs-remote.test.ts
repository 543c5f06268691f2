/**
 * `meso logs` over a reader (lib/cli/logs.ts): the chunks it asks for and what it prints — the
 * offsets it follows, a character cut between two chunks, `--tail`, `-f` waiting for a task whose
 * sandbox is not there yet and stopping once the run has ended and the file is drained, and an
 * error answer. The reader here serves files from memory; test/integration/logs-anywhere.test.ts
 * runs the real one through the queues.
 */
import { describe, expect, it } from 'vitest';
import { logsCommand } from '../../../lib/cli/logs.ts';
import type { ChunkRequest, LogsReader } from '../../../lib/cli/logs-reader.ts';
import { LogsError } from '../../../lib/cli/logs-reader.ts';

function fakeReader(script: (req: ChunkRequest, n: number) => { file: Buffer; ended: boolean } | LogsError) {
  const asked: ChunkRequest[] = [];
  const reader: LogsReader = {
    close: () => {},
    async read(req) {
      asked.push(req);
      const r = script(req, asked.length);
      if (r instanceof LogsError) throw r;
      const max = Math.min(req.maxBytes ?? 65536, 7); // small chunks, to exercise the offsets
      const start = req.fromEnd ? Math.max(0, r.file.length - max) : Math.min(req.offset, r.file.length);
      const bytes = r.file.subarray(start, start + max);
      return {
        v: 1,
        type: 'LOGS',
        requestId: 'r',
        frameworkId: req.frameworkId,
        taskId: req.taskId,
        stream: req.stream,
        offset: start,
        data: bytes.toString('base64'),
        size: r.file.length,
        ended: r.ended,
        state: r.ended ? 'TASK_FINISHED' : 'TASK_RUNNING',
        bytes,
      };
    },
  };
  return { reader, asked };
}

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
      onInterrupt: () => () => {},
      exit: (c: number): never => {
        throw new Error(`exit ${c}`);
      },
    },
  };
}

describe('meso logs through a reader', () => {
  it('reads each stream chunk by chunk to its end, a UTF-8 character cut between chunks intact', async () => {
    const files = { stdout: Buffer.from('héllo wörld, ünïcode\n'), stderr: Buffer.from('oops\n') };
    const { reader, asked } = fakeReader((req) => ({ file: files[req.stream], ended: true }));
    const c = io();
    const code = await logsCommand(
      't1',
      { framework: 'f1' },
      {
        io: c.io,
        workDirs: () => [],
        openReader: async () => reader,
      },
    );
    expect(code).toBe(0);
    expect(c.out.stdout).toBe('héllo wörld, ünïcode\n');
    expect(c.out.stderr).toBe('oops\n');
    // Each ask starts where the last chunk ended.
    const offsets = asked.filter((a) => a.stream === 'stdout').map((a) => a.offset);
    expect(offsets).toEqual([0, 7, 14, 21]);
  });

  it('--tail asks for the end of the file and prints its last lines', async () => {
    const { reader, asked } = fakeReader(() => ({ file: Buffer.from('a\nb\nc\nd\n'), ended: true }));
    const c = io();
    await logsCommand(
      't1',
      { framework: 'f1', tail: 2, stream: 'stdout' },
      {
        io: c.io,
        workDirs: () => [],
        openReader: async () => reader,
      },
    );
    expect(asked[0]).toMatchObject({ fromEnd: true });
    expect(c.out.stdout).toBe('c\nd\n');
  });

  it('-f waits for a sandbox not there yet, follows what is written, and stops once ended and drained', async () => {
    let file = Buffer.alloc(0);
    const { reader } = fakeReader((_req, n) => {
      if (n <= 2) return new LogsError('this agent has no sandbox of task t1', 'NO_SANDBOX', 'TASK_STAGING');
      if (n === 4) file = Buffer.from('first\n');
      if (n === 6) file = Buffer.from('first\nsecond\n');
      return { file, ended: n >= 6 };
    });
    const c = io();
    const code = await logsCommand(
      't1',
      { framework: 'f1', follow: true, stream: 'stdout' },
      {
        io: c.io,
        workDirs: () => [],
        pollMs: 1,
        openReader: async () => reader,
      },
    );
    expect(c.out.stderr).toBe('');
    expect(code).toBe(0);
    expect(c.out.stdout).toBe('first\nsecond\n');
  });

  it('prints an error answer with its code and exits 1', async () => {
    const { reader } = fakeReader(() => new LogsError('principal "x" may not read', 'FORBIDDEN'));
    const c = io();
    const code = await logsCommand(
      't1',
      { framework: 'f1' },
      {
        io: c.io,
        workDirs: () => [],
        openReader: async () => reader,
      },
    );
    expect(code).toBe(1);
    expect(c.out.stdout).toBe('');
    expect(c.out.stderr).toBe('meso: FORBIDDEN: principal "x" may not read\n');
  });
});
