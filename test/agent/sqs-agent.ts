/**
 * Shared scaffolding for tests that run an Agent against the SQS emulator with the test playing
 * the control plane: start agents, register them, launch tasks, and follow a task's updates
 * (acknowledging each, as the registry would) until it ends.
 */
import { once } from 'node:events';
import { DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { Agent, type AgentOptions } from '../../agent/agent.ts';
import { silentLog, stderrLog } from '../../agent/log.ts';
import { createSqsHttpClient, type SqsHttpClient } from '../../lib/adapters/sqs-http.ts';
import { parse } from '../../lib/core/resources.ts';
import { isTerminal } from '../../lib/core/task-state.ts';
import type { TaskInfo, TaskStatus } from '../../lib/protocol/common.ts';
import type { TestCluster } from '../setup/cluster.ts';
import type { TestControlPlane } from './control-plane.ts';

export const FW = 'fw-1';

export class AgentFixture {
  readonly agents: { agent: Agent; sqs: SqsHttpClient }[] = [];

  constructor(
    readonly cluster: TestCluster,
    readonly control: TestControlPlane,
  ) {}

  /** Starts an agent and answers its REGISTER. */
  async start(workDir: string, extra: Partial<AgentOptions> = {}): Promise<Agent> {
    const sqs = createSqsHttpClient(this.cluster.config.aws);
    const agent = new Agent({
      sqs,
      agentCallsQueueUrl: this.cluster.config.queues.agentCalls,
      prefix: this.cluster.config.prefix,
      workDir,
      resources: parse('cpus:2;mem:1024;ports:[31000-31010]'),
      hostname: 'node-1',
      registerRetryIntervalMs: 250,
      statusRetryIntervalMs: 60_000,
      pollWaitSeconds: 1,
      monitorIntervalMs: 100,
      // MESO_AGENT_TEST_LOG=1: the agent's log on stderr.
      log: process.env.MESO_AGENT_TEST_LOG ? stderrLog('debug') : silentLog,
      ...extra,
    });
    this.agents.push({ agent, sqs });
    await agent.start();
    const done = once(agent, 'registered');
    await this.control.command(agent.queueUrl, {
      v: 1,
      type: 'REGISTERED',
      agentId: agent.agentId,
      heartbeatIntervalSeconds: 15,
    });
    await done;
    return agent;
  }

  launch(a: Agent, task: Omit<TaskInfo, 'agentId' | 'resources'> & Partial<TaskInfo>): Promise<void> {
    return this.control.command(a.queueUrl, {
      v: 1,
      type: 'LAUNCH',
      frameworkId: FW,
      task: { agentId: a.agentId, resources: { cpus: 0.1, mem: 64 }, ...task },
    });
  }

  ack(a: Agent, s: TaskStatus): Promise<void> {
    return this.control.command(a.queueUrl, {
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: s.frameworkId,
      taskId: s.taskId,
      uuid: s.uuid!,
    });
  }

  /** The next update of a task (acknowledged). */
  async next(a: Agent, taskId: string): Promise<TaskStatus> {
    const { body } = await this.control.take(a.agentId, 'STATUS_UPDATE', (c) => c.status.taskId === taskId);
    await this.ack(a, body.status);
    return body.status;
  }

  /** A task's updates, each acknowledged, until (and with) its terminal one. */
  async follow(a: Agent, taskId: string, onUpdate?: (s: TaskStatus) => void): Promise<TaskStatus[]> {
    const seen: TaskStatus[] = [];
    for (;;) {
      const s = await this.next(a, taskId);
      seen.push(s);
      onUpdate?.(s);
      if (isTerminal(s.state)) return seen;
    }
  }

  /** Stops every agent (killing its tasks) and deletes its queue. */
  async stopAll(): Promise<void> {
    for (const { agent, sqs } of this.agents.splice(0)) {
      await agent.stop({ killTasks: true, gracePeriodMs: 0 });
      try {
        await this.cluster.sqs.send(new DeleteQueueCommand({ QueueUrl: agent.queueUrl }));
      } catch {
        // Never started.
      }
      sqs.close();
    }
  }
}
