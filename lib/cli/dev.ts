/**
 * `meso dev`: starts the local stack (emulators, control plane, agents) in the foreground, as
 * `npm start` does. The stack itself is `lib/local/dev.ts`; it is imported only when this
 * command runs, so the other commands do not load it.
 */
import type { Command } from 'commander';
import { ConfigError } from '../config/cluster.ts';
import type { DevOptions } from '../local/dev.ts';
import { parseCount, parseResourceSpec } from './args.ts';
import { type CliIo, EXIT, line } from './io.ts';

/** What `meso dev` needs of `lib/local/dev.ts`. */
export interface DevModule {
  runDev(opts: DevOptions): Promise<void>;
}

export interface DevDeps {
  io: CliIo;
  loadDevModule: () => Promise<DevModule>;
}

export interface DevCliOptions {
  agents?: number;
  workDir?: string;
  resources?: string;
  persist?: boolean;
  prefix?: string;
  verbose?: boolean;
}

/** Loaded on demand: the emulators and the control plane are heavy to import. */
export async function loadDevModule(): Promise<DevModule> {
  return import('../local/dev.ts');
}

/** Runs the local stack until it stops (Ctrl-C); returns the exit status. */
export async function devCommand(options: DevCliOptions, deps: DevDeps): Promise<number> {
  const { io } = deps;
  let dev: DevModule;
  try {
    dev = await deps.loadDevModule();
  } catch (e) {
    io.stderr.write(
      line(`meso dev: cannot load the local stack: ${e instanceof Error ? e.message : String(e)}`),
    );
    return EXIT.FAILED;
  }
  const opts: DevOptions = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  try {
    await dev.runDev(opts);
    return EXIT.OK;
  } catch (e) {
    io.stderr.write(line(`meso dev: ${e instanceof Error ? e.message : String(e)}`));
    return e instanceof ConfigError ? EXIT.USAGE : EXIT.FAILED;
  }
}

/** Adds `meso dev` to the program; its action hands its exit status to `done`. */
export function registerDevCommand(
  program: Command,
  deps: () => DevDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('dev')
    .description(
      'Start a local Meso cluster (DynamoDB Local, an SQS emulator, the control plane and agents) and keep ' +
        'it running until Ctrl-C; other terminals find it through .meso/dev.json.',
    )
    .option(
      '--agents <n>',
      "how many local agents to start (default 1); they share the machine's (or --resources') resources and ports",
      parseCount,
    )
    .option('--work-dir <dir>', "where agents keep their ids and tasks' sandboxes (default .meso/agent-<n>)")
    .option(
      '--resources <spec>',
      "override the agents' resources, e.g. 'cpus:2;mem:2048;ports:[31000-32000]'",
      parseResourceSpec,
    )
    .option('--persist', "keep the emulators' state in .meso/data across restarts")
    .option('--prefix <prefix>', 'resource-name prefix (default meso)')
    .option('--verbose', "print the control plane's own log lines")
    .action(async (options: DevCliOptions) => {
      done(await devCommand(options, deps()));
    });
}
