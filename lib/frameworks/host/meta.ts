/** A built-in framework's own state: when it subscribed, when Meso was last heard from, its roles. */
export interface FrameworkMeta {
  readonly subscribeSentAt?: number;
  /** The last SUBSCRIBED or HEARTBEAT, ms. */
  readonly lastContactAt?: number;
  readonly roles?: readonly string[];
  /** It sent SUPPRESS and has not revived since. */
  readonly suppressed?: boolean;
}

/** Without SUBSCRIBED or HEARTBEAT for this long, a tick subscribes again. */
export const CONTACT_TIMEOUT_MS = 60_000;

/** Whether Meso has been silent long enough (or the framework never subscribed) to subscribe again. */
export const isSilent = (meta: FrameworkMeta, now: number): boolean =>
  now - Math.max(meta.lastContactAt ?? 0, meta.subscribeSentAt ?? 0) > CONTACT_TIMEOUT_MS;
