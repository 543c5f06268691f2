/** Framework records: read one, change one (conditional on the version read, retried on a lost race). */
import type { FrameworkRecord } from '../../core/model.ts';
import type { Item, Store, WriteOp } from '../../ports/store.ts';
import { FRAMEWORKS_CHANGED, markChanged } from './changes.ts';
import { type Decide, updateRecord } from './transact.ts';

export const getFramework = (s: Store, frameworkId: string) =>
  s.get<FrameworkRecord & Item>('frameworks', { frameworkId });

/** `update(id, change)` for a framework record; a write is marked for the allocator (changes.ts). */
export const updateFramework = async <R>(
  s: Store,
  frameworkId: string,
  decide: Decide<FrameworkRecord, R>,
): Promise<R> => {
  let wrote = false;
  const result = await updateRecord<FrameworkRecord, R>(s, 'frameworks', { frameworkId }, async (cur) => {
    const change = await decide(cur);
    wrote = change.put !== undefined || change.set !== undefined;
    return change;
  });
  if (wrote) await markChanged(s, FRAMEWORKS_CHANGED);
  return result;
};

/**
 * A write of attributes only the framework's own calls change (its filters), which its FIFO
 * group serializes: it needs the record to exist, not a version. Mark it (`markChanged`) after.
 */
export const frameworkCallWrite = (frameworkId: string, set: Item): WriteOp => ({
  kind: 'patch',
  table: 'frameworks',
  key: { frameworkId },
  set,
  expect: 'exists',
});
