/** Where `meso logs` looks for sandboxes on this machine. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { localWorkDirs } from '../../../lib/cli/logs.ts';
import { tempDir } from '../../agent/helpers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir('meso-logs-dirs-');
});
afterEach(async () => {
  await dir.remove();
});

async function agentDir(path: string): Promise<string> {
  await mkdir(join(path, 'sandboxes'), { recursive: true });
  return path;
}

it("finds the local stack's agents from .meso/dev.json, and not a stale directory beside them", async () => {
  const meso = join(dir.path, '.meso');
  const custom = await agentDir(join(dir.path, 'elsewhere'));
  const listed = await agentDir(join(meso, 'agent-0'));
  await agentDir(join(meso, 'agent-7')); // from an earlier `meso dev --agents 8`
  const byHand = await agentDir(join(meso, 'agent'));
  await writeFile(join(meso, 'dev.json'), JSON.stringify({ agentWorkDirs: [listed, custom] }));

  const found = localWorkDirs(join(dir.path, 'some', 'where'), {});
  expect(found).toEqual([listed, custom, byHand]);
  expect(localWorkDirs(dir.path, { MESO_AGENT_WORK_DIR: custom })[0]).toBe(custom);
});
