/**
 * Throttling and transient DynamoDB errors, retried where they happen. The AWS SDK already retries
 * them inside each call (standard mode, 5 attempts, backoff with jitter, a retry quota that stops
 * storms); this layer sits above the Store port so that any adapter — and the fault injection of
 * the chaos run, which throws above the SDK — gets the same treatment: a few more attempts with
 * exponential backoff and full jitter, then the error goes up and fails the SQS record, which SQS
 * redelivers after the visibility timeout and, after `maxReceiveCount` deliveries, moves to the
 * dead-letter queue (alarmed; `meso dlq` lists and redrives).
 *
 * A failed condition (ConditionFailedError) is not retried by the store: it means someone else
 * changed the item first, and only the caller can re-read and decide again. That is `withRetry`
 * below, the control plane's one policy for a lost race, used only by the record operations
 * (lib/control/records/transact.ts).
 */
import { ConditionFailedError, type Store } from '../ports/store.ts';

/** Error names DynamoDB (and the SDK) use for throttling and transient server faults. */
export const TRANSIENT_ERRORS: ReadonlySet<string> = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionInProgressException',
  'TimeoutError',
]);

export function isTransient(e: unknown): boolean {
  const err = e as { name?: string; $retryable?: unknown } | undefined;
  return !!err && (TRANSIENT_ERRORS.has(err.name ?? '') || err.$retryable !== undefined);
}

export interface RetryPolicy {
  /** Attempts in all (default 4). */
  readonly attempts: number;
  /** First backoff cap, ms (default 25); doubles per attempt up to `maxDelayMs` (default 1000). */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Injected for tests. */
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 25, maxDelayMs: 1000 };

/** Runs `fn`, retrying transient errors with exponential backoff and full jitter. */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  const random = policy.random ?? Math.random;
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isTransient(e) || attempt >= policy.attempts) throw e;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(random() * cap);
    }
  }
}

/**
 * A Store whose calls retry transient errors. Writes are safe to retry: each is conditional, so a
 * write that did happen before its answer was lost fails its condition on the retry and the caller
 * re-reads (and a `put` with `expect: 'any'`, used only for outbox items, writes the same item).
 *
 * @example
 * const deps = { ...base, store: resilientStore(base.store) };
 */
export function resilientStore(inner: Store, policy: RetryPolicy = DEFAULT_RETRY): Store {
  if ((inner as { resilient?: boolean }).resilient) return inner;
  const store: Store & { resilient: true } = {
    resilient: true,
    get: (t, k) => retryTransient(() => inner.get(t, k), policy),
    ...(inner.getMany ? { getMany: (t, ks) => retryTransient(() => inner.getMany!(t, ks), policy) } : {}),
    query: (t, pk, i, f) => retryTransient(() => inner.query(t, pk, i, f), policy),
    scan: (t) => retryTransient(() => inner.scan(t), policy),
    write: (ops) => retryTransient(() => inner.write(ops), policy),
    increment: (k, by) => retryTransient(() => inner.increment(k, by), policy),
  };
  return store;
}

/** The one conflict test: a conditional write found the record changed since it was read. */
export const isConflict = (e: unknown): boolean => e instanceof ConditionFailedError;

/** Attempts at a read-decide-write that keeps losing races before the error goes up. */
export const CONFLICT_ATTEMPTS = 8;

/**
 * Runs `fn` (which reads, decides and writes conditionally) again when its write lost a race,
 * after a jittered backoff; `fn` re-reads each time. Other errors go up at once.
 */
export async function withRetry<T>(fn: () => Promise<T>, attempts = CONFLICT_ATTEMPTS): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!isConflict(e) || i + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * 2 ** Math.min(i, 5)));
    }
  }
}
