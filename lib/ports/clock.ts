/** Time and ids are injected so the core stays deterministic under test. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface Ids {
  /** A new unique id (offers, status update uuids). */
  next(): string;
}

export const systemClock: Clock = { now: () => Date.now() };
