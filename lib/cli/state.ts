/**
 * The operator's listings and actions: `meso state` (one snapshot: agents, frameworks, tasks,
 * roles, offers), `meso frameworks`, `meso tasks` (filtered), `meso kill <task>` and
 * `meso teardown <framework>`. Reads and actions are lib/control/operator-state.ts and
 * lib/control/operator-actions.ts; this is the shell around them. Tables and `--json` use the
 * same units: cpus as decimals, mem and disk in MB.
 */
import type { Command } from 'commander';
import type { ControlDeps } from '../control/deps.ts';
import { OperatorError } from '../control/operator.ts';
import {
  ForbiddenError,
  NotFoundError,
  operatorKill,
  operatorTeardown,
} from '../control/operator-actions.ts';
import {
  type ClusterState,
  type FrameworkView,
  filterTasks,
  normalizeState,
  parseDuration,
  readClusterState,
  type TaskFilter,
  type TaskView,
} from '../control/operator-state.ts';
import { format, fromWire, type WireResources } from '../core/resources.ts';
import { ago } from './agents.ts';
import { type CliIo, EXIT, line, UsageError, withConnection } from './io.ts';
import type { OperatorCliDeps } from './operator.ts';
import { formatTable } from './table.ts';

/** The principal the CLI acts as in ACL checks: `MESO_PRINCIPAL`, else `operator`. */
export const cliPrincipal = (): string => process.env.MESO_PRINCIPAL || 'operator';

const res = (w: WireResources): string => format(fromWire(w));
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function run(deps: OperatorCliDeps, action: (c: ControlDeps, io: CliIo) => Promise<number>): Promise<number> {
  return withConnection(
    deps.io,
    deps.connect,
    (c) => action(c.deps, deps.io),
    (e): e is Error =>
      e instanceof UsageError || (e instanceof OperatorError && !(e instanceof NotFoundError)),
  );
}

export function formatFrameworksTable(fws: readonly FrameworkView[], now: number): string {
  if (fws.length === 0) return 'no frameworks have subscribed\n';
  return formatTable(
    [
      'FRAMEWORK',
      'NAME',
      'STATUS',
      'ROLES',
      'SUPPRESSED',
      'TASKS',
      'SHARE',
      'USED',
      'OFFERED',
      'FAILOVER',
      'SEEN',
    ],
    fws.map((f) => [
      f.frameworkId,
      f.name,
      f.status,
      f.roles.join(',') || '*',
      f.suppressedRoles.join(',') || '-',
      String(f.activeTasks),
      pct(f.share),
      res(f.used),
      res(f.offered),
      `${f.failoverTimeoutSeconds}s`,
      f.lastSeenAt !== undefined ? `${ago(now - f.lastSeenAt)} ago` : '-',
    ]),
  );
}

export function formatTasksTable(tasks: readonly TaskView[], now: number): string {
  if (tasks.length === 0) return 'no tasks match\n';
  return formatTable(
    ['TASK', 'FRAMEWORK', 'AGENT', 'ROLE', 'STATE', 'REASON', 'EXIT', 'RESOURCES', 'AGE', 'UPDATED'],
    tasks.map((t) => [
      t.taskId,
      t.frameworkId,
      t.agentId,
      t.role ?? '*',
      t.state.replace(/^TASK_/, ''),
      t.reason ?? '-',
      t.exitCode !== undefined ? String(t.exitCode) : '-',
      res(t.resources),
      ago(now - t.createdAt),
      `${ago(now - t.updatedAt)} ago`,
    ]),
  );
}

export interface TasksCliOptions {
  state?: string;
  framework?: string;
  agent?: string;
  role?: string;
  since?: string;
  json?: boolean;
}

/** The filter `meso tasks` asks for; a bad --since is a usage error. */
export function taskFilterOf(o: TasksCliOptions, now: number): TaskFilter {
  let since: number | undefined;
  if (o.since !== undefined) {
    const ms = parseDuration(o.since);
    if (ms === undefined)
      throw new UsageError(`--since wants a duration like 90s, 15m, 1h or 2d, got "${o.since}"`);
    since = now - ms;
  }
  return {
    ...(o.state ? { state: normalizeState(o.state) } : {}),
    ...(o.framework ? { framework: o.framework } : {}),
    ...(o.agent ? { agent: o.agent } : {}),
    ...(o.role ? { role: o.role } : {}),
    ...(since !== undefined ? { since } : {}),
  };
}

const json = (io: CliIo, v: unknown) => io.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

