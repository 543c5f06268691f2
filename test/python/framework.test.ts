/**
 * A framework in a second language, written from docs/protocol.md alone (test/python/framework.py:
 * Python's standard library, raw SQS requests, no project code), run against the real control
 * plane and a real agent. If the document and the behaviour drift apart, this fails.
 *
 * Python 3 is required: without it this test fails, saying so (CI installs it, as it installs
 * Java), rather than skipping what it is here to check.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configToEnv } from '../../lib/config/cluster.ts';
import { type Harness, startHarness } from '../integration/harness.ts';

const SCRIPT = join(fileURLToPath(new URL('.', import.meta.url)), 'framework.py');

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ agents: 1 });
});
afterAll(async () => h?.stop());

it('python3 is installed (the framework below needs it)', () => {
  const v = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  expect(
    v.error,
    'python3 is not installed: apt-get install -y python3 (test/python/framework.py needs it)',
  ).toBe(undefined);
  expect(v.stdout + v.stderr).toMatch(/^Python 3\./);
});

it('a Python framework built from docs/protocol.md runs a task and sees what the document promises', async () => {
  const env = { ...process.env, ...configToEnv(h.cluster) };
  const child = spawn('python3', [SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const [code, spawnError] = await new Promise<[number | null, Error | undefined]>((done) => {
    child.once('error', (e) => done([null, e]));
    child.once('exit', (c) => done([c, undefined]));
  });
  expect(spawnError?.message, 'python3 could not be started').toBeUndefined();
  const checks = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { check: string; ok: boolean });
  const report = `--- stdout ---\n${out}\n--- stderr ---\n${err}`;
  expect(
    checks.filter((c) => !c.ok),
    report,
  ).toEqual([]);
  expect(new Set(checks.map((c) => c.check)), report).toEqual(
    new Set([
      'subscribed',
      'update dedup id names the uuid and the inbound message',
      'the task ran and finished with its output',
      'reconciliation answers the real end, without uuid or tails',
      'KILL of an ended task with the wrong agent answers its end',
      'after TEARDOWN calls get FRAMEWORK_TORN_DOWN; a second TEARDOWN gets no ERROR',
    ]),
  );
  expect(code, report).toBe(0);
}, 150_000);
