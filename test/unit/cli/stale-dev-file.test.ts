/** A `.meso/dev.json` whose `meso dev` is gone (kill -9) is named as such, not left to ECONNREFUSED. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConfigError, loadClusterConfig } from '../../../lib/config/cluster.ts';
import { tempDir } from '../../agent/helpers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
const children: ChildProcess[] = [];
beforeAll(async () => {
  dir = await tempDir('meso-stale-');
  await mkdir(join(dir.path, '.meso'));
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await dir.remove();
});

async function devFileWithPid(pid: number): Promise<string> {
  const file = join(dir.path, '.meso', 'dev.json');
  await writeFile(
    file,
    JSON.stringify({
      region: 'us-east-1',
      dynamoEndpoint: 'http://127.0.0.1:45019',
      sqsEndpoint: 'http://127.0.0.1:45020',
      prefix: 'meso',
      queues: {},
      tables: {},
      pid,
      startedAt: '2026-12-03T10:00:00.000Z',
    }),
  );
  return file;
}

/** A running process whose command line is `argv`. */
async function running(argv: string[]): Promise<number> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  return child.pid!;
}

const load = () => loadClusterConfig({}, join(dir.path, 'sub'));

it('a dev.json whose process has exited says so and what to do', async () => {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'exit');
  const file = await devFileWithPid(child.pid!);
  const error = (() => {
    try {
      load();
    } catch (e) {
      return e;
    }
  })();
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as Error).message).toBe(
    `${file} is left over from a local stack that is no longer running (pid ${child.pid}, started ` +
      '2026-12-03T10:00:00.000Z: no such process). Start it again with `npm start` (which replaces the file), or delete the file.',
  );
});

it('a dev.json whose pid now belongs to another program is stale too', async () => {
  await devFileWithPid(await running(['sleep', '60']));
  expect(load).toThrow(/that pid is now another program/);
});

it('a dev.json whose meso dev still runs is used', async () => {
  const pid = await running([process.execPath, '-e', 'setInterval(() => {}, 1000)', 'meso', 'dev']);
  await devFileWithPid(pid);
  expect(load().aws.dynamoEndpoint).toBe('http://127.0.0.1:45019');
});
