/**
 * The framework SDK: what Mesos's scheduler driver (v1 scheduler library) is to a Mesos
 * framework. It owns the framework's event queue, subscribes, turns calls into messages on the
 * `scheduler-calls` FIFO queue (group = framework id) and hands events to typed handlers or an
 * async iterator, acknowledging and de-duplicating status updates on the way.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { TaskStatus } from '../protocol/common.ts';
import { parseMessage } from '../protocol/parse.ts';
import {
  type CallOf,
  type EventOf,
  type SchedulerCall,
  type SchedulerEvent,
  SchedulerEventSchema,
} from '../protocol/scheduler.ts';
import { AckBatcher } from './ack-batcher.ts';
import { CallSender } from './call-sender.ts';
import {
  acceptCall,
  acknowledgeCall,
  declineCall,
  frameworkQueueName,
  heartbeatCall,
  killCall,
  reconcileCall,
  reviveCall,
  SCHEDULER_EVENT_TYPES,
  subscribeCall,
  suppressCall,
  teardownCall,
} from './calls.ts';
import {
  ACKNOWLEDGE_WINDOW_MS,
  DEDUP_CAPACITY,
  EVENT_QUEUE_VISIBILITY_SECONDS,
  EVENT_RECEIVE_VISIBILITY_SECONDS,
  EVENT_WAIT_SECONDS,
  SUBSCRIBE_RETRY_INITIAL_MS,
  SUBSCRIBE_RETRY_MAX_MS,
} from './constants.ts';
import { BoundedMap, dedupKey, updateKey } from './dedup.ts';
import { AsyncEmitter } from './emitter.ts';
import {
  ClosedError,
  MalformedEventError,
  MesoSdkError,
  SchedulerErrorEvent,
  SubscribeError,
} from './errors.ts';
import { EventStreams } from './event-streams.ts';
import { SqsTransport } from './transport.ts';
import type {
  InboundMessage,
  MesoSchedulerOptions,
  SchedulerEventHandler,
  SchedulerEventMap,
  SchedulerEventName,
  SchedulerTransport,
  TaskInfoInput,
} from './types.ts';

/** What the SDK remembers of an event it delivered: the acknowledgement it sent, if any. */
interface SeenEntry {
  ack?: CallOf<'ACKNOWLEDGE'>;
}

/** Set while user handlers run, so `close()` called from a handler does not wait for itself. */
const inHandler = new AsyncLocalStorage<true>();

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * A Meso framework's connection to the cluster.
 *
 * Register handlers before `subscribe()`: offers can arrive in the same receive as SUBSCRIBED.
 * Handlers may be async; the SDK awaits them, in event order, before it reads on. Every UPDATE
 * carrying a uuid is acknowledged once the `'update'` handlers returned (unless
 * `autoAcknowledge: false`), and an update delivered again (SQS redelivery, an agent retry) is
 * not handed over twice. Await each call before the next when their order matters: the calls
 * share one FIFO group, but two sends in flight at once may land in either order.
 *
 * @example
 * ```ts
 * const config = loadClusterConfig();
 * const scheduler = new MesoScheduler({
 *   sqs: createSqsClient(config.aws),
 *   schedulerCallsQueueUrl: config.queues.schedulerCalls,
 *   prefix: config.prefix,
 *   name: 'hello',
 * });
 * scheduler.on('offers', async (offers) => {
 *   const [offer, ...rest] = offers;
 *   if (rest.length > 0) await scheduler.decline(rest.map((o) => o.offerId));
 *   if (!offer) return;
 *   await scheduler.accept([offer.offerId], [
 *     { taskId: 'hello-1', agentId: offer.agentId, resources: { cpus: 0.1, mem: 32 }, command: { value: 'echo hello' } },
 *   ]);
 * });
 * scheduler.on('update', (status) => console.log(status.taskId, status.state));
 * await scheduler.subscribe();
 * ```
 */
export class MesoScheduler {
  readonly frameworkId: string;
  readonly name: string;

