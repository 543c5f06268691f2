/**
 * The stored layout of an agent's ledger (lib/adapters/agent-item.ts): every entry comes back as
 * it went in, an entry in the map form of an older record is read as it is, and a busy agent's
 * record is billed a fraction of what the map form cost.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeAgentItem,
  decodeLedgerEntry,
  encodeAgentItem,
  encodeLedgerEntry,
  ledgerEntryPath,
} from '../../../lib/adapters/agent-item.ts';
import { itemSize, writeUnits } from '../../../lib/adapters/dynamo-item-size.ts';
import { ledgerKey } from '../../../lib/core/ledger.ts';
import type { AgentTaskRecord } from '../../../lib/core/model.ts';
import { resources } from '../../../lib/core/resources.ts';

const FW = '3f0c2a8e-6b1d-4c57-9a0e-5d2f7b8c9e01';
const entry = (taskId: string, r = resources({ cpus: 100, mem: 32000 }), role = '*'): AgentTaskRecord => ({
  frameworkId: FW,
  taskId,
  role,
  resources: r,
});

const agent = (tasks: number) => ({
  agentId: 'agent-0f4e2d1c-8b7a-4e3f-9d2c-1b0a9f8e7d6c',
  principal: 'AIDAEXAMPLEPRINCIPAL01',
  hostname: 'node-17.example.internal',
  queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/meso-agent-0f4e2d1c.fifo',
  total: resources({ cpus: 8000, mem: 16384000, disk: 100000000, ports: [[31000, 32000]] }),
  attributes: { rack: 'r1' },
  status: 'ACTIVE',
  offers: {},
  tasks: Object.fromEntries(
    Array.from({ length: tasks }, (_, i) => [ledgerKey(FW, `b${i}`), entry(`b${i}`)] as const),
  ),
  registeredAt: 1_764_000_000_000,
  lastSeenAt: 1_764_000_000_000,
  shard: 0,
  version: 1234,
});

const scalar = fc.integer({ min: 0, max: 2 ** 40 });
const range = fc
  .tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 100 }))
  .map(([b, n]) => [b, Math.min(65535, b + n)] as [number, number]);
const part = fc.record({
  cpus: scalar,
  mem: scalar,
  disk: scalar,
  gpus: scalar,
  ports: fc.array(range, { maxLength: 3 }),
});
const id = fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/);
const anEntry = fc.record(
  {
    frameworkId: id,
    taskId: id,
    role: fc.constantFrom('*', 'eng', 'eng/ci', 'analytics'),
    resources: fc
      .tuple(
        part,
        fc.option(fc.dictionary(fc.constantFrom('eng', 'ops'), part, { minKeys: 1 }), { nil: undefined }),
      )
      .map(([p, reserved]) => resources({ ...p, ...(reserved ? { reserved } : {}) })),
  },
  { requiredKeys: ['frameworkId', 'taskId', 'resources'] },
);

describe('an agent ledger entry as stored', () => {
  it('comes back as it went in, for any resources, reservations and role (or none)', () => {
    fc.assert(
      fc.property(anEntry, (e) => {
        const key = ledgerKey(e.frameworkId, e.taskId!);
        const stored = encodeLedgerEntry(key, e);
        expect(typeof stored).toBe('string');
        expect(decodeLedgerEntry(key, JSON.parse(JSON.stringify(stored)))).toEqual(e);
      }),
    );
  });

  it('is kept as a map when its key does not name it (an entry of an older record) and read back as it is', () => {
    const old: AgentTaskRecord = { frameworkId: FW, role: '*', resources: resources({ cpus: 100 }) };
    expect(encodeLedgerEntry('b1', old)).toBe(old);
    expect(decodeLedgerEntry('b1', old)).toBe(old);
    const misnamed = entry('b1');
    expect(encodeLedgerEntry(ledgerKey('other', 'b1'), misnamed)).toBe(misnamed);
  });

  it('a whole record comes back as it went in, old map entries and all; a patch without a ledger is left as it is', () => {
    const a = agent(5);
    const withOld = {
      ...a,
      tasks: { ...a.tasks, b1: { frameworkId: 'f2', resources: resources({ cpus: 1 }) } },
    };
    const stored = encodeAgentItem(withOld);
    // The framework's id is stored once, its tasks' entries under it; the old entry stays a map.
    expect(Object.keys(stored.ledger as object)).toEqual([FW]);
    expect(Object.keys(stored.tasks as object)).toEqual(['b1']);
    expect(decodeAgentItem(JSON.parse(JSON.stringify(stored)))).toEqual(withOld);
    const patch = { offers: {}, lastSeenAt: 5 };
    expect(encodeAgentItem(patch)).toBe(patch);
    expect(decodeAgentItem(patch)).toBe(patch);
  });

  it('a release removes the path its entry is stored at', () => {
    expect(ledgerEntryPath(ledgerKey(FW, 'b1'))).toEqual(['ledger', FW, 'b1']);
    expect(ledgerEntryPath(ledgerKey(FW, 'a/b'))).toEqual(['ledger', FW, 'a/b']);
    expect(ledgerEntryPath('b1')).toEqual(['tasks', 'b1']);
  });
});

describe('what a busy agent record costs to write', () => {
  it('80 running tasks of 0.1 cpu and 32 MB (an 8-cpu agent full): 2 write units, where the map form took 13', () => {
    // Each task's release writes the whole item, and so does each ACCEPT and offer on the agent.
    const a = agent(80);
    expect(writeUnits(itemSize(a))).toBe(13);
    expect(writeUnits(itemSize(encodeAgentItem(a)))).toBe(2);
    // An entry beyond the first of its framework: its task id, `100,32000` and a byte or two.
    const grow = itemSize(encodeAgentItem(agent(81))) - itemSize(encodeAgentItem(agent(80)));
    expect(grow).toBeLessThanOrEqual('b80'.length + '100,32000'.length + 2);
    expect(encodeLedgerEntry(ledgerKey(FW, 'b1'), entry('b1'))).toBe('100,32000');
  });
});
