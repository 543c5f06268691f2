/**
 * The records the control plane keeps, as the core sees them. The agent record is the unit of
 * consistency: its offers and tasks are what is spent of its total, and every change to it is a
 * conditional write on `version`, so no two decisions can spend the same resources.
 */

import type { z } from 'zod';
import type { Attributes, TaskInfo, TaskState, TaskStatus } from '../protocol/index.ts';
import type { Resources } from './resources.ts';

export type AgentStatus = 'ACTIVE' | 'UNREACHABLE' | 'GONE';

export interface OfferRecord {
  readonly offerId: string;
  readonly frameworkId: string;
  readonly resources: Resources;
  /** ms since epoch */
  readonly expiresAt: number;
}

export interface AgentTaskRecord {
  readonly frameworkId: string;
  readonly resources: Resources;
}

export interface AgentRecord {
  readonly agentId: string;
  /** The SQS SenderId that registered this agent; calls for it from anyone else are rejected. */
  readonly principal: string;
  readonly hostname: string;
  readonly queueUrl: string;
  readonly total: Resources;
  readonly attributes: z.infer<typeof Attributes>;
  readonly status: AgentStatus;
  readonly offers: Readonly<Record<string, OfferRecord>>;
  readonly tasks: Readonly<Record<string, AgentTaskRecord>>;
  readonly registeredAt: number;
  readonly lastSeenAt: number;
  readonly shard: number;
  readonly version: number;
}

export type FrameworkStatus = 'ACTIVE' | 'TORN_DOWN';

/** A refusal filter: do not offer this agent to this framework until `until` unless more than `resources` is free. */
export interface FilterRecord {
  readonly until: number;
  readonly resources: Resources;
}

export interface FrameworkRecord {
  readonly frameworkId: string;
  readonly principal: string;
  readonly name: string;
  readonly user?: string;
  readonly roles: readonly string[];
  readonly queueUrl: string;
  readonly status: FrameworkStatus;
  readonly failoverTimeoutSeconds: number;
  readonly partitionAware: boolean;
  readonly filters: Readonly<Record<string, FilterRecord>>;
  readonly subscribedAt: number;
  readonly version: number;
}

export interface TaskRecord {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly agentId: string;
  readonly offerId: string;
  readonly info: TaskInfo;
  readonly resources: Resources;
  readonly state: TaskState;
  /** The latest status, as forwarded to the framework. */
  readonly status: TaskStatus;
  /** uuids of agent updates already applied (bounded), so a redelivered update changes nothing. */
  readonly seenUuids: readonly string[];
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly version: number;
}