  private readonly options: MesoSchedulerOptions;
  private readonly transport: SchedulerTransport;
  private readonly autoAcknowledge: boolean;
  private readonly emitter = new AsyncEmitter<SchedulerEventMap>();
  private readonly seen: BoundedMap<string, SeenEntry>;
  private readonly streams = new EventStreams();
  private readonly sender: CallSender;
  /** Gathers acknowledgements into few ACKNOWLEDGE calls. */
  private readonly acks: AckBatcher;
  /** Internal observers of every delivered event (subscribe() waits through one). */
  private readonly waiters = new Set<(event: SchedulerEvent) => void>();
  /** Ends pending `subscribe()` calls when the scheduler closes. */
  private readonly pendingSubscribes = new Set<(error: Error) => void>();
  private queueUrlPromise?: Promise<string>;
  private resolvedQueueUrl?: string;
  private poller?: { controller: AbortController; done: Promise<void> };
  private closing?: Promise<void>;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private lastSubscribed?: EventOf<'SUBSCRIBED'>;
  /** A re-subscription under way (after Meso said the framework was disconnected). */
  private resubscribing?: Promise<void>;
  /** Sends HEARTBEAT calls unprompted, when the framework asked for its own heartbeat interval. */
  private pinger?: NodeJS.Timeout;

  constructor(options: MesoSchedulerOptions) {
    this.options = options;
    this.frameworkId = options.frameworkId ?? randomUUID();
    this.name = options.name;
    this.autoAcknowledge = options.autoAcknowledge ?? true;
    this.seen = new BoundedMap(options.dedupCapacity ?? DEDUP_CAPACITY);
    if (options.transport) this.transport = options.transport;
    else if (options.sqs) this.transport = new SqsTransport(options.sqs);
    else throw new MesoSdkError('MesoScheduler needs an `sqs` client or a `transport`', 'INVALID_OPTIONS');
    this.sender = new CallSender(this.transport, options.schedulerCallsQueueUrl, this.frameworkId);
    this.acks = new AckBatcher(
      this.sender,
      this.frameworkId,
      Math.max(0, options.acknowledgeWindowMs ?? ACKNOWLEDGE_WINDOW_MS),
    );
  }

  /** The framework's event queue, once known (given in the options, or created by `subscribe()`). */
  get queueUrl(): string | undefined {
    return this.options.queueUrl ?? this.resolvedQueueUrl;
  }

  /** The last SUBSCRIBED event, or undefined before the first. */
  get subscription(): EventOf<'SUBSCRIBED'> | undefined {
    return this.lastSubscribed;
  }

  get closed(): boolean {
    return this.state !== 'open';
  }

  on<K extends SchedulerEventName>(event: K, handler: SchedulerEventHandler<K>): this {
    this.emitter.on(event, handler);
    return this;
  }

  once<K extends SchedulerEventName>(event: K, handler: SchedulerEventHandler<K>): this {
    this.emitter.once(event, handler);
    return this;
  }

  off<K extends SchedulerEventName>(event: K, handler: SchedulerEventHandler<K>): this {
    this.emitter.off(event, handler);
    return this;
  }

  /**
   * Every event from now on (after de-duplication), as an async iterator that ends when the
   * scheduler closes. Events are buffered until read. With `autoAcknowledge`, an update is
   * acknowledged when the `'update'` handlers have run, not when the iterator reads it: set
   * `autoAcknowledge: false` and call `acknowledge(status)` to acknowledge after processing.
   *
   * @example
   * ```ts
   * const events = scheduler.events();
   * await scheduler.subscribe();
   * for await (const event of events) {
   *   if (event.type === 'UPDATE') console.log(event.status.taskId, event.status.state);
   * }
   * ```
   */
  events(): AsyncIterableIterator<SchedulerEvent> {
    return this.streams.open(this.state !== 'open');
  }

