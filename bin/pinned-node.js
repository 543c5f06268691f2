// Meso runs on Node 22 (the `node` devDependency). `npm ci` puts that pinned Node 22 in
// node_modules, and npm scripts and `npx` use it; when a bin is started directly by an older
// system Node, re-run it under the pinned one so it behaves the same everywhere.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function ensurePinnedNode(entry) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return;
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(
      `Meso needs Node.js 22 or later (this is ${process.version}); run \`npm ci\` to install the pinned one.\n`,
    );
    process.exit(2);
  }
  const r = spawnSync(pinned, [fileURLToPath(entry), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
