/**
 * Bundles the agent into one file, `dist/meso-agent.mjs` (`npm run build:agent`): every
 * dependency inlined, so a node needs only Node.js 22 and this file. The CDK agent fleet
 * construct bundles through the same function.
 *
 * @example
 * await bundleAgent('dist/meso-agent.mjs'); // then: node dist/meso-agent.mjs install --dry-run …
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, buildSync, type OutputFile } from 'esbuild';

const ENTRY = fileURLToPath(new URL('../bin/meso-agent.ts', import.meta.url));

/** Makes `require` exist in the ESM bundle, for CommonJS dependencies that call it. */
const BANNER =
  "import { createRequire as __mesoCreateRequire } from 'node:module'; const require = __mesoCreateRequire(import.meta.url);";

const OPTIONS: BuildOptions & { write: false } = {
  entryPoints: [ENTRY],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  legalComments: 'none',
  banner: { js: BANNER },
  logLevel: 'warning',
  write: false,
};

/** The entry's `#!/usr/bin/env -S npx tsx` becomes a plain node one: the bundle needs no tsx. */
function save(outfile: string, files: readonly OutputFile[]): void {
  const text = files[0]!.text.replace(/^#![^\n]*\n/, '');
  mkdirSync(dirname(outfile), { recursive: true });
  // `env -S` passes the flag (coreutils ≥ 8.30); see NODE_FLAGS in install.ts.
  writeFileSync(outfile, `#!/usr/bin/env -S node --optimize-for-size\n${text}`, { mode: 0o755 });
}

/** Writes the bundle to `outfile`. */
export async function bundleAgent(outfile: string): Promise<void> {
  save(outfile, (await build({ ...OPTIONS, outfile })).outputFiles ?? []);
}

/** The same, synchronously (CDK synthesis is synchronous). */
export function bundleAgentSync(outfile: string): void {
  save(outfile, buildSync({ ...OPTIONS, outfile }).outputFiles ?? []);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? fileURLToPath(new URL('../dist/meso-agent.mjs', import.meta.url));
  await bundleAgent(out);
  process.stdout.write(`${out}\n`);
}