  /**
   * Creates the event queue (unless one was given), starts reading it and sends SUBSCRIBE;
   * resolves with the SUBSCRIBED event. Without an answer SUBSCRIBE is sent again after 4 s,
   * then 8 s, … up to every 60 s (each is a new call with its own deduplication id: a re-send
   * with the same id would be dropped by SQS for five minutes). Rejects on an ERROR event for
   * SUBSCRIBE, when the send fails, after `timeoutMs`, when `signal` aborts or on `close()`.
   *
   * @example
   * ```ts
   * const { heartbeatIntervalSeconds } = await scheduler.subscribe({ timeoutMs: 60_000 });
   * ```
   */
  async subscribe(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<EventOf<'SUBSCRIBED'>> {
    if (this.state !== 'open') throw new ClosedError('subscribe');
    const queueUrl = await this.ensureQueue();
    const call = subscribeCall({
      frameworkId: this.frameworkId,
      name: this.name,
      queueUrl,
      roles: this.options.roles,
      user: this.options.user,
      failoverTimeoutSeconds: this.options.failoverTimeoutSeconds,
      partitionAware: this.options.partitionAware,
      heartbeatIntervalSeconds: this.options.heartbeatIntervalSeconds,
    });
    if (this.state !== 'open') throw new ClosedError('subscribe');
    this.startPolling(queueUrl);
    const maxMs = this.options.subscribeRetry?.maxMs ?? SUBSCRIBE_RETRY_MAX_MS;
    let wait = this.options.subscribeRetry?.initialMs ?? SUBSCRIBE_RETRY_INITIAL_MS;

    return new Promise<EventOf<'SUBSCRIBED'>>((resolve, reject) => {
      let settled = false;
      let retryTimer: NodeJS.Timeout | undefined;
      let deadline: NodeJS.Timeout | undefined;
      const cleanup = () => {
        settled = true;
        clearTimeout(retryTimer);
        clearTimeout(deadline);
        this.waiters.delete(waiter);
        this.pendingSubscribes.delete(fail);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: Error) => {
        if (settled) return;
        cleanup();
        reject(error);
      };
      const waiter = (event: SchedulerEvent) => {
        if (settled) return;
        if (event.type === 'SUBSCRIBED') {
          cleanup();
          resolve(event);
        } else if (event.type === 'ERROR' && event.call === 'SUBSCRIBE') {
          fail(new SchedulerErrorEvent(`SUBSCRIBE was rejected: ${event.message}`, event.code, event.call));
        }
      };
      const onAbort = () => fail(new SubscribeError('subscribe() was aborted', 'ABORTED'));
      const attempt = () => {
        if (settled) return;
        this.sender.send([this.sender.outgoing(call)]).then(
          () => {
            if (settled) return;
            retryTimer = setTimeout(attempt, wait);
            wait = Math.min(wait * 2, maxMs);
          },
          (e: unknown) =>
            fail(
              new SubscribeError(
                `could not send SUBSCRIBE to ${this.options.schedulerCallsQueueUrl}: ${messageOf(e)}`,
                'SEND_FAILED',
                { cause: e },
              ),
            ),
        );
      };

      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        deadline = setTimeout(
          () =>
            fail(
              new SubscribeError(
                `no SUBSCRIBED from Meso within ${opts.timeoutMs} ms: is the control plane running ` +
                  `and reading ${this.options.schedulerCallsQueueUrl}?`,
                'SUBSCRIBE_TIMEOUT',
              ),
            ),
          opts.timeoutMs,
        );
      }
      this.waiters.add(waiter);
      this.pendingSubscribes.add(fail);
      attempt();
    });
  }

  /**
   * Launches `tasks` on the offers (all on one agent); unused resources of the offers return to
   * the cluster, refused to this framework for `filters.refuseSeconds`. No tasks declines them.
   *
   * @example
   * ```ts
   * await scheduler.accept([offer.offerId], [
   *   { taskId: 'job-1', agentId: offer.agentId, resources: { cpus: 1, mem: 128 }, command: { value: 'make test' } },
   * ]);
   * ```
   */
  accept(
    offerIds: readonly string[],
    tasks: readonly TaskInfoInput[],
    filters?: { refuseSeconds?: number },
  ): Promise<void> {
    return this.call(() => acceptCall(this.frameworkId, offerIds, tasks, filters));
  }

  /** Declines offers; their resources are not offered to this framework again for `refuseSeconds` (default 5). */
  decline(offerIds: readonly string[], refuseSeconds?: number): Promise<void> {
    return this.call(() => declineCall(this.frameworkId, offerIds, refuseSeconds));
  }

