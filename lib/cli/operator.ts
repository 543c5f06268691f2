/**
 * Operator commands: `meso roles` (list, `set`), `meso agent drain|deactivate|reactivate` and
 * `meso explain <framework|role>`. They read and write the cluster's DynamoDB tables directly
 * (operators have table access) and nudge the allocator queue; the logic is in
 * lib/control/operator.ts, this is the shell around it.
 */

import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { callerPrincipal } from '../adapters/caller-identity.ts';
import { createDynamoClient, DynamoStore } from '../adapters/dynamo-store.ts';
import { createSqsClient, SqsBus, sdkSqs } from '../adapters/sqs.ts';
import { type ClusterConfig, loadClusterConfig } from '../config/cluster.ts';
import { type ControlDeps, DEFAULT_CONTROL_CONFIG, type Logger } from '../control/deps.ts';
import {
  type AgentMode,
  explainNow,
  isFramework,
  OperatorError,
  setAgentMode,
  setRoleSettings,
  showRoles,
} from '../control/operator.ts';
import { type RoleChange, RoleSettingsError } from '../control/roles.ts';
import { formatExplanation, type RoleSummary } from '../core/explain.ts';
import { format, parse as parseResources, ResourceError, type Resources } from '../core/resources.ts';
import { formatQuantities, parseQuantities, type Quantities } from '../core/roles.ts';
import { ENV } from '../definition/env.ts';
import { systemClock } from '../ports/clock.ts';
import { noMetrics } from '../ports/metrics.ts';
import { collect } from './args.ts';
import { type CliIo, EXIT, line, withConnection } from './io.ts';
import { formatTable } from './table.ts';

export interface OperatorCliDeps {
  io: CliIo;
  /** The control-plane dependencies for the configured cluster (tests pass their own). */
  connect: () => { deps: ControlDeps; close: () => void; principal?: () => Promise<string> };
}

/**
 * ControlDeps for the cluster `loadClusterConfig` finds: DynamoDB and SQS clients of the operator.
 * Silent unless given a `log`; the allocator's shards from `MESO_ALLOCATOR_SHARDS` unless given.
 */
