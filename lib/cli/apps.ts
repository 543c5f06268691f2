/**
 * `meso app …` and `meso apps`: the services framework's commands (Marathon's, on Meso). They
 * write app definitions to the framework's table and tell its handler (`APPS_CHANGED` on its
 * event queue); the framework does the rest — launches, kills, rolling upgrades.
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { type ClusterConfig, loadClusterConfig } from '../config/cluster.ts';
import {
  type AppDefinition,
  type AppRecord,
  CONSTRAINT_OPERATORS,
  parseAppDefinition,
} from '../frameworks/services/app.ts';
import { SERVICES } from '../frameworks/services/built-in.ts';
import { type Instance, isReady } from '../frameworks/services/instance.ts';
import { appStatus } from '../frameworks/services/reconciler.ts';
import { ConflictError, type ServicesStore } from '../frameworks/services/store.ts';
import { collect, parseAmount } from './args.ts';
import {
  envOptions,
  type FrameworkCliDeps,
  type FrameworkConnection,
  frameworkCommand,
  openBuiltIn,
  wholeNumber,
} from './framework-host.ts';
import { type CliIo, EXIT, line, UsageError } from './io.ts';
import { formatTable } from './table.ts';

export type ServicesConnection = FrameworkConnection<ServicesStore>;

export type AppsDeps = FrameworkCliDeps<ServicesStore>;

/** The services framework of the configured cluster: its table, and its queue for notices. */
export const openServices = (config: ClusterConfig = loadClusterConfig()): ServicesConnection =>
  openBuiltIn(SERVICES, config);

export interface DeployOptions {
  name?: string;
  instances?: string;
  cpus?: number;
  mem?: number;
  disk?: number;
  ports?: string;
  cmd?: string;
  role?: string;
  constraint: string[];
  env: string[];
}

/** `hostname:UNIQUE`, `rack:GROUP_BY:3`, `hostname:LIKE:web-.*` → Marathon's array form. */
export function parseConstraint(text: string): string[] {
  const [field, op, ...rest] = text.split(':');
  if (!field || !op || !(CONSTRAINT_OPERATORS as readonly string[]).includes(op.toUpperCase()))
    throw new UsageError(
      `--constraint expects field:OPERATOR[:value] with OPERATOR one of ${CONSTRAINT_OPERATORS.join(', ')}, got "${text}"`,
    );
  return rest.length > 0 ? [field, op.toUpperCase(), rest.join(':')] : [field, op.toUpperCase()];
}