  /** Kills a task; a TASK_KILLED (or TASK_LOST / TASK_DROPPED for an unknown task) update follows. */
  kill(taskId: string, agentId?: string): Promise<void> {
    return this.call(() => killCall(this.frameworkId, taskId, agentId));
  }

  /**
   * Acknowledges a status update, so its agent stops re-sending it. Updates without a uuid need
   * none (this does nothing for them). Needed only with `autoAcknowledge: false`.
   */
  async acknowledge(status: TaskStatus): Promise<void> {
    if (this.state === 'closed') throw new ClosedError('ACKNOWLEDGE');
    const call = acknowledgeCall(this.frameworkId, status);
    if (call?.uuid === undefined) return;
    const key = updateKey(call.uuid);
    const entry = this.seen.get(key) ?? {};
    entry.ack ??= call;
    this.seen.set(key, entry);
    // Travels with the acknowledgements ready within the window; settles when it was sent.
    const sent = this.acks.add([entry.ack]);
    if (this.acks.immediate) await this.acks.flush();
    await sent;
  }

  /** Asks for the state of the tasks named, or of all the framework's tasks (none named); answers come as updates. */
  reconcile(tasks: readonly { taskId: string; agentId?: string }[] = []): Promise<void> {
    return this.call(() => reconcileCall(this.frameworkId, tasks));
  }

  /** Clears the framework's decline filters, so declined resources are offered again. */
  revive(roles?: readonly string[]): Promise<void> {
    return this.call(() => reviveCall(this.frameworkId, roles));
  }

  /**
   * Asks for no offers in `roles` (default: all its roles) until `revive()`: cheaper for everyone
   * than declining every offer with a long filter when the framework has nothing to run.
   */
  suppress(roles?: readonly string[]): Promise<void> {
    return this.call(() => suppressCall(this.frameworkId, roles));
  }

  /** Removes the framework from the cluster: its tasks are killed and it gets no more offers. */
  teardown(): Promise<void> {
    return this.call(() => teardownCall(this.frameworkId));
  }

  /**
   * Stops reading events (after the batch in hand is handled and its updates acknowledged),
   * ends the `events()` iterators, rejects a pending `subscribe()`, then optionally sends
   * TEARDOWN and deletes the event queue (also one given in the options). Idempotent.
   *
   * @example
   * ```ts
   * await scheduler.close({ teardown: true, deleteQueue: true });
   * ```
   */
  close(opts: { deleteQueue?: boolean; teardown?: boolean } = {}): Promise<void> {
    if (this.closing) return this.closing;
    this.state = 'closing';
    clearInterval(this.pinger);
    this.closing = (async () => {
      for (const fail of [...this.pendingSubscribes])
        fail(new SubscribeError('the scheduler was closed', 'CLOSED'));
      this.poller?.controller.abort();
      // From inside a handler the poll loop is waiting for us: do not wait for it.
      if (this.poller && !inHandler.getStore()) await this.poller.done;
      // The acknowledgements still gathering go now.
      await this.acks.drain();
      this.streams.end();
      try {
        if (opts.teardown) {
          await this.sender.send([this.sender.outgoing(teardownCall(this.frameworkId))]);
        }
      } finally {
        try {
          if (opts.deleteQueue) {
            const url = this.queueUrl ?? (await this.queueUrlPromise?.catch(() => undefined));
            if (url !== undefined) await this.transport.deleteQueue(url);
          }
        } finally {
          this.state = 'closed';
        }
      }
    })();
    return this.closing;
  }

  // ---- internals ----

  private async call(build: () => SchedulerCall): Promise<void> {
    const call = build();
    if (this.state === 'closed') throw new ClosedError(call.type);
    await this.sender.send([this.sender.outgoing(call)]);
  }

