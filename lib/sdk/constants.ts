/**
 * Defaults of the framework SDK, with the reasons for each number.
 */

/**
 * Long-poll wait of the event queue. 20 s is SQS's maximum: an idle framework then costs
 * 3 receives a minute ≈ $0.065 per framework-month on FIFO pricing, and an event still arrives
 * as soon as it is sent.
 */
export const EVENT_WAIT_SECONDS = 20;

/**
 * Visibility timeout of the queue the SDK creates. Handlers run before the message is deleted;
 * 30 s (the SQS default) leaves room for a slow handler without delaying a real redelivery long.
 */
export const EVENT_QUEUE_VISIBILITY_SECONDS = 30;

/**
 * How long the events one receive takes stay hidden. The SDK reads with one poller, handling a
 * batch before it asks for the next, so nobody else is waiting for them while a handler runs; but
 * a process that dies (or a long poll its client gave up on, which SQS may still answer) hides
 * what it took for this long from the process that fails over to the same queue. 3 s, as the
 * agent's command queue: a failed-over framework hears its events within seconds, not 30.
 */
export const EVENT_RECEIVE_VISIBILITY_SECONDS = 3;

/** First wait for SUBSCRIBED before SUBSCRIBE is sent again (a Lambda cold start takes 1–3 s). */
export const SUBSCRIBE_RETRY_INITIAL_MS = 4_000;

/** The wait for SUBSCRIBED doubles after each re-send up to this. */
export const SUBSCRIBE_RETRY_MAX_MS = 60_000;

/**
 * Sends of one call that fail (after the AWS SDK's own 5 attempts) are tried again this many
 * times with the same deduplication id, so a send that did reach SQS is not applied twice.
 */
export const SEND_ATTEMPTS = 3;

/** Pause before the first re-send of a failed call; doubles each time. */
export const SEND_RETRY_BASE_MS = 200;

/**
 * Update uuids (and SQS message ids) remembered for de-duplication. Agents retry an update
 * until it is acknowledged, within minutes; 10,000 entries cover any realistic window for one
 * framework in well under a megabyte.
 */
export const DEDUP_CAPACITY = 10_000;

/** What `decline()` asks for when no refuseSeconds is given (Mesos's default filter). */
export const DEFAULT_REFUSE_SECONDS = 5;

/**
 * How long an acknowledgement waits for others to travel with it in one ACKNOWLEDGE (`acks`).
 * Short: the agent sends a task's next update only once the previous one is acknowledged, so this
 * is added to every step of a task's life (RUNNING → FINISHED, and STARTING → RUNNING for a task
 * that fetches URIs). 5 ms gathers the updates of a burst (they arrive in receives of 10,
 * milliseconds apart) into a few calls.
 */
export const ACKNOWLEDGE_WINDOW_MS = 5;
