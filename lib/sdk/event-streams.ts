/**
 * The `events()` side of the SDK: every delivered event is pushed to each open iterator's
 * buffer, and closing the scheduler ends them all.
 */
import type { SchedulerEvent } from '../protocol/scheduler.ts';

interface EventSink {
  push(event: SchedulerEvent): void;
  end(): void;
}

export class EventStreams {
  private readonly sinks = new Set<EventSink>();

  /** Hands an event to every open iterator. */
  push(event: SchedulerEvent): void {
    for (const sink of this.sinks) sink.push(event);
  }

  /** Ends every iterator (after it has read what is buffered). */
  end(): void {
    for (const sink of this.sinks) sink.end();
    this.sinks.clear();
  }

  /** A new iterator over events pushed from now on; `ended` makes one that is already over. */
  open(ended: boolean): AsyncIterableIterator<SchedulerEvent> {
    const buffer: SchedulerEvent[] = [];
    let wake: (() => void) | undefined;
    const sink: EventSink = {
      push: (event) => {
        buffer.push(event);
        wake?.();
      },
      end: () => {
        ended = true;
        wake?.();
      },
    };
    if (!ended) this.sinks.add(sink);
    const sinks = this.sinks;
    // Registered above, eagerly: a generator's body would only start at the first next().
    async function* read(): AsyncGenerator<SchedulerEvent, void, undefined> {
      try {
        for (;;) {
          const event = buffer.shift();
          if (event !== undefined) {
            yield event;
            continue;
          }
          if (ended) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      } finally {
        sinks.delete(sink);
      }
    }
    return read();
  }
}