  private ensureQueue(): Promise<string> {
    if (this.options.queueUrl !== undefined) return Promise.resolve(this.options.queueUrl);
    if (!this.queueUrlPromise) {
      const name = frameworkQueueName(this.options.prefix, this.frameworkId);
      const promise = this.transport
        .createQueue(name, { FifoQueue: 'true', VisibilityTimeout: String(EVENT_QUEUE_VISIBILITY_SECONDS) })
        .then((url) => {
          this.resolvedQueueUrl = url;
          return url;
        });
      this.queueUrlPromise = promise;
      // A failed creation may be tried again by the next subscribe().
      promise.catch(() => {
        if (this.queueUrlPromise === promise) this.queueUrlPromise = undefined;
      });
    }
    return this.queueUrlPromise;
  }

  private startPolling(queueUrl: string): void {
    if (this.poller) return;
    const controller = new AbortController();
    const done = this.transport
      .poll(queueUrl, (messages) => this.handleBatch(messages), {
        signal: controller.signal,
        waitSeconds: Math.min(20, this.options.waitSeconds ?? EVENT_WAIT_SECONDS),
        visibilityTimeout: EVENT_RECEIVE_VISIBILITY_SECONDS,
        onError: (e) => {
          if (this.state === 'open') {
            void this.report(
              new MesoSdkError(`receiving events from ${queueUrl} failed: ${messageOf(e)}`, 'POLL_FAILED', {
                cause: e,
              }),
            );
          }
        },
      })
      .catch((e: unknown) =>
        this.report(new MesoSdkError(`the event loop stopped: ${messageOf(e)}`, 'POLL_FAILED', { cause: e })),
      );
    this.poller = { controller, done };
  }

  /**
   * Handles one receive, in order. Every message is deleted afterwards: a malformed one is
   * reported (it would only fail again), and an update whose handler failed is not remembered,
   * so the agent's retry delivers it again.
   */
  private async handleBatch(messages: readonly InboundMessage[]): Promise<string[]> {
    const acks: CallOf<'ACKNOWLEDGE'>[] = [];
    for (const m of messages) {
      const parsed = parseMessage(SchedulerEventSchema, m.body, SCHEDULER_EVENT_TYPES);
      if (!parsed.ok) {
        await this.report(
          new MalformedEventError(
            `malformed event (message ${m.messageId}): ${parsed.error}`,
            parsed.code,
            m.body,
          ),
        );
        continue;
      }
      const event = parsed.message;
      const other = foreignFrameworkId(event, this.frameworkId);
      if (other !== undefined) {
        // Only Meso and this framework can send to its queue; an event for another framework
        // there is misdirected, and acting on it would mean acting on someone else's offers.
        await this.report(
          new MalformedEventError(
            `event ${event.type} (message ${m.messageId}) is for framework ${other}, not this one: dropped`,
            'FOREIGN_FRAMEWORK',
            m.body,
          ),
        );
        continue;
      }
      const key = dedupKey(event, m.messageId);
      const prior = this.seen.get(key);
      if (prior) {
        // Delivered already. If it was acknowledged, the agent has not heard (it resends only
        // then: its ACKNOWLEDGE was lost, or reached a process that died or had not yet restored
        // the update): say it again under a new deduplication id — with the first one's, SQS
        // would drop it, and every later one, for five minutes while the agent keeps resending.
        if (prior.ack) acks.push(prior.ack);
        continue;
      }
      if (!(await this.deliver(event))) continue;
      const entry = this.seen.get(key) ?? {};
      if (event.type === 'UPDATE' && this.autoAcknowledge && !entry.ack) {
        try {
          const call = acknowledgeCall(this.frameworkId, event.status);
          if (call) {
            entry.ack = call;
            acks.push(call);
          }
        } catch (e) {
          await this.report(new MesoSdkError(messageOf(e), 'ACK_FAILED', { cause: e }));
        }
      }
      this.seen.set(key, entry);
    }
    if (acks.length > 0) {
      // Each sending of an acknowledgement is a new call (a fresh deduplication id), so one
      // answering a resent update is not dropped by SQS as a copy of the first.
      const sent = this.acks.add(acks).catch((e: unknown) =>
        this.report(
          new MesoSdkError(`acknowledging ${acks.length} update(s) failed: ${messageOf(e)}`, 'ACK_FAILED', {
            cause: e,
          }),
        ),
      );
      // Without a window they go with this receive, as one call, before the next is read.
      if (this.acks.immediate) {
        await this.acks.flush();
        await sent;
      }
    }
    return [];
  }

