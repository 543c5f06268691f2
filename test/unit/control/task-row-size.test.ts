/**
 * What a task row costs. DynamoDB bills a write by the whole item (a write unit per started KB of
 * the larger of before and after, twice in a transaction) and writes a global index's copy of it
 * too whenever the write changes a projected attribute. A typical task — ids as long as the
 * UUIDs frameworks and agents use, launched by a real ACCEPT, then STARTING, RUNNING with the
 * task already finished as its latest state, and FINISHED, through the real handlers over the
 * in-memory store — must stay within one write unit on every write, and its status writes must
 * leave the tasks table's index alone.
 */
import { describe, expect, it } from 'vitest';
import { itemSize, valueSize, writeUnits } from '../../../lib/adapters/dynamo-item-size.ts';
import { handleAgentCall } from '../../../lib/control/agent-calls.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import { parse } from '../../../lib/core/resources.ts';
import { TABLES } from '../../../lib/definition/tables-queues.ts';
import type { Item, WriteOp } from '../../../lib/ports/store.ts';
import { putAgent, putFramework, record, task, testControl } from './helpers.ts';

// As long as real ids: UUIDs, as the SDK, the agent and most frameworks make them.
const FW = '9baa885a-9802-4ba5-954c-bdc4823fc6da';
const AGENT = '7ab44e66-1bcf-413a-b40f-a58c4d18c8c4';
const TASK = 'f3b2c1d0-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const OFFER = `93d8d8fa-f929-4fd1-a6c4-4a8923574754@${AGENT}`;
const uuid = (n: number) => `11446e24-2ae7-4220-8112-2bdc127c910${n}`;

interface Written {
  readonly what: string;
  readonly bytes: number;
  readonly units: number;
  readonly set: readonly string[];
}

/** A typical task's life; every write to its row with the row's size (the larger of before and after). */
async function typicalTask(): Promise<Written[]> {
  const t = testControl();
  await putFramework(t, FW, { principal: 'fw-principal' });
  await putAgent(t, AGENT, {
    offers: {
      [OFFER]: {
        offerId: OFFER,
        frameworkId: FW,
        role: '*',
        resources: parse('cpus:2;mem:1024'),
        expiresAt: t.now + 60_000,
      },
    },
  });
  const written: Written[] = [];
  const write = t.store.write.bind(t.store);
  t.store.write = async (ops: readonly WriteOp[]) => {
    const mine = ops.filter((op) => op.table === 'tasks');
    const before = await Promise.all(mine.map(() => task(t, FW, TASK)));
    await write(ops);
    for (const [i, op] of mine.entries()) {
      const after = await task(t, FW, TASK);
      const bytes = Math.max(
        before[i] ? itemSize(before[i] as unknown as Item) : 0,
        itemSize(after as unknown as Item),
      );
      written.push({
        what: `${op.kind} ${after.state}`,
        bytes,
        units: writeUnits(bytes, ops.length > 1),
        set: op.kind === 'patch' ? Object.keys(op.set) : [],
      });
    }
  };
  await handleSchedulerCall(
    t.deps,
    record(
      {
        v: 1,
        type: 'ACCEPT',
        frameworkId: FW,
        offerIds: [OFFER],
        operations: [
          {
            type: 'LAUNCH',
            tasks: [
              {
                taskId: TASK,
                agentId: AGENT,
                resources: { cpus: 0.1, mem: 32 },
                command: { shell: true, value: 'true' },
              },
            ],
          },
        ],
      },
      'fw-principal',
    ),
  );
  const finished = {
    state: 'TASK_FINISHED',
    source: 'SOURCE_EXECUTOR',
    message: 'exited with code 0',
    timestamp: t.now + 230,
    exitCode: 0,
    stdoutTail: '',
    stderrTail: '',
  };
  const update = (n: number, state: string, extra: object = {}, latest?: object) =>
    handleAgentCall(
      t.deps,
      record(
        {
          v: 1,
          type: 'STATUS_UPDATE',
          agentId: AGENT,
          status: {
            taskId: TASK,
            frameworkId: FW,
            state,
            source: 'SOURCE_EXECUTOR',
            message: 'pid 16460',
            uuid: uuid(n),
            timestamp: t.now + 86,
            ...extra,
          },
          ...(latest ? { latest } : {}),
        },
        'agent-principal',
      ),
    );
  t.now += 200;
  await update(1, 'TASK_STARTING');
  t.now += 200;
  await update(2, 'TASK_RUNNING', {}, finished);
  t.now += 300;
  await update(3, 'TASK_FINISHED', finished);
  expect((await task(t, FW, TASK)).state).toBe('TASK_FINISHED');
  return written;
}

describe('a task row', () => {
  it('costs one write unit a write (two for the transaction that creates it) for a typical task', async () => {
    const written = await typicalTask();
    expect(written.map((w) => w.what)).toEqual([
      'put TASK_STAGING',
      'patch TASK_STARTING',
      'patch TASK_FINISHED',
      'patch TASK_FINISHED',
    ]);
    for (const w of written) expect(w.bytes, w.what).toBeLessThanOrEqual(1024);
    expect(written.reduce((n, w) => n + w.units, 0)).toBe(2 + 1 + 1 + 1);
  });

  it("status writes set no attribute the tasks table's index projects, so they leave the index alone", async () => {
    const written = await typicalTask();
    const [ix] = TABLES.tasks.indexes;
    const projected = new Set<string>([ix.partitionKey, ix.sortKey, ...(ix.include ?? ['*'])]);
    const patches = written.filter((w) => w.set.length > 0);
    expect(patches.length).toBeGreaterThanOrEqual(3);
    for (const w of patches)
      expect(
        w.set.filter((a) => projected.has(a)),
        w.what,
      ).toEqual([]);
  });

  it('is measured by DynamoDB’s size rules', () => {
    // Names count; numbers take a byte per two significant digits plus one; maps and lists 3 bytes
    // plus a byte an element.
    expect(itemSize({ id: 'abc' })).toBe(2 + 3);
    expect(valueSize(1796331317617)).toBe(8);
    expect(valueSize(0.1)).toBe(2);
    expect(valueSize(32000)).toBe(2);
    expect(valueSize({ a: 1 })).toBe(3 + 1 + 2 + 1);
    expect(valueSize(['x', true, null])).toBe(3 + (1 + 1) * 3);
    expect(writeUnits(1024)).toBe(1);
    expect(writeUnits(1025)).toBe(2);
    expect(writeUnits(600, true)).toBe(2);
  });
});
