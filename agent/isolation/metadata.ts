/**
 * Keeps tasks away from the instance metadata service (IMDS) while the agent keeps it: on EC2 the
 * node's role is the agent's identity, and a task that reached 169.254.169.254 (or fd00:ec2::254)
 * could take the role's credentials and speak as the agent.
 *
 * How: netfilter rules in the host's OUTPUT chain, keyed on the socket owner's uid (`-m owner
 * --uid-owner`): connections from the task users' uids to the metadata addresses are rejected;
 * the agent's own (root) are not. A chain of its own (`MESO-METADATA`) is flushed and refilled at
 * each start, so restarts and a changed user list leave no stale rules. Root tasks
 * (`--allow-root-tasks`) cannot be told from the agent this way: they are trusted with the node.
 *
 * Needs root and `iptables` (and `ip6tables` for IPv6); without them the agent says so at start
 * and tasks can reach the metadata service (an operator can still set the instance's hop limit
 * to 1 for containers, or block it in the VPC).
 */
import { execFile } from 'node:child_process';
import { which } from './user.ts';

export const METADATA_ADDRESSES_V4: readonly string[] = ['169.254.169.254'];
export const METADATA_ADDRESSES_V6: readonly string[] = ['fd00:ec2::254'];
export const METADATA_CHAIN = 'MESO-METADATA';

export interface MetadataBlockOptions {
  /** uids whose connections to the addresses are refused (the task users). */
  readonly uids: readonly number[];
  readonly v4?: readonly string[];
  readonly v6?: readonly string[];
  readonly chain?: string;
}

function run(file: string, args: string[]): Promise<{ ok: boolean; err: string }> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      { timeout: 10_000, encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
      (e, _o, err) => done({ ok: !e, err: String(err || e?.message || '').trim() }),
    );
  });
}

async function fill(
  tool: string,
  chain: string,
  addresses: readonly string[],
  uids: readonly number[],
  prefix: number,
) {
  // -N fails when the chain exists: then it is flushed and refilled.
  await run(tool, ['-w', '-N', chain]);
  const flushed = await run(tool, ['-w', '-F', chain]);
  if (!flushed.ok) throw new Error(`${tool} -F ${chain}: ${flushed.err}`);
  for (const address of addresses) {
    for (const uid of new Set(uids)) {
      const r = await run(tool, [
        '-w',
        '-A',
        chain,
        '-d',
        `${address}/${prefix}`,
        '-m',
        'owner',
        '--uid-owner',
        String(uid),
        '-j',
        'REJECT',
      ]);
      if (!r.ok) throw new Error(`${tool}: ${r.err}`);
    }
  }
  if (!(await run(tool, ['-w', '-C', 'OUTPUT', '-j', chain])).ok) {
    const r = await run(tool, ['-w', '-I', 'OUTPUT', '1', '-j', chain]);
    if (!r.ok) throw new Error(`${tool}: ${r.err}`);
  }
}

/**
 * Installs (or refreshes) the rules. Returns what it did, for the agent's start log; throws when
 * the rules cannot be installed (no root, no iptables).
 *
 * @example
 * await blockMetadata({ uids: [65534] }); // 'metadata service blocked for uids 65534 (IPv4, IPv6)'
 */
export async function blockMetadata(o: MetadataBlockOptions): Promise<string> {
  const chain = o.chain ?? METADATA_CHAIN;
  const uids = o.uids.filter((u) => u !== 0);
  const iptables = which('iptables');
  if (!iptables) throw new Error('iptables is not installed');
  if (uids.length === 0) return 'metadata service: no task user to block (tasks run as root)';
  await fill(iptables, chain, o.v4 ?? METADATA_ADDRESSES_V4, uids, 32);
  const families = ['IPv4'];
  const ip6tables = which('ip6tables');
  const v6 = o.v6 ?? METADATA_ADDRESSES_V6;
  if (ip6tables && v6.length > 0) {
    await fill(ip6tables, chain, v6, uids, 128);
    families.push('IPv6');
  }
  return `metadata service blocked for uids ${uids.join(', ')} (${families.join(', ')})`;
}

/** Removes the rules (tests; an operator uninstalling the agent). */
export async function unblockMetadata(chain = METADATA_CHAIN): Promise<void> {
  for (const tool of ['iptables', 'ip6tables']) {
    const path = which(tool);
    if (!path) continue;
    await run(path, ['-w', '-D', 'OUTPUT', '-j', chain]);
    await run(path, ['-w', '-F', chain]);
    await run(path, ['-w', '-X', chain]);
  }
}
