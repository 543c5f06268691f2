/**
 * The operator dashboard's files: dashboard/index.html plus dashboard/main.ts bundled by esbuild
 * with its libraries (uPlot) and their CSS, so the page needs no network beyond the API (no
 * CDN). The local stack builds them when it starts; the CDK construct builds them at synthesis
 * and ships them with the API function.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, buildSync, type OutputFile } from 'esbuild';
import type { StaticAsset } from '../control/operator-api.ts';

const DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));

const options: BuildOptions & { write: false } = {
  entryPoints: { dashboard: `${DIR}main.ts` },
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  outdir: '/dashboard-out',
  logLevel: 'warning',
  write: false,
};

function assetsOf(files: readonly OutputFile[]): Record<string, StaticAsset> {
  const out: Record<string, StaticAsset> = {
    '/': { contentType: 'text/html; charset=utf-8', body: readFileSync(`${DIR}index.html`, 'utf8') },
  };
  for (const f of files) {
    const name = f.path.slice(f.path.lastIndexOf('/'));
    const own = name === '/dashboard.css' ? readFileSync(`${DIR}dashboard.css`, 'utf8') : '';
    out[name] = {
      contentType: name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
      body: name.endsWith('.css') ? `${f.text}\n${own}` : f.text,
    };
  }
  // The page's own styles, even when the bundle imports no CSS.
  out['/dashboard.css'] ??= {
    contentType: 'text/css; charset=utf-8',
    body: readFileSync(`${DIR}dashboard.css`, 'utf8'),
  };
  out['/index.html'] = out['/']!;
  return out;
}

export async function buildDashboard(): Promise<Record<string, StaticAsset>> {
  return assetsOf((await build(options)).outputFiles);
}

/** The same, synchronously (CDK synthesis). */
export function buildDashboardSync(): Record<string, StaticAsset> {
  return assetsOf(buildSync(options).outputFiles);
}
