/**
 * The control plane's one write path (lib/control/records/transact.ts): a change that loses a race
 * is decided again on what won, other errors go up at once, and a race lost every time gives up.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../lib/adapters/memory-store.ts';
import { getFramework, updateFramework } from '../../../lib/control/records/frameworks.ts';
import { CONFLICT_ATTEMPTS } from '../../../lib/control/retry.ts';
import type { FrameworkRecord } from '../../../lib/core/model.ts';
import { ConditionFailedError, type Item } from '../../../lib/ports/store.ts';

const framework = (frameworkId: string): FrameworkRecord => ({
  frameworkId,
  principal: 'p',
  name: frameworkId,
  roles: ['*'],
  queueUrl: `http://q/${frameworkId}`,
  status: 'ACTIVE',
  failoverTimeoutSeconds: 0,
  partitionAware: false,
  filters: {},
  subscribedAt: 0,
  version: 0,
});

async function seeded(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.write([
    { kind: 'put', table: 'frameworks', item: framework('f1') as unknown as Item, expect: 'absent' },
  ]);
  return store;
}

describe('updateRecord', () => {
  it('decides again on the record that won a race, and writes on its version', async () => {
    const store = await seeded();
    const seen: (readonly string[] | undefined)[] = [];
    let raced = false;
    const result = await updateFramework(store, 'f1', async (f) => {
      seen.push(f?.suppressedRoles);
      if (!raced) {
        raced = true;
        // Someone else changes the record between this read and this write.
        await store.write([
          {
            kind: 'patch',
            table: 'frameworks',
            key: { frameworkId: 'f1' },
            set: { suppressedRoles: ['a'] },
            expect: f!.version,
          },
        ]);
      }
      return { set: { suppressedRoles: [...(f!.suppressedRoles ?? []), 'b'] }, result: 'done' };
    });
    expect(result).toBe('done');
    expect(seen).toEqual([undefined, ['a']]);
    const after = await getFramework(store, 'f1');
    expect(after?.suppressedRoles).toEqual(['a', 'b']);
    expect(after?.version).toBe(3);
  });

  it('writes nothing when the change sets nothing', async () => {
    const store = await seeded();
    expect(await updateFramework(store, 'f1', () => ({ result: 7 }))).toBe(7);
    expect((await getFramework(store, 'f1'))?.version).toBe(1);
  });

  it('creates a record that was absent, and replaces one on the version read', async () => {
    const store = new MemoryStore();
    const put = (f: FrameworkRecord | undefined) => ({
      put: framework('f2') as unknown as Item,
      result: f === undefined ? 'created' : 'replaced',
    });
    expect(await updateFramework(store, 'f2', put)).toBe('created');
    expect(await updateFramework(store, 'f2', put)).toBe('replaced');
    expect((await getFramework(store, 'f2'))?.version).toBe(2);
  });

  it('lets an error other than a lost race go up at once', async () => {
    const store = await seeded();
    let calls = 0;
    await expect(
      updateFramework(store, 'f1', () => {
        calls++;
        throw new Error('bad');
      }),
    ).rejects.toThrow('bad');
    expect(calls).toBe(1);
  });

  it(`gives up after ${CONFLICT_ATTEMPTS} lost races`, async () => {
    const store = await seeded();
    store.failNextWrites = CONFLICT_ATTEMPTS;
    let calls = 0;
    await expect(
      updateFramework(store, 'f1', () => {
        calls++;
        return { set: { name: 'x' }, result: undefined };
      }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(calls).toBe(CONFLICT_ATTEMPTS);
    expect((await getFramework(store, 'f1'))?.name).toBe('f1');
  });
});
