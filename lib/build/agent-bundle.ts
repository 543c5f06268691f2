/**
 * Bundles the agent into one file, `dist/meso-agent.mjs` (`npm run build:agent`): every
 * dependency inlined, so a node needs only Node.js 22 and this file. The CDK agent fleet
 * construct bundles through the same function.
 *
 * @example
 * await bundleAgent('dist/meso-agent.mjs'); // then: node dist/meso-agent.mjs install --dry-run …
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, buildSync, type OutputFile } from 'esbuild';
import { AGENT_ENV_VARS, NODE_FLAGS } from '../definition/agent-runtime.ts';

const ENTRY = fileURLToPath(new URL('../../bin/meso-agent.ts', import.meta.url));

/** Makes `require` exist in the ESM bundle, for CommonJS dependencies that call it. */
const BANNER =
  "import { createRequire as __mesoCreateRequire } from 'node:module'; const require = __mesoCreateRequire(import.meta.url);";

/**
 * `node:http` and `node:https` for the bundle, read through `process.getBuiltinModule`. An ES
 * import of a built-in makes a module namespace of it, which reads every export, getters too —
 * and `node:http`'s `WebSocket`, `CloseEvent` and `MessageEvent` getters load undici: 7 MB of
 * resident memory the agent never uses (the HTTP health checks and the instance-metadata
 * credentials import `node:http`). A shim exports the module's plain properties only; a named
 * import of a getter fails the build, where it is seen.
 */
function httpShims(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'meso-agent-shims-'));
  const alias: Record<string, string> = {};
  for (const name of ['http', 'https']) {
    const mod = process.getBuiltinModule(`node:${name}`) as Record<string, unknown>;
    const plain = Object.entries(Object.getOwnPropertyDescriptors(mod))
      .filter(([k, d]) => 'value' in d && /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default')
      .map(([k]) => k);
    const file = join(dir, `${name}.mjs`);
    writeFileSync(
      file,
      `const m = process.getBuiltinModule('node:${name}');\nexport default m;\nexport const { ${plain.join(', ')} } = m;\n`,
    );
    alias[`node:${name}`] = file;
    alias[name] = file;
  }
  return alias;
}

const options = (outfile: string): BuildOptions & { write: false } => ({
  entryPoints: [ENTRY],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  legalComments: 'none',
  banner: { js: BANNER },
  alias: httpShims(),
  logLevel: 'warning',
  write: false,
  outfile,
});

/** The entry's `#!/usr/bin/env -S npx tsx` becomes a plain node one: the bundle needs no tsx. */
function save(outfile: string, files: readonly OutputFile[]): void {
  const text = files[0]!.text.replace(/^#![^\n]*\n/, '');
  mkdirSync(dirname(outfile), { recursive: true });
  // `env -S` passes the variables and flags (coreutils ≥ 8.30); see agent/install.ts.
  const vars = Object.entries(AGENT_ENV_VARS).map(([k, v]) => `${k}=${v}`);
  writeFileSync(outfile, `#!/usr/bin/env -S ${[...vars, 'node', ...NODE_FLAGS].join(' ')}\n${text}`, {
    mode: 0o755,
  });
}

/** Writes the bundle to `outfile`. */
export async function bundleAgent(outfile: string): Promise<void> {
  save(outfile, (await build(options(outfile))).outputFiles ?? []);
}

/** The same, synchronously (CDK synthesis is synchronous). */
export function bundleAgentSync(outfile: string): void {
  save(outfile, buildSync(options(outfile)).outputFiles ?? []);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? fileURLToPath(new URL('../../dist/meso-agent.mjs', import.meta.url));
  await bundleAgent(out);
  process.stdout.write(`${out}\n`);
}
