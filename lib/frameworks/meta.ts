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