function printState(io: CliIo, s: ClusterState): void {
  const t = s.totals;
  io.stdout.write(
    `cluster: ${s.agents.length} agent(s), ${s.frameworks.length} framework(s), ${s.tasks.length} task(s), ${s.offers.length} offer(s) outstanding\n` +
      `  total   ${res(t.total)}\n  used    ${res(t.used)}\n  offered ${res(t.offered)}\n  idle    ${res(t.idle)}\n`,
  );
}

/** Adds `meso state`, `meso frameworks`, `meso tasks`, `meso kill` and `meso teardown`. */
export function registerStateCommands(
  program: Command,
  deps: () => OperatorCliDeps,
  done: (code: number) => void,
): void {
  program
    .command('state')
    .description(
      'One snapshot of the cluster: totals, agents, frameworks, tasks, roles and outstanding offers.',
    )
    .option('--json', 'the whole snapshot as JSON (what the operator API serves at /api/state)')
    .action(async (o: { json?: boolean }) => {
      const d = deps();
      done(
        await run(d, async (c, io) => {
          const s = await readClusterState(c);
          if (o.json) json(io, s);
          else printState(io, s);
          return EXIT.OK;
        }),
      );
    });

  program
    .command('frameworks')
    .description(
      'List the frameworks: status, roles, suppressed roles, tasks, dominant share, failover timeout.',
    )
    .option('--json', 'as JSON')
    .action(async (o: { json?: boolean }) => {
      const d = deps();
      done(
        await run(d, async (c, io) => {
          const s = await readClusterState(c);
          if (o.json) json(io, s.frameworks);
          else io.stdout.write(formatFrameworksTable(s.frameworks, s.at));
          return EXIT.OK;
        }),
      );
    });

  program
    .command('tasks')
    .description('List tasks, newest update first; finished ones stay until the table expires them.')
    .option('--state <state>', 'only in this state (RUNNING, TASK_FAILED, ...)')
    .option('--framework <id>', 'only of this framework')
    .option('--agent <id>', 'only on this agent')
    .option('--role <role>', 'only in this role')
    .option('--since <duration>', 'only updated within this long (90s, 15m, 1h, 2d)')
    .option('--json', 'as JSON')
    .action(async (o: TasksCliOptions) => {
      const d = deps();
      done(
        await run(d, async (c, io) => {
          const filter = taskFilterOf(o, c.clock.now());
          const s = await readClusterState(c);
          const tasks = filterTasks(s.tasks, filter);
          if (o.json) json(io, tasks);
          else io.stdout.write(formatTasksTable(tasks, s.at));
          return EXIT.OK;
        }),
      );
    });

  program
    .command('kill')
    .description("Kill a task (an operator's KILL): its agent kills it and its framework sees TASK_KILLED.")
    .argument('<task-id>')
    .option('--framework <id>', 'the framework that owns it (needed when two frameworks use the id)')
    .action(async (taskId: string, o: { framework?: string }) => {
      const d = deps();
      done(
        await run(d, async (c, io) =>
          forbiddenIsFailure(io, async () => {
            const r = await operatorKill(c, { principal: cliPrincipal() }, taskId, o.framework);
            io.stdout.write(
              line(
                r.outcome === 'already-ended'
                  ? `task ${taskId} already ended (${r.task.state})`
                  : `task ${taskId} of framework ${r.task.frameworkId}: kill sent to agent ${r.task.agentId}`,
              ),
            );
            return EXIT.OK;
          }),
        ),
      );
    });

  program
    .command('teardown')
    .description(
      'Tear a framework down: it is removed, its offers rescinded, its tasks killed, its id refused.',
    )
    .argument('<framework-id>')
    .action(async (frameworkId: string) => {
      const d = deps();
      done(
        await run(d, async (c, io) =>
          forbiddenIsFailure(io, async () => {
            const r = await operatorTeardown(c, { principal: cliPrincipal() }, frameworkId);
            io.stdout.write(
              line(
                r.outcome === 'already-removed'
                  ? `framework ${frameworkId} was already torn down`
                  : `framework ${frameworkId} torn down; ${r.tasks} task${r.tasks === 1 ? '' : 's'} being killed`,
              ),
            );
            return EXIT.OK;
          }),
        ),
      );
    });
}

async function forbiddenIsFailure(io: CliIo, f: () => Promise<number>): Promise<number> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof ForbiddenError) && !(e instanceof NotFoundError)) throw e;
    io.stderr.write(line(`meso: ${e.message}`));
    return EXIT.FAILED;
  }
}