  /** Hands an event to the waiters, the iterators and the handlers; false if a handler failed. */
  private async deliver(event: SchedulerEvent): Promise<boolean> {
    if (event.type === 'SUBSCRIBED') this.lastSubscribed = event;
    this.keepAlive(event);
    for (const waiter of [...this.waiters]) waiter(event);
    this.streams.push(event);
    const [name, errors] = await inHandler.run(true, async (): Promise<[string, unknown[]]> => {
      switch (event.type) {
        case 'SUBSCRIBED':
          return ['subscribed', await this.emitter.emit('subscribed', event)];
        case 'OFFERS':
          return ['offers', await this.emitter.emit('offers', event.offers)];
        case 'RESCIND':
          return ['rescind', await this.emitter.emit('rescind', event.offerId)];
        case 'UPDATE':
          return ['update', await this.emitter.emit('update', event.status)];
        case 'HEARTBEAT':
          return ['heartbeat', await this.emitter.emit('heartbeat', undefined)];
        case 'FAILURE':
          return ['failure', await this.emitter.emit('failure', event)];
        case 'ERROR':
          await this.report(new SchedulerErrorEvent(event.message, event.code, event.call));
          return ['error', []];
      }
    });
    for (const e of errors) {
      await this.report(
        new MesoSdkError(`an '${name}' handler failed: ${messageOf(e)}`, 'HANDLER_FAILED', { cause: e }),
      );
    }
    return errors.length === 0;
  }

  /**
   * Meso's side of framework liveness (lib/control/failover.ts): each HEARTBEAT event is answered
   * with a HEARTBEAT call, and when Meso says the framework is disconnected (it was silent too
   * long) the SDK subscribes again, once at a time. Neither waits: events keep flowing.
   */
  private keepAlive(event: SchedulerEvent): void {
    if (this.state !== 'open') return;
    const beat = (what: string) =>
      this.call(() => heartbeatCall(this.frameworkId)).catch((e: unknown) =>
        this.report(new MesoSdkError(`${what} failed: ${messageOf(e)}`, 'SEND_FAILED', { cause: e })),
      );
    if (event.type === 'HEARTBEAT') {
      void beat('answering HEARTBEAT');
    } else if (event.type === 'SUBSCRIBED' && this.options.heartbeatIntervalSeconds !== undefined) {
      // Its own interval (SUBSCRIBED names the one granted): Meso sends no HEARTBEAT event that
      // often, so the SDK calls on its own. It keeps no process alive by itself.
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (this.state === 'open') void beat('sending HEARTBEAT');
      }, Math.max(1, event.heartbeatIntervalSeconds) * 1000);
      this.pinger.unref();
    } else if (event.type === 'ERROR' && event.code === 'FRAMEWORK_DISCONNECTED' && !this.resubscribing) {
      this.resubscribing = this.subscribe()
        .then(
          () => undefined,
          (e: unknown) =>
            this.report(
              new MesoSdkError(`subscribing again failed: ${messageOf(e)}`, 'SUBSCRIBE_FAILED', { cause: e }),
            ),
        )
        .finally(() => {
          this.resubscribing = undefined;
        });
    }
  }

  /** Hands an error to the `'error'` handlers, or to `process.emitWarning` when there are none. */
  private async report(error: MesoSdkError): Promise<void> {
    if (this.emitter.listenerCount('error') === 0) {
      process.emitWarning(error);
      return;
    }
    const failures = await inHandler.run(true, () => this.emitter.emit('error', error));
    for (const f of failures) process.emitWarning(`an 'error' handler failed: ${messageOf(f)}`);
  }
}

/** The other framework an event names, if it names one that is not `frameworkId`. */
function foreignFrameworkId(event: SchedulerEvent, frameworkId: string): string | undefined {
  const named =
    event.type === 'SUBSCRIBED'
      ? [event.frameworkId]
      : event.type === 'OFFERS'
        ? event.offers.map((o) => o.frameworkId)
        : event.type === 'UPDATE'
          ? [event.status.frameworkId]
          : [];
  return named.find((id) => id !== frameworkId);
}
