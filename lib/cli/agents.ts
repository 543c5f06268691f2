/**
 * `meso agents`: the cluster's agents as the registry knows them — status, when last heard from,
 * resources, running tasks, and the isolation each one enforces (`meso.isolation`,
 * `meso.containers`: the agent registers them as attributes).
 */
import type { Command } from 'commander';
import { createDynamoClient, DynamoStore } from '../adapters/dynamo-store.ts';
import { type ClusterConfig, loadClusterConfig } from '../config/cluster.ts';
import { agentView } from '../control/operator-state.ts';
import type { AgentRecord } from '../core/model.ts';
import { format } from '../core/resources.ts';
import type { Store } from '../ports/store.ts';
import { type CliIo, EXIT, withConnection } from './io.ts';
import { formatTable } from './table.ts';

export interface ClusterStoreDeps {
  io: CliIo;
  /** The cluster's tables (tests pass their own store). */
  openStore: () => { store: Store; close: () => void };
  now?: () => number;
}

/** A DynamoStore over the configured cluster's tables. */
export function openClusterStore(config: ClusterConfig = loadClusterConfig()): {
  store: Store;
  close: () => void;
} {
  const dynamo = createDynamoClient(config.aws);
  return { store: new DynamoStore(dynamo, config.tables), close: () => dynamo.destroy() };
}

/** Runs `action` with the store; a missing cluster is a usage error. */
export function withStore(
  deps: ClusterStoreDeps,
  action: (store: Store) => Promise<number>,
): Promise<number> {
  return withConnection(deps.io, deps.openStore, (opened) => action(opened.store));
}

/** `12s`, `4m`, `3h`, `2d` ago. */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function formatAgentsTable(agents: readonly AgentRecord[], now: number): string {
  if (agents.length === 0) return 'no agents have registered\n';
  const header = [
    'AGENT',
    'HOSTNAME',
    'STATUS',
    'SEEN',
    'TASKS',
    'RESOURCES',
    'ISOLATION',
    'CONTAINERS',
    'ATTRIBUTES',
  ];
  const rows = [...agents]
    .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.agentId.localeCompare(b.agentId))
    .map((a) => {
      const attrs = a.attributes ?? {};
      const others = Object.entries(attrs)
        .filter(([k]) => !k.startsWith('meso.'))
        .map(([k, v]) => `${k}:${v}`)
        .join(';');
      return [
        a.agentId,
        a.hostname,
        a.status,
        `${ago(now - a.lastSeenAt)} ago`,
        String(Object.keys(a.tasks ?? {}).length),
        format(a.total),
        attrs['meso.isolation'] ?? 'unknown',
        attrs['meso.containers'] ?? 'unknown',
        others || '-',
      ];
    });
  return formatTable(header, rows);
}

export async function agentsCommand(opts: { json?: boolean }, deps: ClusterStoreDeps): Promise<number> {
  return withStore(deps, async (store) => {
    const agents = await store.scan<AgentRecord & Record<string, unknown>>('agents');
    if (opts.json) {
      // The table's units (cpus, MB), not the stored thousandths: lib/control/operator-state.ts.
      deps.io.stdout.write(`${JSON.stringify(agents.map(agentView), null, 2)}\n`);
    } else {
      deps.io.stdout.write(formatAgentsTable(agents, (deps.now ?? Date.now)()));
    }
    return EXIT.OK;
  });
}

/** Adds `meso agents` to the program. */
export function registerAgentsCommand(
  program: Command,
  deps: () => ClusterStoreDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('agents')
    .description(
      'List the agents: status, last heartbeat, tasks, resources, and the isolation each enforces ' +
        '(cgroups-v2, cgroups-v1, process-tree or none; +pidns with a PID namespace per task).',
    )
    .option('--json', 'the agent records as JSON')
    .action(async (opts: { json?: boolean }) => {
      done(await agentsCommand(opts, deps()));
    });
}
