/**
 * Errors raised or reported by the framework SDK. Everything the SDK reports on `'error'` is a
 * `MesoSdkError`; `code` tells the kinds apart.
 */

export class MesoSdkError extends Error {
  override name = 'MesoSdkError';
  constructor(
    message: string,
    /** `MALFORMED_EVENT`, `HANDLER_FAILED`, `POLL_FAILED`, `ACK_FAILED`, `INVALID_CALL`, … */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A call the SDK refused to send because it does not match the protocol. */
export class InvalidCallError extends MesoSdkError {
  override name = 'InvalidCallError';
  constructor(message: string) {
    super(message, 'INVALID_CALL');
  }
}

/** An ERROR event from Meso: a call of this framework was rejected. */
export class SchedulerErrorEvent extends MesoSdkError {
  override name = 'SchedulerErrorEvent';
  constructor(
    message: string,
    code: string,
    /** The rejected call's type, when Meso could read it. */
    readonly call?: string,
  ) {
    super(message, code);
  }
}

/** An event the SDK could not parse; it is deleted from the queue after being reported. */
export class MalformedEventError extends MesoSdkError {
  override name = 'MalformedEventError';
  constructor(
    message: string,
    /** The parse failure (`MALFORMED_JSON`, `UNKNOWN_TYPE`, `INVALID`, `UNSUPPORTED_VERSION`), or `FOREIGN_FRAMEWORK` for an event naming another framework. */
    readonly reason: string,
    readonly body: string,
  ) {
    super(message, 'MALFORMED_EVENT');
  }
}

/** `subscribe()` gave up: its timeout passed, its signal aborted, or the scheduler was closed. */
export class SubscribeError extends MesoSdkError {
  override name = 'SubscribeError';
}

/** The scheduler was used after `close()`. */
export class ClosedError extends MesoSdkError {
  override name = 'ClosedError';
  constructor(what: string) {
    super(`${what}: the scheduler is closed`, 'CLOSED');
  }
}
