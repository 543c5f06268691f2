/**
 * What a new user meets before any task runs: the README's `npm start` lines and `npx meso` on
 * the system's own Node.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};

it('the README passes options to `npm start` after `--` (npm keeps the others for itself)', () => {
  const starts = readme.match(/npm start[^\n`]*/g) ?? [];
  expect(starts.length).toBeGreaterThan(0);
  for (const s of starts) expect(s).not.toMatch(/^npm start +-(?!- )/);
  expect(readme).toContain('npm start -- --agents 2');
});

it('package.json admits the Node that runs npm, and the bins run on the pinned Node 22', () => {
  // `engines` is what npm checks against the *system* Node on every `npx meso`; the bins re-run
  // themselves on the pinned `node` devDependency, so any Node that runs npm 10+ will do.
  const min = /^>=\s*(\d+)/.exec(pkg.engines.node);
  expect(min, `engines.node is ${pkg.engines.node}`).not.toBeNull();
  expect(Number(min?.[1])).toBeLessThanOrEqual(20);
  expect(pkg.devDependencies.node).toMatch(/^22\./);
});

it('`npx meso --version` on the system Node prints the version and no EBADENGINE warning', () => {
  // npm scripts put node_modules/.bin (the pinned Node) first on PATH; take it away so npx runs
  // on whatever Node the machine has, as in a user's terminal.
  const path = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => !d.includes('node_modules'))
    .join(delimiter);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  for (const k of Object.keys(env)) if (k.startsWith('npm_')) delete env[k];
  const node = spawnSync('node', ['--version'], { env, encoding: 'utf8' });
  const npx = spawnSync('npx', ['--no-install', 'meso', '--version'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(npx.error, `npx on PATH=${path}`).toBeUndefined();
  // Which Node this checked: on a machine whose Node is 22 already, no warning could appear.
  console.log(`npx meso checked on the system Node ${node.stdout.trim() || '(none found)'}`);
  expect(npx.stderr).not.toContain('EBADENGINE');
  expect(npx.stdout.trim()).toBe('0.1.0');
  expect(npx.status).toBe(0);
});
