/**
 * The `meso` program: every command, wired to the real process, cluster and SQS unless told
 * otherwise (tests pass their own dependencies).
 */
import { Command, CommanderError } from 'commander';
import { createSqsClient } from '../adapters/sqs.ts';
import { loadClusterConfig } from '../config/cluster.ts';
import { runTask } from '../sdk/run-task.ts';
import { registerAclCommand } from './acl.ts';
import { type AgentGoneDeps, registerAgentGoneCommand } from './agent-gone.ts';
import { type ClusterStoreDeps, openClusterStore, registerAgentsCommand } from './agents.ts';
import { type AppsDeps, openServices, registerAppCommands } from './apps.ts';
import { type DevDeps, loadDevModule, registerDevCommand } from './dev.ts';
import { type DlqDeps, registerDlqCommand } from './dlq.ts';
import { type CliIo, EXIT, processIo } from './io.ts';
import { type JobsCliDeps, openJobs, registerJobCommands } from './jobs.ts';
import { type LogsDeps, localWorkDirs, registerLogsCommand } from './logs.ts';
import { connectToCluster, type OperatorCliDeps, registerOperatorCommands } from './operator.ts';
import { type RunDeps, registerRunCommand } from './run.ts';
import { readableAgents } from './run-fit.ts';
import { registerStateCommands } from './state.ts';
import { registerTaskCommand } from './task.ts';
import { defaultUiDeps, registerUiCommand, type UiDeps } from './ui.ts';

export interface ProgramDeps {
  io?: CliIo;
  run?: Partial<Omit<RunDeps, 'io'>>;
  dev?: Partial<Omit<DevDeps, 'io'>>;
  dlq?: Partial<Omit<DlqDeps, 'io'>>;
  agentGone?: Partial<Omit<AgentGoneDeps, 'io'>>;
  operator?: Partial<Omit<OperatorCliDeps, 'io'>>;
  /** `meso agents` and `meso task`. */
  store?: Partial<Omit<ClusterStoreDeps, 'io'>>;
  logs?: Partial<Omit<LogsDeps, 'io'>>;
  ui?: Partial<Omit<UiDeps, 'io'>>;
  /** `meso app` and `meso apps`. */
  apps?: Partial<Omit<AppsDeps, 'io'>>;
  /** `meso job` and `meso jobs`. */
  jobs?: Partial<Omit<JobsCliDeps, 'io'>>;
}

const VERSION = '0.1.0';

/** Builds `meso`; each command's action hands its exit status to `done`. */
export function buildProgram(deps: ProgramDeps = {}, done: (code: number) => void = () => {}): Command {
  const io = deps.io ?? processIo;
  const program = new Command('meso')
    .description('Meso: Apache Mesos as a serverless control plane (Lambda + DynamoDB + SQS).')
    .version(VERSION)
    // Lets `meso run` pass options after the command through to the task (meso run ls -l).
    .enablePositionalOptions()
    .showHelpAfterError('(meso help <command> shows its options)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    // Parse errors throw instead of exiting; `runProgram` turns them into exit status 2.
    .exitOverride();
  registerRunCommand(
    program,
    () => ({
      io,
      loadConfig: () => loadClusterConfig(),
      createSqsClient,
      runTask,
      listAgents: readableAgents,
      ...deps.run,
    }),
    done,
  );
  registerDevCommand(program, () => ({ io, loadDevModule: () => loadDevModule(), ...deps.dev }), done);
  registerDlqCommand(
    program,
    () => ({ io, loadConfig: () => loadClusterConfig(), createSqsClient, ...deps.dlq }),
    done,
  );
  registerAgentGoneCommand(
    program,
    () => ({ io, loadConfig: () => loadClusterConfig(), ...deps.agentGone }),
    done,
  );
  registerOperatorCommands(
    program,
    () => ({ io, connect: () => connectToCluster(), ...deps.operator }),
    done,
  );
  registerStateCommands(program, () => ({ io, connect: () => connectToCluster(), ...deps.operator }), done);
  const storeDeps = () => ({ io, openStore: () => openClusterStore(), ...deps.store });
  registerAgentsCommand(program, storeDeps, done);
  registerTaskCommand(program, storeDeps, done);
  registerAclCommand(program, storeDeps, done);
  registerLogsCommand(program, () => ({ io, workDirs: () => localWorkDirs(), ...deps.logs }), done);
  registerUiCommand(program, () => ({ ...defaultUiDeps(io), ...deps.ui }), done);
  registerAppCommands(program, () => ({ io, open: () => openServices(), ...deps.apps }), done);
  registerJobCommands(program, () => ({ io, open: () => openJobs(), ...deps.jobs }), done);
  return program;
}

/**
 * Parses `argv` (the user's arguments, without `node meso`) and runs the command; returns the
 * exit status: the command's, 0 for help and version, 2 for a usage error.
 *
 * @example
 * ```ts
 * process.exitCode = await runProgram(process.argv.slice(2));
 * ```
 */
export async function runProgram(argv: readonly string[], deps: ProgramDeps = {}): Promise<number> {
  let code: number = EXIT.OK;
  const program = buildProgram(deps, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    throw e;
  }
  return code;
}
