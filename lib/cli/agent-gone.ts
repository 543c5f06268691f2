/**
 * `meso mark-agent-gone <agentId>`: Mesos's MARK_AGENT_GONE operator call. The agent becomes
 * GONE: its tasks are TASK_GONE_BY_OPERATOR (TASK_LOST for frameworks that are not
 * partition-aware), a live agent is told to kill them, and the agent id may never register again.
 * Use it when a node is known to be dead for good, so its tasks need not wait out the unreachable
 * timeout. It runs the control plane's own code (lib/control/liveness.ts) with the operator's
 * credentials against the deployment's table and queues.
 */
import type { Command } from 'commander';
import { type ClusterConfig, ConfigError } from '../config/cluster.ts';
import { type ControlDeps, DEFAULT_CONTROL_CONFIG } from '../control/deps.ts';
import { markGone } from '../control/liveness.ts';
import { authorizeOperator } from '../control/operator.ts';
import { getAgent } from '../control/records/agents.ts';
import { type CliIo, EXIT, line } from './io.ts';
import { connectToCluster } from './operator.ts';

export interface AgentGoneDeps {
  io: CliIo;
  loadConfig: () => ClusterConfig;
  /** Builds the control plane's dependencies for a cluster (tests pass the emulators'). */
  controlDeps?: (config: ClusterConfig) => {
    deps: ControlDeps;
    close: () => void;
    principal?: () => Promise<string>;
  };
}

/** The operator's connection (`connectToCluster`), with warnings and errors on stderr. */
function controlDepsFor(config: ClusterConfig, io: CliIo): ReturnType<typeof connectToCluster> {
  const log = (level: string) => (message: string, extra?: Record<string, unknown>) =>
    io.stderr.write(line(`meso: ${level}: ${message}${extra ? ` ${JSON.stringify(extra)}` : ''}`));
  return connectToCluster(config, {
    log: { info: () => {}, warn: log('warning'), error: log('error') },
    shards: DEFAULT_CONTROL_CONFIG.shards,
  });
}

export async function markAgentGone(agentId: string, deps: AgentGoneDeps): Promise<number> {
  let config: ClusterConfig;
  try {
    config = deps.loadConfig();
  } catch (e) {
    deps.io.stderr.write(line(`meso mark-agent-gone: ${(e as Error).message}`));
    return e instanceof ConfigError ? EXIT.USAGE : EXIT.FAILED;
  }
  const {
    deps: control,
    close,
    principal,
  } = (deps.controlDeps ?? ((c) => controlDepsFor(c, deps.io)))(config);
  try {
    await authorizeOperator(control, await principal?.(), 'MARK_AGENT_GONE');
    const before = await getAgent(control.store, agentId);
    const outcome = await markGone(control, agentId, { byOperator: true });
    if (outcome === 'unknown') {
      deps.io.stderr.write(line(`meso mark-agent-gone: no agent ${agentId}`));
      return EXIT.FAILED;
    }
    if (outcome === 'already-gone') {
      deps.io.stdout.write(line(`agent ${agentId} was already gone`));
      return EXIT.OK;
    }
    const tasks = Object.keys(before?.tasks ?? {}).length;
    deps.io.stdout.write(
      line(
        `agent ${agentId} (${before?.hostname ?? '?'}) is gone; ${tasks} task${tasks === 1 ? '' : 's'} marked gone`,
      ),
    );
    return EXIT.OK;
  } catch (e) {
    deps.io.stderr.write(line(`meso mark-agent-gone: ${(e as Error).message}`));
    return EXIT.FAILED;
  } finally {
    close();
  }
}

export function registerAgentGoneCommand(
  program: Command,
  deps: () => AgentGoneDeps,
  done: (code: number) => void,
): Command {
  return program
    .command('mark-agent-gone')
    .description(
      "Mark an agent gone for good (Mesos's MARK_AGENT_GONE): its tasks become TASK_GONE_BY_OPERATOR and it may never register again.",
    )
    .argument('<agentId>', 'the agent id')
    .action(async (agentId: string) => done(await markAgentGone(agentId, deps())));
}
