/**
 * A small typed event emitter whose handlers may be async: `emit` awaits each handler in turn
 * and returns what they threw, so the SDK can acknowledge an update only after its handlers ran,
 * and report a failing handler instead of crashing the poll loop.
 */

type AnyHandler = (payload: never) => void | Promise<void>;

export class AsyncEmitter<M extends object> {
  private readonly handlers = new Map<keyof M, AnyHandler[]>();

  on<K extends keyof M>(event: K, handler: (payload: M[K]) => void | Promise<void>): this {
    const list = this.handlers.get(event) ?? [];
    list.push(handler as AnyHandler);
    this.handlers.set(event, list);
    return this;
  }

  once<K extends keyof M>(event: K, handler: (payload: M[K]) => void | Promise<void>): this {
    const wrapper = (payload: M[K]) => {
      this.off(event, wrapper);
      return handler(payload);
    };
    return this.on(event, wrapper);
  }

  off<K extends keyof M>(event: K, handler: (payload: M[K]) => void | Promise<void>): this {
    const list = this.handlers.get(event);
    if (!list) return this;
    const i = list.indexOf(handler as AnyHandler);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  listenerCount(event: keyof M): number {
    return this.handlers.get(event)?.length ?? 0;
  }

  /** Runs the handlers of `event` one after another; returns the errors they threw or rejected with. */
  async emit<K extends keyof M>(event: K, payload: M[K]): Promise<unknown[]> {
    const errors: unknown[] = [];
    // A copy: `once` handlers remove themselves while the list is walked.
    for (const handler of [...(this.handlers.get(event) ?? [])]) {
      try {
        await (handler as (p: M[K]) => void | Promise<void>)(payload);
      } catch (e) {
        errors.push(e);
      }
    }
    return errors;
  }
}
