/**
 * Change markers: counters in the `meta` table that every write of what the allocator reads from
 * the frameworks table or the role settings bumps, after the write. An allocator instance keeps
 * the frameworks and roles it read (lib/control/settings-view.ts) and reads them again only when
 * a marker moved: one consistent batch read of two small items per cycle instead of two scans.
 *
 * A bump follows its write and is not in its transaction (one hot item in every framework's
 * transactions would make them conflict): a process that dies between the two leaves the change
 * unmarked until the view's periodic full read (a minute), or the call's redelivery, which writes
 * again and bumps. Heartbeats (`lastSeenAt`) change nothing the allocator reads and bump nothing.
 */
import type { Store } from '../../ports/store.ts';

export const FRAMEWORKS_CHANGED = 'changed#frameworks';
export const ROLES_CHANGED = 'changed#roles';

/** Marks that the frameworks table (`FRAMEWORKS_CHANGED`) or the role settings changed. */
export const markChanged = (store: Store, marker: typeof FRAMEWORKS_CHANGED | typeof ROLES_CHANGED) =>
  store.increment(marker);
