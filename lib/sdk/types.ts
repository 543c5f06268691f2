/**
 * Types of the framework SDK: its options, the events it delivers and the transport it sends
 * and receives through (SQS in production, an in-memory fake in unit tests).
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { z } from 'zod';
import type { OutboundMessage } from '../ports/bus.ts';
import type { TaskInfoSchema, TaskStatus } from '../protocol/common.ts';
import type { EventOf, Offer } from '../protocol/scheduler.ts';
import type { MesoSdkError } from './errors.ts';

/** A message read from the framework's event queue (what `pollQueue` hands over). */
export interface InboundMessage {
  readonly messageId: string;
  readonly body: string;
}

/**
 * How the SDK reaches SQS. `SqsTransport` (`lib/sdk/transport.ts`) is the real one; tests pass a
 * small in-memory fake.
 */
export interface SchedulerTransport {
  /** Sends messages to a queue; throws if any could not be sent (the Bus port's contract). */
  send(queueUrl: string, messages: readonly OutboundMessage[]): Promise<void>;
  /**
   * Long-polls `queueUrl` until `signal` aborts, handing each batch to `onBatch`, in order;
   * messages whose ids `onBatch` returns are left on the queue, the rest are deleted.
   */
  poll(
    queueUrl: string,
    onBatch: (messages: InboundMessage[]) => Promise<readonly string[]>,
    opts: {
      signal: AbortSignal;
      waitSeconds: number;
      /** How long received messages stay hidden (ReceiveMessage's VisibilityTimeout). */
      visibilityTimeout?: number;
      onError: (e: unknown) => void;
    },
  ): Promise<void>;
  /** Creates the queue, or returns the URL of the existing one of that name. */
  createQueue(name: string, attributes: Record<string, string>): Promise<string>;
  /** Deletes the queue; a queue that is already gone is not an error. */
  deleteQueue(queueUrl: string): Promise<void>;
}

/** A task as the framework writes it: `command.shell` may be left out (default true). */
export type TaskInfoInput = z.input<typeof TaskInfoSchema>;

/** Where the SDK sends and receives: an SQS client, or any transport (tests). */
export type SchedulerConnection =
  | {
      /** An SQS client, as `createSqsClient(config.aws)` makes (it knows the emulator endpoint). */
      sqs: SQSClient;
      transport?: never;
    }
  | {
      sqs?: never;
      /** A transport to use instead of SQS (tests, other buses). */
      transport: SchedulerTransport;
    };

export interface SchedulerSettings {
  /** URL of the cluster's `scheduler-calls` FIFO queue (`loadClusterConfig().queues.schedulerCalls`). */
  schedulerCallsQueueUrl: string;
  /** The cluster's resource prefix (`loadClusterConfig().prefix`); names the event queue the SDK creates. */
  prefix: string;
  /** The framework's name, shown to operators. */
  name: string;
  /** @default a random UUID */
  frameworkId?: string;
  /** Roles the framework is offered resources of. @default ['*'] */
  roles?: string[];
  /** Unix user the framework's tasks run as by default. */
  user?: string;
  /** Seconds Meso keeps the framework's tasks after it stops polling. @default 0 (as Mesos) */
  failoverTimeoutSeconds?: number;
  /** TASK_UNREACHABLE instead of TASK_LOST when an agent goes silent. @default false */
  partitionAware?: boolean;
  /**
   * Ask for a liveness period shorter than the cluster's (at least 2 s): the SDK then sends a
   * HEARTBEAT call this often by itself, and Meso disconnects the framework after a few such
   * periods of silence (a killed process is noticed in seconds, not minutes). @default the cluster's (60 s)
   */
  heartbeatIntervalSeconds?: number;
  /**
   * Acknowledge every UPDATE that carries a uuid once the `'update'` handlers have returned (or
   * their promises settled). Set false to call `acknowledge(status)` yourself. @default true
   */
  autoAcknowledge?: boolean;
  /**
   * How long an acknowledgement waits for others to go with it in one ACKNOWLEDGE call (several
   * `acks`). 0: the acknowledgements of each receive go together, sent before the next receive.
   * @default 5 ms
   */
  acknowledgeWindowMs?: number;
  /**
   * The framework's own event queue. When absent the SDK creates (idempotently) the FIFO queue
   * `<prefix>-fw-<frameworkId>.fifo` on `subscribe()`.
   */
  queueUrl?: string;
  /** Wait for SUBSCRIBED before re-sending SUBSCRIBE, and its cap (it doubles). @default 4000 / 60000 ms */
  subscribeRetry?: { initialMs?: number; maxMs?: number };
  /** Long-poll wait of the event queue, ≤ 20. @default 20 */
  waitSeconds?: number;
  /** Update uuids / message ids remembered for de-duplication. @default 10000 */
  dedupCapacity?: number;
}

export type MesoSchedulerOptions = SchedulerConnection & SchedulerSettings;

/** The payload each event name delivers. */
export interface SchedulerEventMap {
  /** The framework is subscribed (again: Meso answers every SUBSCRIBE). */
  subscribed: EventOf<'SUBSCRIBED'>;
  /** New offers; accept or decline each before it expires (`offer.expiresAt`). */
  offers: Offer[];
  /** An offer was withdrawn: the id of the rescinded offer. */
  rescind: string;
  /** A task status update, at most once per uuid. */
  update: TaskStatus;
  heartbeat: undefined;
  /** An agent (or executor) failed. */
  failure: EventOf<'FAILURE'>;
  /**
   * An ERROR event from Meso (`SchedulerErrorEvent`), an event that could not be parsed
   * (`MalformedEventError`), a handler that threw, or a failed poll / acknowledgement.
   */
  error: MesoSdkError;
}

export type SchedulerEventName = keyof SchedulerEventMap;

/** A handler may be async: the SDK awaits it before acknowledging and reading on. */
export type SchedulerEventHandler<K extends SchedulerEventName> = (
  payload: SchedulerEventMap[K],
) => void | Promise<void>;