export function connectToCluster(
  config: ClusterConfig = loadClusterConfig(),
  opts: { readonly log?: Logger; readonly shards?: number } = {},
): {
  deps: ControlDeps;
  close: () => void;
  /** Who the operator is, as the ACL `operator_calls` names principals (lib/adapters/caller-identity.ts). */
  principal: () => Promise<string>;
} {
  const sqs = createSqsClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const shards = opts.shards ?? Number(process.env[ENV.allocatorShards] ?? DEFAULT_CONTROL_CONFIG.shards);
  const deps: ControlDeps = {
    store: new DynamoStore(dynamo, config.tables),
    bus: new SqsBus(sdkSqs(sqs)),
    clock: systemClock,
    ids: { next: () => randomUUID() },
    metrics: noMetrics,
    log: opts.log ?? { info: () => {}, warn: () => {}, error: () => {} },
    config: {
      ...DEFAULT_CONTROL_CONFIG,
      prefix: config.prefix,
      queues: config.queues,
      shards: Number.isInteger(shards) && shards > 0 ? shards : 1,
    },
  };
  return {
    deps,
    principal: () => callerPrincipal(config.aws),
    close: () => {
      sqs.destroy();
      dynamo.destroy();
    },
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** `meso roles` as a table: one line per role, children below their parents. */
export function formatRolesTable(rows: readonly RoleSummary[]): string {
  if (rows.length === 0) return 'no roles yet (frameworks subscribe in role * unless they name one)\n';
  const header = [
    'ROLE',
    'WEIGHT',
    'SHARE',
    'FRAMEWORKS',
    'ALLOCATED',
    'OFFERED',
    'RESERVED',
    'GUARANTEE',
    'LIMIT',
    'CONSUMED',
  ];
  const fmt = (r: Resources): string => format(r);
  const q = (x: Quantities | undefined): string => (x ? formatQuantities(x) : '-');
  const body = rows.map((r) => [
    `${'  '.repeat(r.role.split('/').length - 1)}${r.role}`,
    String(r.weight),
    pct(r.share),
    String(r.frameworks),
    fmt(r.allocated),
    fmt(r.offered),
    fmt(r.reserved),
    q(r.guarantee),
    q(r.limit),
    fmt(r.consumed),
  ]);
  return formatTable(header, body);
}

/** Runs an operator action with the cluster's deps; bad settings or resources are usage errors. */
function withCluster(
  deps: OperatorCliDeps,
  action: (c: ControlDeps, by: string | undefined) => Promise<number>,
): Promise<number> {
  return withConnection(
    deps.io,
    deps.connect,
    async (c) => action(c.deps, await c.principal?.()),
    (e): e is Error =>
      e instanceof RoleSettingsError || e instanceof ResourceError || e instanceof OperatorError,
  );
}

export interface RolesSetOptions {
  weight?: string;
  guarantee?: string;
  limit?: string;
  minOffer: string[];
  clearGuarantee?: boolean;
  clearLimit?: boolean;
  clearMinOffer?: boolean;
  clearWeight?: boolean;
}

/** The change `meso roles set` asks for; throws ResourceError or OperatorError on bad input. */
export function roleChangeOf(o: RolesSetOptions): RoleChange {
  const change: { -readonly [K in keyof RoleChange]: RoleChange[K] } = {};
  if (o.weight !== undefined) {
    const w = Number(o.weight);
    if (!Number.isFinite(w) || w <= 0)
      throw new OperatorError(`--weight must be a number > 0, got "${o.weight}"`);
    change.weight = w;
  }
  if (o.clearWeight) change.weight = null;
  if (o.guarantee !== undefined) change.guarantee = parseQuantities(o.guarantee);
  if (o.clearGuarantee) change.guarantee = null;
  if (o.limit !== undefined) change.limit = parseQuantities(o.limit);
  if (o.clearLimit) change.limit = null;
  if (o.minOffer.length > 0) change.minAllocatable = o.minOffer.map((m) => parseResources(m));
  if (o.clearMinOffer) change.minAllocatable = null;
  if (Object.keys(change).length === 0)
    throw new OperatorError(
      'nothing to set: give --weight, --guarantee, --limit or --min-offer (or a --clear-… flag)',
    );
  return change;
}

/** Adds `meso roles`, `meso agent …` and `meso explain` to the program. */
export function registerOperatorCommands(
  program: Command,
  deps: () => OperatorCliDeps,
  done: (code: number) => void,
): void {
  const roles = program
    .command('roles')
    .description(
      'Show roles: weight, DRF share, allocated, offered, reserved, quota guarantee and limit, and what quota counts as consumed.',
    )
    .action(async () => {
      const d = deps();
      done(
        await withCluster(d, async (c) => {
          d.io.stdout.write(formatRolesTable(await showRoles(c)));
          return EXIT.OK;
        }),
      );
    });
  roles
    .command('set')
    .description(
      "Set a role's weight, quota or minimum offer (the allocator applies it at its next cycle). " +
        "Quantities are Mesos syntax without ports: --guarantee 'cpus:10;mem:20480'.",
    )
    .argument('<role>', 'the role, e.g. eng or eng/web')
    .option('--weight <n>', 'relative to its sibling roles (default 1)')
    .option('--guarantee <quantities>', 'resources offered to it first and held back for it')
    .option('--limit <quantities>', 'resources it may never exceed, offered and used together')
    .option(
      '--min-offer <resources>',
      'smallest offer worth making to it (repeatable: any one suffices)',
      collect,
      [] as string[],
    )
    .option('--clear-weight', 'back to weight 1')
    .option('--clear-guarantee', 'remove the guarantee')
    .option('--clear-limit', 'remove the limit')
    .option('--clear-min-offer', "back to the cluster's minimum offer")
    .action(async (role: string, options: RolesSetOptions) => {
      const d = deps();
      done(
        await withCluster(d, async (c, by) => {
          const record = await setRoleSettings(c, role, roleChangeOf(options), by);
          d.io.stdout.write(
            line(
              record
                ? `role ${role}: weight ${record.weight ?? 1}, guarantee ${formatQuantities(record.guarantee)}, limit ${formatQuantities(record.limit)}${record.minAllocatable ? `, min offer ${record.minAllocatable.map(format).join(' | ')}` : ''}`
                : `role ${role}: back to the defaults (weight 1, no quota)`,
            ),
          );
          return EXIT.OK;
        }),
      );
    });

  const agent = program
    .command('agent')
    .description('Operate on an agent: drain, deactivate or reactivate it.');
  const modes: [string, AgentMode, string][] = [
    [
      'drain',
      'DRAINING',
      'no new offers on the agent (outstanding ones are rescinded); running tasks stay until they end',
    ],
    [
      'deactivate',
      'DEACTIVATED',
      'no new offers on the agent (outstanding ones are rescinded); tasks keep running',
    ],
    ['reactivate', 'ACTIVE', 'offer the agent again after drain or deactivate'],
  ];
  for (const [name, mode, description] of modes) {
    agent
      .command(name)
      .description(description)
      .argument('<agentId>')
      .action(async (agentId: string) => {
        const d = deps();
        done(
          await withCluster(d, async (c, by) => {
            const r = await setAgentMode(c, agentId, mode, by);
            d.io.stdout.write(
              line(
                `agent ${agentId}: ${mode}${r.rescinded > 0 ? `; ${r.rescinded} outstanding offer${r.rescinded === 1 ? '' : 's'} rescinded` : ''}${mode !== 'ACTIVE' ? `; ${r.tasks} task${r.tasks === 1 ? '' : 's'} still running` : ''}`,
              ),
            );
            return EXIT.OK;
          }),
        );
      });
  }

  program
    .command('explain')
    .description(
      "Say why a framework (or a role's frameworks) is not getting offers right now, from the allocator's own state.",
    )
    .argument('<name>', 'a framework id, or a role')
    .option('--role', 'treat the name as a role even if a framework has that id')
    .action(async (name: string, options: { role?: boolean }) => {
      const d = deps();
      done(
        await withCluster(d, async (c) => {
          const asFramework = !options.role && (await isFramework(c, name));
          const { explanation, outstanding } = await explainNow(
            c,
            asFramework ? { framework: name } : { role: name },
          );
          const lines = formatExplanation(explanation);
          for (const [fw, o] of Object.entries(outstanding)) {
            lines.push(
              `framework ${fw} holds ${o.count} outstanding offer${o.count === 1 ? '' : 's'} (the first expires ${new Date(o.firstExpiry!).toISOString()})`,
            );
          }
          d.io.stdout.write(`${lines.join('\n')}\n`);
          return EXIT.OK;
        }),
      );
    });
}
