/**
 * The allocator's view of the agents, kept between cycles in the function's instance, so a cycle
 * reads only the agents that changed since the last one instead of scanning the whole table.
 *
 * The store stamps `changedAt` on every agent write but a heartbeat (lib/ports/store.ts), and
 * the `byChange` index (lib/definition/tables-queues.ts: partition `shard`, sort `changedAt`)
 * lists a shard's agents changed since a time, with their versions only (a projection of keys
 * and `version`, so the index costs one write unit per agent write whatever the record's size).
 * A cycle queries every shard's partition (DRF shares are cluster-wide) from `overlapMs` before
 * its previous read began, reads whole (consistently, one batch) the agents whose version is
 * newer than the view's, and keeps, per agent, the record with the highest `version` — so
 * reading something twice, or an index that still answers with an older entry (DynamoDB's
 * indexes are eventually consistent), never moves the view backwards. The overlap covers a write whose stamp was taken before the previous read
 * but that landed after it (SDK retries), clocks that differ between writers, and the index's
 * lag.
 *
 * Safety does not rest on the view being fresh: every offer is a conditional write on the
 * version the view holds, so a stale agent costs a lost write (the conflict path re-reads it),
 * never an over-commit or an offer of resources already used. Freshness is what keeps the DRF
 * order and prompt offers, and a full scan makes it exact again: at the first cycle of an
 * instance, every `fullReadMs`, when the caller asks (a redelivered batch), and whenever the
 * index cannot be read (a table provisioned before it existed).
 */
import type { AgentRecord } from '../core/model.ts';
import { getEach, type Item, type Store } from '../ports/store.ts';

export const CHANGE_INDEX = 'byChange';
export const CHANGED_AT = 'changedAt';
/** Default: a full scan at least once a minute. */
export const FULL_READ_MS = 60_000;
/** Default: re-read what changed in the 5 s before the previous read began. */
export const OVERLAP_MS = 5_000;

export interface AgentViewOptions {
  readonly fullReadMs?: number;
  readonly overlapMs?: number;
  /** Called when the index cannot be read and the view falls back to a scan. */
  readonly onIndexError?: (error: unknown) => void;
}

export interface ViewRead {
  readonly agents: AgentRecord[];
  /** Whether this read was a full scan. */
  readonly full: boolean;
  /** Records the store returned (a full scan: every agent). */
  readonly read: number;
}

/** Merges `items` into `view`, keeping per agent the record with the highest version (pure on `view`'s entries). */
export function mergeByVersion(view: Map<string, AgentRecord>, items: readonly AgentRecord[]): void {
  for (const item of items) {
    const cur = view.get(item.agentId);
    if (!cur || item.version > cur.version) view.set(item.agentId, item);
  }
}

export class AgentView {
  #agents = new Map<string, AgentRecord>();
  #readAt: number | undefined;
  #fullAt: number | undefined;
  readonly #fullReadMs: number;
  readonly #overlapMs: number;

  constructor(private readonly opts: AgentViewOptions = {}) {
    this.#fullReadMs = opts.fullReadMs ?? FULL_READ_MS;
    this.#overlapMs = opts.overlapMs ?? OVERLAP_MS;
  }

  /**
   * The agents as of `now` (the caller's clock, the same one writers stamp with): only what
   * changed since the last read, or a full scan when one is due or `full` is asked.
   */
  async read(store: Store, now: number, shards: number, full = false): Promise<ViewRead> {
    const due =
      full ||
      this.#readAt === undefined ||
      this.#fullAt === undefined ||
      now - this.#fullAt >= this.#fullReadMs ||
      now < this.#readAt; // a clock that went back: start over
    if (!due) {
      const since = this.#readAt! - this.#overlapMs;
      try {
        const parts = await Promise.all(
          Array.from({ length: Math.max(1, shards) }, (_, shard) =>
            store.query<AgentRecord & Item>('agents', { name: 'shard', value: shard }, CHANGE_INDEX, {
              name: CHANGED_AT,
              value: since,
            }),
          ),
        );
        // The index holds keys and versions only: the records newer than the view's are read
        // whole, consistently, in one batch.
        const newer = parts
          .flat()
          .filter((c) => !(Number(c.version) <= (this.#agents.get(String(c.agentId))?.version ?? -1)));
        const keys = [...new Set(newer.map((c) => String(c.agentId)))].map((agentId) => ({ agentId }));
        const changed = (await getEach<AgentRecord & Item>(store, 'agents', keys)).filter(
          (a): a is AgentRecord & Item => a !== undefined,
        );
        mergeByVersion(this.#agents, changed);
        this.#readAt = now;
        return { agents: [...this.#agents.values()], full: false, read: changed.length };
      } catch (e) {
        this.opts.onIndexError?.(e);
      }
    }
    const all = await store.scan<AgentRecord & Item>('agents');
    this.#agents = new Map(all.map((a) => [a.agentId, a]));
    this.#readAt = now;
    this.#fullAt = now;
    return { agents: all, full: true, read: all.length };
  }

  /** The agents as the view holds them now. */
  agents(): AgentRecord[] {
    return [...this.#agents.values()];
  }

  /** Adds records read some other way (a consistent read after a write), if newer than the view's. */
  learn(agents: readonly AgentRecord[]): void {
    mergeByVersion(this.#agents, agents);
  }
}
