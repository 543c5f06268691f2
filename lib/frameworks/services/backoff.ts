/** Marathon's restart backoff: a crashing app waits 1 s, then ×1.15 each failure, up to 1 h. */
export interface BackoffPolicy {
  readonly backoffSeconds: number;
  readonly backoffFactor: number;
  readonly maxLaunchDelaySeconds: number;
}

/** Delay in ms before the next launch after `failures` failures in a row (0 failures: none). */
export function backoffDelayMs(policy: BackoffPolicy, failures: number): number {
  if (failures <= 0) return 0;
  const seconds = policy.backoffSeconds * policy.backoffFactor ** Math.min(failures - 1, 10_000);
  return Math.round(Math.min(seconds, policy.maxLaunchDelaySeconds) * 1000);
}
