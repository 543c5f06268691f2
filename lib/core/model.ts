/**
 * The records the control plane keeps, as the core sees them. The agent record is the unit of
 * consistency: its offers and tasks are what is spent of its total, and every change to it is a
 * conditional write on `version`, so no two decisions can spend the same resources.
 */

import type { z } from 'zod';
import type { Attributes, TaskState, TaskStatus } from '../protocol/index.ts';
import type { Resources } from './resources.ts';
import type { Quantities } from './roles.ts';
import type { RowStatus, RowTaskInfo } from './task-row.ts';

export type OperatorAgentStatus = 'DRAINING' | 'DEACTIVATED';

export type AgentStatus = 'ACTIVE' | 'UNREACHABLE' | 'GONE';

export interface OfferRecord {
  readonly offerId: string;
  readonly frameworkId: string;
  /** The framework role the offer is allocated to (absent on offers made before roles: `*`). */
  readonly role?: string;
  readonly resources: Resources;
  /** ms since epoch */
  readonly expiresAt: number;
}

/** A task's charge in its agent's ledger, kept under its `ledgerKey` (lib/core/ledger.ts). */
export interface AgentTaskRecord {
  readonly frameworkId: string;
  /** Absent in records written before the ledger was keyed by framework (their key is the task id). */
  readonly taskId?: string;
  /** The role its resources are allocated to (the role of the offer it was launched from). */
  readonly role?: string;
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
  /** The tasks charged to it, by `ledgerKey(frameworkId, taskId)` (lib/core/ledger.ts). */
  readonly tasks: Readonly<Record<string, AgentTaskRecord>>;
  readonly registeredAt: number;
  readonly lastSeenAt: number;
  /** When it was marked UNREACHABLE (ms), while it is; and when it became GONE. */
  readonly unreachableAt?: number | null;
  readonly goneAt?: number;
  /**
   * A transition whose task updates are not all written yet (lib/control/liveness.ts): the sweep
   * finishes it if the handler that started it died.
   */
  readonly pending?: 'UNREACHABLE' | 'GONE' | 'GONE_BY_OPERATOR' | null;
  /**
   * Set by an operator (lib/control/operator.ts), independent of liveness: DRAINING (maintenance
   * ahead: no new offers, running tasks stay until they end) or DEACTIVATED (no new offers).
   * Absent (or null) after REACTIVATE.
   */
  readonly operatorStatus?: OperatorAgentStatus | null;
  /**
   * Dynamic reservations (RESERVE operations), already included in `total`'s reserved part; kept
   * apart so a re-registration (which sends the static resources) keeps them, and so UNRESERVE
   * can refuse to undo a static reservation.
   */
  readonly dynamicReservations?: Resources;
  readonly shard: number;
  readonly version: number;
}

/**
 * ACTIVE: subscribed and heard from. DISCONNECTED: silent for too long (or its queue is gone); it
 * gets no offers and its failover timeout runs (lib/control/failover.ts). TORN_DOWN: removed
 * (TEARDOWN, or its failover timeout ended); its id cannot subscribe again.
 */
export type FrameworkStatus = 'ACTIVE' | 'DISCONNECTED' | 'TORN_DOWN';

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
  /**
   * Its own liveness period, when it asked for one shorter than the cluster's
   * (FrameworkInfo.heartbeatIntervalSeconds): it calls at least this often.
   */
  readonly heartbeatIntervalSeconds?: number;
  readonly filters: Readonly<Record<string, FilterRecord>>;
  /** Roles it asked not to be offered for (SUPPRESS), until REVIVE. */
  readonly suppressedRoles?: readonly string[];
  /** Per role, its minimum offers (FrameworkInfo.offerFilters), in thousandths. */
  readonly minAllocatable?: Readonly<Record<string, readonly Resources[]>>;
  readonly subscribedAt: number;
  /** The last call from the framework (ms), kept at most every few seconds. */
  readonly lastSeenAt?: number;
  /** When it was marked DISCONNECTED; its failover timeout runs from here. */
  readonly disconnectedAt?: number | null;
  /** Why it was torn down (`teardown`, `failover timeout`). */
  readonly removedReason?: string;
  readonly version: number;
}

export interface TaskRecord {
  readonly frameworkId: string;
  readonly taskId: string;
  readonly agentId: string;
  readonly offerId: string;
  /** The role its resources are allocated to. */
  readonly role?: string;
  /** As launched, without the ids the row carries (`taskInfoOf`, lib/core/task-row.ts). */
  readonly info: RowTaskInfo;
  readonly resources: Resources;
  /**
   * The task's state as the registry knows it: what operators see and what its resources follow.
   * Its agent's latest state (Mesos's `Task.state`), which may be ahead of `status` while an
   * earlier update waits for the framework's acknowledgement.
   */
  readonly state: TaskState;
  /** The latest status, as forwarded to the framework (reconciliation answers with it). */
  readonly status: TaskStatus;
  /**
   * The state of the task's update stream: that of the last agent update applied (Mesos's
   * `status_update_state`), or of the last status Meso decided itself. Agent updates are checked
   * against it. Absent on rows written before it existed: `state`.
   */
  readonly updateState?: TaskState;
  /**
   * The status of `state` while it is ahead of `status` (its agent reported a newer state than
   * the update being delivered): reason, message, exit code, output tails. Null or absent when
   * `status` is the latest. Without the ids the row carries (`latestOf`, lib/core/task-row.ts).
   */
  readonly latest?: RowStatus | null;
  /** uuids of agent updates already applied (bounded), so a redelivered update changes nothing. */
  readonly seenUuids: readonly string[];
  /** The framework asked to kill it while its agent was unreachable: kill it when the agent returns. */
  readonly killRequested?: boolean;
  /**
   * When DynamoDB may purge the row (epoch seconds, the table's TTL attribute): set when the task
   * ends (lib/core/task-retention.ts); absent while it has not.
   */
  readonly purgeAt?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly version: number;
}

/**
 * A role's settings in the `meta` table, under the key `role#<role>` (lib/control/roles.ts): set by
 * operators, read by the allocator each cycle. A role without a record has weight 1, no quota
 * and the cluster's minimum offer.
 */
export interface RoleRecord {
  readonly key: string;
  readonly role: string;
  readonly weight?: number;
  /** Scalars in thousandths; a scalar left out is not guaranteed. */
  readonly guarantee?: Quantities;
  /** Scalars in thousandths; a scalar left out is not limited. */
  readonly limit?: Quantities;
  readonly minAllocatable?: readonly Resources[];
  readonly updatedAt: number;
  readonly version: number;
}