/** The definition `meso app deploy` was given: a JSON file, flags, or a file with flags on top. */
export function definitionFromArgs(
  file: string | undefined,
  o: DeployOptions,
  read = (f: string) => readFileSync(f, 'utf8'),
): AppDefinition {
  let base: Record<string, unknown> = {};
  if (file !== undefined) {
    try {
      base = JSON.parse(read(file)) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (typeof base !== 'object' || base === null || Array.isArray(base))
      throw new UsageError(`${file} does not hold an app definition (a JSON object)`);
  }
  const env = envOptions(o.env);
  const merged: Record<string, unknown> = {
    ...base,
    ...(o.name !== undefined ? { id: o.name } : {}),
    ...(o.instances !== undefined ? { instances: wholeNumber(o.instances, '--instances') } : {}),
    ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
    ...(o.mem !== undefined ? { mem: o.mem } : {}),
    ...(o.disk !== undefined ? { disk: o.disk } : {}),
    ...(o.ports !== undefined ? { ports: wholeNumber(o.ports, '--ports') } : {}),
    ...(o.cmd !== undefined ? { cmd: o.cmd } : {}),
    ...(o.role !== undefined ? { role: o.role } : {}),
    ...(o.constraint.length > 0 ? { constraints: o.constraint.map(parseConstraint) } : {}),
    ...(o.env.length > 0 ? { env: { ...(base.env as object), ...env } } : {}),
  };
  const parsed = parseAppDefinition(merged);
  if (!parsed.ok) throw new UsageError(`invalid app definition: ${parsed.error}`);
  return parsed.def;
}

const isUsage = (e: unknown): e is Error => e instanceof UsageError || e instanceof ConflictError;

async function mustGet(store: ServicesStore, id: string): Promise<AppRecord> {
  const app = await store.getApp(id);
  if (!app) throw new UsageError(`no app ${id} (meso apps lists them)`);
  return app;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function formatApps(apps: readonly AppRecord[], instances: readonly Instance[], now: number): string {
  if (apps.length === 0) return 'no apps: deploy one with `meso app deploy --name web --cmd ...`\n';
  return formatTable(
    ['APP', 'HEALTHY', 'VERSION', 'DEPLOYMENT', 'CPUS', 'MEM', 'ROLE', 'CMD'],
    apps.map((a) => {
      const s = appStatus(a, instances, now);
      const cmd = a.def.cmd.length > 40 ? `${a.def.cmd.slice(0, 37)}...` : a.def.cmd;
      return [
        a.def.id,
        `${s.ready}/${s.wanted}`,
        a.version,
        s.state + (s.oldVersions > 0 ? ` (${s.oldVersions} old)` : ''),
        String(a.def.cpus),
        String(a.def.mem),
        a.def.role,
        cmd,
      ];
    }),
  );
}

export function formatInstances(app: AppRecord, instances: readonly Instance[]): string {
  const mine = instances.filter((i) => i.appId === app.def.id);
  if (mine.length === 0) return 'no instances\n';
  const hc = app.def.healthCheck !== undefined;
  return formatTable(
    ['TASK', 'HOST', 'PORTS', 'STATE', 'HEALTHY', 'VERSION'],
    mine.map((i) => [
      i.taskId,
      i.hostname,
      i.ports.join(',') || '-',
      i.phase,
      i.phase === 'killing' ? '-' : isReady(i, hc) ? 'yes' : i.healthy === false ? 'no' : '-',
      i.version === app.version ? i.version : `${i.version} (old)`,
    ]),
  );
}

/** Writes a new spec of an app and tells the framework. */
async function change(
  c: ServicesConnection,
  io: CliIo,
  app: AppRecord | undefined,
  spec: { def: AppDefinition; version: string; suspended: boolean; deployedAt: number },
  what: string,
): Promise<number> {
  await c.store.putApp(spec, app ? { version: app.version } : 'absent');
  await c.notify(spec.def.id);
  io.stdout.write(line(`${what}: ${spec.def.id} version ${spec.version}`));
  return EXIT.OK;
}

export function registerAppCommands(
  program: Command,
  deps: () => AppsDeps,
  done: (code: number) => void,
): void {
  const run = frameworkCommand(deps, done, isUsage);
  /** Reads app `id` and deploys what `next` makes of it (scale, restart, suspend). */
  const rewrite = (
    id: string,
    what: string,
    next: (a: AppRecord, now: number) => { def: AppDefinition; version: string; suspended: boolean },
  ) =>
    run(async (c, d, now) => {
      const a = await mustGet(c.store, id);
      return change(c, d.io, a, { ...next(a, now), deployedAt: now }, what);
    })();
  const versionAt = (now: number) => new Date(now).toISOString();

  program
    .command('apps')
    .description(
      'List the apps of the services framework: healthy/wanted instances, version, deployment state.',
    )
    .action(async () =>
      run(async (c, d, now) => {
        const [apps, instances] = await Promise.all([c.store.listApps(), c.store.listInstances()]);
        d.io.stdout.write(formatApps(apps, instances, now));
        return EXIT.OK;
      })(),
    );

  const app = program
    .command('app')
    .description('Long-running apps kept running by the services framework (as Marathon).');

  app
    .command('deploy')
    .description(
      'Create or change an app from a JSON definition and/or flags; a change rolls out as a new version.',
    )
    .argument(
      '[file]',
      'an app definition (JSON, Marathon-like: id, cmd, instances, cpus, mem, ports, constraints, healthCheck, upgradeStrategy)',
    )
    .option('--name <id>', 'the app id')
    .option('--instances <n>', 'instances to keep running')
    .option('--cpus <n>', 'CPUs per instance', parseAmount)
    .option('--mem <mb>', 'memory per instance, MB', parseAmount)
    .option('--disk <mb>', 'disk per instance, MB', parseAmount)
    .option('--ports <n>', 'host ports per instance (PORT0..PORTn-1)')
    .option('--cmd <command>', 'the shell command')
    .option('--role <role>', 'the role whose resources the app uses')
    .option(
      '--constraint <field:OP[:value]>',
      'a placement constraint (repeatable), e.g. hostname:UNIQUE',
      collect,
      [] as string[],
    )
    .option('-e, --env <NAME=value>', 'an environment variable (repeatable)', collect, [] as string[])
    .action(async (file: string | undefined, o: DeployOptions) =>
      run(async (c, d, now) => {
        const def = definitionFromArgs(file, o);
        const existing = await c.store.getApp(def.id);
        if (existing && same(existing.def, def) && !existing.suspended) {
          d.io.stdout.write(line(`no change: ${def.id} is at version ${existing.version}`));
          return EXIT.OK;
        }
        return change(
          c,
          d.io,
          existing,
          { def, version: versionAt(now), suspended: false, deployedAt: now },
          existing ? 'deploying' : 'created',
        );
      })(),
    );

  app
    .command('show')
    .description('An app: its definition, status and instances.')
    .argument('<id>')
    .option('--json', 'the definition as JSON only')
    .action(async (id: string, o: { json?: boolean }) =>
      run(async (c, d, now) => {
        const a = await mustGet(c.store, id);
        if (o.json) {
          d.io.stdout.write(line(JSON.stringify(a.def, null, 2)));
          return EXIT.OK;
        }
        const instances = await c.store.listInstances();
        const s = appStatus(a, instances, now);
        d.io.stdout.write(
          line(
            [
              `app ${a.def.id}: ${s.ready}/${s.wanted} healthy, ${s.state}${a.suspended ? ' (suspended)' : ''}`,
              ...(s.reason ? [`stuck:    ${s.reason}`] : []),
              `version:  ${a.version}`,
              `command:  ${a.def.cmd}`,
              `per instance: cpus ${a.def.cpus}, mem ${a.def.mem}${a.def.ports ? `, ${a.def.ports} port(s)` : ''}; role ${a.def.role}`,
              ...(a.def.constraints.length
                ? [`constraints: ${a.def.constraints.map((k) => k.join(':')).join(', ')}`]
                : []),
              ...(a.backoff.failures > 0
                ? [
                    `backoff:  ${a.backoff.failures} failure(s) in a row; next launch ${a.backoff.delayUntil > now ? `in ${Math.ceil((a.backoff.delayUntil - now) / 1000)} s` : 'now'}`,
                  ]
                : []),
            ].join('\n'),
          ),
        );
        d.io.stdout.write(formatInstances(a, instances));
        return EXIT.OK;
      })(),
    );

  app
    .command('scale')
    .description('Change the number of instances (no new version: running instances stay).')
    .argument('<id>')
    .argument('<instances>', 'instances to keep running', (v) => {
      if (!/^\d+$/.test(v) || Number(v) > 1000) throw new InvalidArgumentError(`expected 0-1000, got "${v}"`);
      return Number(v);
    })
    .action(async (id: string, n: number) =>
      rewrite(id, `scaling to ${n}`, (a) => ({
        def: { ...a.def, instances: n },
        version: a.version,
        suspended: false,
      })),
    );

  app
    .command('restart')
    .description('Replace every instance, rolling, as the upgrade strategy allows.')
    .argument('<id>')
    .action(async (id: string) =>
      rewrite(id, 'restarting', (a, now) => ({
        def: a.def,
        version: versionAt(now),
        suspended: a.suspended,
      })),
    );

  app
    .command('suspend')
    .description('Stop all instances, keeping the app (meso app scale <id> <n> resumes it).')
    .argument('<id>')
    .action(async (id: string) =>
      rewrite(id, 'suspending', (a) => ({ def: a.def, version: a.version, suspended: true })),
    );

  app
    .command('delete')
    .description('Delete an app: its instances are killed.')
    .argument('<id>')
    .action(async (id: string) =>
      run(async (c, d) => {
        await mustGet(c.store, id);
        await c.store.deleteApp(id);
        await c.notify(id);
        d.io.stdout.write(line(`deleted ${id}; its instances are being killed`));
        return EXIT.OK;
      })(),
    );

  app
    .command('endpoints')
    .description('host:port of each healthy instance (one a line; every port of it, with --all-ports).')
    .argument('<id>')
    .option('--all-ports', 'all ports of each instance, comma-separated')
    .action(async (id: string, o: { allPorts?: boolean }) =>
      run(async (c, d) => {
        const a = await mustGet(c.store, id);
        const hc = a.def.healthCheck !== undefined;
        const ready = (await c.store.listInstances()).filter((i) => i.appId === id && isReady(i, hc));
        for (const i of ready) {
          const ports = o.allPorts ? i.ports : i.ports.slice(0, 1);
          d.io.stdout.write(
            line(ports.length === 0 ? i.hostname : ports.map((p) => `${i.hostname}:${p}`).join(',')),
          );
        }
        return EXIT.OK;
      })(),
    );

  app
    .command('versions')
    .description('The versions of an app, newest first.')
    .argument('<id>')
    .action(async (id: string) =>
      run(async (c, d) => {
        const a = await mustGet(c.store, id);
        const versions = await c.store.listVersions(id);
        d.io.stdout.write(
          formatTable(
            ['VERSION', 'INSTANCES', 'CPUS', 'MEM', 'CMD'],
            versions.map((v) => [
              v.version + (v.version === a.version ? ' (current)' : ''),
              String(v.def.instances),
              String(v.def.cpus),
              String(v.def.mem),
              v.def.cmd.length > 40 ? `${v.def.cmd.slice(0, 37)}...` : v.def.cmd,
            ]),
          ),
        );
        return EXIT.OK;
      })(),
    );

  app
    .command('rollback')
    .description('Deploy an earlier version again (default: the one before the current).')
    .argument('<id>')
    .argument('[version]', 'the version to go back to (meso app versions lists them)')
    .action(async (id: string, version: string | undefined) =>
      run(async (c, d, now) => {
        const a = await mustGet(c.store, id);
        const versions = await c.store.listVersions(id);
        const target = version
          ? versions.find((v) => v.version === version)
          : versions.find((v) => v.version < a.version && !same(v.def, a.def));
        if (!target)
          throw new UsageError(
            version ? `app ${id} has no version ${version}` : `app ${id} has no earlier version`,
          );
        return change(
          c,
          d.io,
          a,
          { def: target.def, version: versionAt(now), suspended: false, deployedAt: now },
          `rolling back to ${target.version}`,
        );
      })(),
    );
}
