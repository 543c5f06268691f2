/** Framework records: read one, change one (conditional on the version read, retried on a lost race). */
import type { FrameworkRecord } from '../../core/model.ts';
import type { Item, Store, WriteOp } from '../../ports/store.ts';
import { type Decide, updateRecord } from './transact.ts';

export const getFramework = (s: Store, frameworkId: string) =>
  s.get<FrameworkRecord & Item>('frameworks', { frameworkId });

/** `update(id, change)` for a framework record. */
export const updateFramework = <R>(
  s: Store,
  frameworkId: string,
  decide: Decide<FrameworkRecord, R>,
): Promise<R> => updateRecord(s, 'frameworks', { frameworkId }, decide);

/**
 * A write of attributes only the framework's own calls change (its filters), which its FIFO
 * group serializes: it needs the record to exist, not a version.
 */
export const frameworkCallWrite = (frameworkId: string, set: Item): WriteOp => ({
  kind: 'patch',
  table: 'frameworks',
  key: { frameworkId },
  set,
  expect: 'exists',
});
