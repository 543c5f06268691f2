/** The events an Agent emits (for tests, metrics and the CLI), raised by its session and its task table. */
import type { EventEmitter } from 'node:events';
import type { AgentCommand } from '../lib/protocol/agent.ts';
import type { TaskStatus } from '../lib/protocol/common.ts';
import type { TaskTermination } from './executor.ts';

export interface AgentEvents {
  /** REGISTERED arrived the first time; the heartbeat interval now in use. */
  registered: [heartbeatIntervalMs: number];
  /** A REGISTER was sent (attempt 0 = first). */
  registerSent: [attempt: number];
  heartbeatSent: [];
  /** A valid command arrived (before it is handled). */
  command: [command: AgentCommand];
  /** A malformed command was logged and deleted. */
  rejected: [error: string, body: string];
  statusSent: [status: TaskStatus, attempt: number];
  taskStarted: [frameworkId: string, taskId: string, pid: number];
  taskTerminated: [frameworkId: string, taskId: string, termination: TaskTermination];
  /** A task's health changed (health checks). */
  taskHealth: [frameworkId: string, taskId: string, healthy: boolean];
  /** Checkpointed tasks were picked up at start (before REGISTER). */
  recovered: [running: number, ended: number];
}

/** What the session and the task table need of the Agent's emitter. */
export type AgentEmitter = Pick<EventEmitter<AgentEvents>, 'emit'>;
