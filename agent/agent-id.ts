/** The agent's identity: its id, kept in its work directory, and the name of its command queue. */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Agent ids name the agent's queue, so they use only characters SQS queue names allow. */
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Reads `<workDir>/agent-id`, or creates it with a new uuid. */
export async function loadOrCreateAgentId(workDir: string): Promise<string> {
  const file = join(workDir, 'agent-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (!AGENT_ID.test(id)) {
      throw new Error(
        `${file} holds "${id.slice(0, 80)}", not an agent id (letters, digits, - and _; at most 64)`,
      );
    }
    return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(workDir, { recursive: true });
  const id = randomUUID();
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${id}\n`, { mode: 0o644 });
  await rename(tmp, file);
  return id;
}

export function agentQueueName(prefix: string, agentId: string): string {
  const name = `${prefix}-agent-${agentId}.fifo`;
  if (name.length > 80 || !/^[A-Za-z0-9_-]+\.fifo$/.test(name)) {
    throw new Error(
      `agent queue name "${name}" is not a valid SQS FIFO queue name (≤ 80 of A-Z a-z 0-9 - _)`,
    );
  }
  return name;
}
