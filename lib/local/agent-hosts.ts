/**
 * How `meso dev --agents N` starts its agents on one machine: each offers its share of the
 * machine (`--share i/N`) and, with more than one, registers under its own loopback address as
 * its hostname — `127.0.0.1`, `127.0.0.2`, … — so placement by hostname (`hostname:UNIQUE`,
 * `MAX_PER`, `GROUP_BY`) sees N hosts, and `meso app endpoints` still lists addresses a client on
 * the machine can connect to (on Linux all of 127.0.0.0/8 reaches the loopback interface; a task
 * listening on all interfaces answers on each). One agent keeps the machine's hostname.
 */

/** The hostname the `index`-th of `count` local agents registers with (undefined: the machine's). */
export function localAgentHostname(index: number, count: number): string | undefined {
  if (count <= 1) return undefined;
  if (!Number.isInteger(index) || index < 0 || index >= 254)
    throw new RangeError(`a local agent's index must be 0-253, got ${index}`);
  return `127.0.0.${index + 1}`;
}

/** The `meso-agent run` options of the `index`-th of `count` local agents. */
export function localAgentOptions(
  index: number,
  count: number,
  workDir: string,
  resources?: string,
): string[] {
  const args = ['--work-dir', workDir];
  if (resources) args.push('--resources', resources);
  if (count > 1) {
    // Several agents on one machine share it: each offers its part, and its own ports.
    args.push('--share', `${index + 1}/${count}`);
    args.push('--hostname', localAgentHostname(index, count)!);
  }
  return args;
}
