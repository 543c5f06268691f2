import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, type Resources, resources } from '../../../lib/core/resources.ts';
import { createDrfSorter, dominantShare, SorterError } from '../../../lib/core/sorter/index.ts';

const cluster = parse('cpus:9;mem:18;disk:0;gpus:0');

describe('dominantShare', () => {
  it('is the largest fraction of any one scalar, skipping zero totals', () => {
    expect(dominantShare(parse('cpus:1;mem:4'), cluster)).toBeCloseTo(4 / 18, 12);
    expect(dominantShare(parse('cpus:3;mem:1'), cluster)).toBeCloseTo(3 / 9, 12);
    // gpus allocated but the cluster total has none: not divided by zero, not counted.
    expect(dominantShare(parse('cpus:0.9;gpus:2'), cluster)).toBeCloseTo(0.1, 12);
    expect(dominantShare(resources(), cluster)).toBe(0);
    expect(dominantShare(parse('disk:5'), parse('disk:10;cpus:1'))).toBe(0.5);
  });
});

describe('createDrfSorter', () => {
  it('puts the lowest dominant share first, ties by client id', () => {
    const s = createDrfSorter(cluster);
    for (const c of ['c', 'a', 'b']) s.add(c);
    expect(s.sort()).toEqual(['a', 'b', 'c']);
    s.allocated('a', parse('cpus:1;mem:4')); // 4/18 = 0.222
    s.allocated('b', parse('cpus:3;mem:1')); // 3/9 = 0.333
    expect(s.sort()).toEqual(['c', 'a', 'b']);
    expect(s.share('a')).toBeCloseTo(4 / 18, 12);
    expect(s.share('b')).toBeCloseTo(1 / 3, 12);
    expect(s.first(() => true)).toBe('c');
    expect(s.first((c) => c !== 'c')).toBe('a');
    expect(s.first((c) => c === 'b')).toBe('b');
    expect(s.first(() => false)).toBeUndefined();
    expect(s.size).toBe(3);
  });

  it('divides by the weight', () => {
    const s = createDrfSorter(cluster);
    s.add('heavy', 2);
    s.add('light');
    s.allocated('heavy', parse('cpus:3'));
    s.allocated('light', parse('cpus:2'));
    expect(s.share('heavy')).toBeCloseTo(1 / 6, 12);
    expect(s.share('light')).toBeCloseTo(2 / 9, 12);
    expect(s.sort()).toEqual(['heavy', 'light']);
  });

  it('unallocated credits back and refuses to go below zero', () => {
    const s = createDrfSorter(cluster);
    s.add('a');
    s.add('b');
    s.allocated('a', parse('cpus:3'));
    expect(s.sort()).toEqual(['b', 'a']);
    s.unallocated('a', parse('cpus:3'));
    expect(s.share('a')).toBe(0);
    expect(s.sort()).toEqual(['a', 'b']);
    expect(() => s.unallocated('a', parse('mem:1'))).toThrow(SorterError);
  });

  it('setTotal recomputes every share and the order', () => {
    const s = createDrfSorter(parse('cpus:10;mem:100'));
    s.add('cpu-heavy');
    s.add('mem-heavy');
    s.allocated('cpu-heavy', parse('cpus:5;mem:10')); // 0.5
    s.allocated('mem-heavy', parse('cpus:1;mem:40')); // 0.4
    expect(s.sort()).toEqual(['mem-heavy', 'cpu-heavy']);
    s.setTotal(parse('cpus:100;mem:100')); // cpu-heavy 0.1, mem-heavy 0.4
    expect(s.sort()).toEqual(['cpu-heavy', 'mem-heavy']);
    expect(s.share('cpu-heavy')).toBeCloseTo(0.1, 12);
  });

  it('remove forgets a client; misuse throws', () => {
    const s = createDrfSorter(cluster);
    s.add('a');
    s.add('b');
    s.remove('a');
    s.remove('nobody');
    expect(s.sort()).toEqual(['b']);
    expect(s.size).toBe(1);
    expect(() => s.share('a')).toThrow(SorterError);
    expect(() => s.allocated('a', parse('cpus:1'))).toThrow(/unknown client "a"/);
    expect(() => s.add('b')).toThrow(/already added/);
    expect(() => s.add('z', 0)).toThrow(/weight/);
    expect(() => s.add('z', Number.NaN)).toThrow(/weight/);
    // Re-adding a removed client starts it from nothing.
    s.add('a');
    expect(s.share('a')).toBe(0);
  });

  it('computes the DRF paper allocation by progressive filling (A: 3 tasks, B: 2 tasks)', () => {
    // Ghodsi et al. 2011: 9 CPUs, 18 GB; A's tasks need <1 CPU, 4 GB>, B's <3 CPU, 1 GB>.
    const total = parse('cpus:9;mem:18432');
    const demand: Record<string, Resources> = { A: parse('cpus:1;mem:4096'), B: parse('cpus:3;mem:1024') };
    const s = createDrfSorter(total);
    s.add('A');
    s.add('B');
    let free = { cpus: total.cpus, mem: total.mem };
    const tasks: Record<string, number> = { A: 0, B: 0 };
    for (;;) {
      // Serve the lowest dominant share whose next task still fits.
      const next = s.first((c) => demand[c]!.cpus <= free.cpus && demand[c]!.mem <= free.mem);
      if (next === undefined) break;
      s.allocated(next, demand[next]!);
      free = { cpus: free.cpus - demand[next]!.cpus, mem: free.mem - demand[next]!.mem };
      tasks[next]!++;
    }
    expect(tasks).toEqual({ A: 3, B: 2 });
    expect(s.share('A')).toBeCloseTo(2 / 3, 12);
    expect(s.share('B')).toBeCloseTo(2 / 3, 12);
  });
});

/** A reference sorter: recompute and fully sort every time. */
function naiveOrder(alloc: Map<string, Resources & { weight: number }>, total: Resources): string[] {
  return [...alloc.entries()]
    .map(([id, a]) => ({ id, share: dominantShare(a, total) / a.weight }))
    .sort((x, y) => x.share - y.share || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
    .map((x) => x.id);
}

type Op =
  | { op: 'add'; client: string; weight: number }
  | { op: 'remove'; client: string }
  | { op: 'alloc'; client: string; cpus: number; mem: number }
  | { op: 'unalloc'; client: string; fraction: number }
  | { op: 'total'; cpus: number; mem: number }
  | { op: 'first'; eligible: string[] };

const clientArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), client: clientArb, weight: fc.constantFrom(0.5, 1, 2, 3) }),
  fc.record({ op: fc.constant('remove' as const), client: clientArb }),
  fc.record({
    op: fc.constant('alloc' as const),
    client: clientArb,
    cpus: fc.integer({ min: 0, max: 4000 }),
    mem: fc.integer({ min: 0, max: 8000 }),
  }),
  fc.record({
    op: fc.constant('alloc' as const),
    client: clientArb,
    cpus: fc.constant(1000),
    mem: fc.constant(0),
  }),
  fc.record({ op: fc.constant('unalloc' as const), client: clientArb, fraction: fc.constantFrom(0, 0.5, 1) }),
  fc.record({
    op: fc.constant('total' as const),
    cpus: fc.integer({ min: 0, max: 100_000 }),
    mem: fc.integer({ min: 1, max: 100_000 }),
  }),
  fc.record({
    op: fc.constant('first' as const),
    eligible: fc.subarray(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']),
  }),
);

describe('DRF sorter against a reference that re-sorts every time', () => {
  it('agrees on sort(), first() and share() after any sequence of operations', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        let total = parse('cpus:20;mem:40');
        const s = createDrfSorter(total);
        const model = new Map<string, Resources & { weight: number }>();
        for (const o of ops) {
          const m = 'client' in o ? model.get(o.client) : undefined;
          switch (o.op) {
            case 'add':
              if (m) expect(() => s.add(o.client, o.weight)).toThrow(SorterError);
              else {
                s.add(o.client, o.weight);
                model.set(o.client, { ...resources(), weight: o.weight });
              }
              break;
            case 'remove':
              s.remove(o.client);
              model.delete(o.client);
              break;
            case 'alloc':
              if (!m) break;
              s.allocated(o.client, resources({ cpus: o.cpus, mem: o.mem }));
              model.set(o.client, { ...m, cpus: m.cpus + o.cpus, mem: m.mem + o.mem });
              break;
            case 'unalloc': {
              if (!m) break;
              const back = resources({
                cpus: Math.floor(m.cpus * o.fraction),
                mem: Math.floor(m.mem * o.fraction),
              });
              s.unallocated(o.client, back);
              model.set(o.client, { ...m, cpus: m.cpus - back.cpus, mem: m.mem - back.mem });
              break;
            }
            case 'total':
              total = resources({ cpus: o.cpus, mem: o.mem });
              s.setTotal(total);
              break;
            case 'first': {
              const expected = naiveOrder(model, total).find((c) => o.eligible.includes(c));
              expect(s.first((c) => o.eligible.includes(c))).toBe(expected);
              break;
            }
          }
          const expected = naiveOrder(model, total);
          expect(s.sort()).toEqual(expected);
          expect(s.first(() => true)).toBe(expected[0]);
          expect(s.size).toBe(model.size);
          for (const [id, a] of model) expect(s.share(id)).toBe(dominantShare(a, total) / a.weight);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('first() finds the best eligible client among many, also after removals', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cpus: fc.integer({ min: 0, max: 50 }), weight: fc.constantFrom(1, 2) }), {
          minLength: 1,
          maxLength: 120,
        }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (clients, picks) => {
          const total = parse('cpus:10');
          const s = createDrfSorter(total);
          const model = new Map<string, Resources & { weight: number }>();
          clients.forEach((c, i) => {
            const id = `c${String(i).padStart(3, '0')}`;
            s.add(id, c.weight);
            s.allocated(id, resources({ cpus: c.cpus }));
            model.set(id, { ...resources({ cpus: c.cpus }), weight: c.weight });
          });
          const order = naiveOrder(model, total);
          // Every single client is reachable on its own...
          for (const id of order) expect(s.first((c) => c === id)).toBe(id);
          // ...and a sparse eligible set yields its best member.
          const eligible = new Set(picks.map((p) => order[p % order.length]!));
          expect(s.first((c) => eligible.has(c))).toBe(order.find((c) => eligible.has(c)));
          // Removing clients anywhere in the heap keeps the order right.
          for (const p of picks) {
            const id = [...model.keys()][p % model.size];
            if (id === undefined) continue;
            s.remove(id);
            model.delete(id);
            const after = naiveOrder(model, total);
            expect(s.sort()).toEqual(after);
            // sort() copies and sorts; first() relies on the heap itself being in order.
            expect(s.first(() => true)).toBe(after[0]);
            expect(s.first((c) => eligible.has(c))).toBe(after.find((c) => eligible.has(c)));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
