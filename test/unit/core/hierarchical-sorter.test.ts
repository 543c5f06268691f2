import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from '../../../lib/core/resources.ts';
import {
  createHierarchicalSorter,
  dominantShare,
  isWithinRole,
  parentRole,
  roleAndAncestors,
  type Scalars,
  SorterError,
  type TreeNode,
} from '../../../lib/core/sorter/index.ts';

const total = parse('cpus:100;mem:102400');

describe('role paths', () => {
  it('knows parents, ancestors and subtrees', () => {
    expect(parentRole('eng/web/x')).toBe('eng/web');
    expect(parentRole('eng')).toBe('');
    expect(roleAndAncestors('eng/web/x')).toEqual(['eng/web/x', 'eng/web', 'eng']);
    expect(isWithinRole('eng/web', 'eng')).toBe(true);
    expect(isWithinRole('eng', 'eng')).toBe(true);
    expect(isWithinRole('engine', 'eng')).toBe(false);
    expect(isWithinRole('eng', 'eng/web')).toBe(false);
  });
});

describe('createHierarchicalSorter', () => {
  it('orders roles by weighted dominant share at each level, then frameworks within a role', () => {
    const s = createHierarchicalSorter(total, { weights: { eng: 3 } });
    const web = s.addLeaf('eng/web', 'f1');
    const ads = s.addLeaf('ads', 'f2');
    const batch = s.addLeaf('eng/batch', 'f3');
    s.charge(web, parse('cpus:30'));
    s.charge(ads, parse('cpus:20'));
    // eng holds 0.3 / weight 3 = 0.1 < ads 0.2; within eng, batch (0) before web (0.3).
    expect(s.sort()).toEqual(['eng/batch/f3', 'eng/web/f1', 'ads/f2']);
    s.charge(batch, parse('cpus:40'));
    // eng 0.7 / 3 ≈ 0.233 > ads 0.2.
    expect(s.sort()).toEqual(['ads/f2', 'eng/web/f1', 'eng/batch/f3']);
    expect(s.findRole('eng')!.share).toBeCloseTo(0.7 / 3, 12);
    expect(s.findRole('eng')!.cpus).toBe(70_000);
  });

  it('puts frameworks directly in a role in a group that competes with its child roles', () => {
    const s = createHierarchicalSorter(total);
    const own = s.addLeaf('eng', 'own');
    s.addLeaf('eng/web', 'web');
    s.charge(own, parse('cpus:10'));
    expect(s.sort()).toEqual(['eng/web/web', 'eng/own']);
    const eng = s.findRole('eng')!;
    expect(eng.children.map((c) => c.kind)).toEqual(['role', 'group']);
    expect(eng.group!.leafCount).toBe(1);
  });

  it('walks depth first, asks before entering a subtree, and skips subtrees without leaves', () => {
    const s = createHierarchicalSorter(total);
    s.addLeaf('a', 'f1');
    s.addLeaf('b/c', 'f2');
    s.role('empty/deep');
    const entered: string[] = [];
    const left: string[] = [];
    const first = s.walk(
      (leaf) => leaf.client === 'f2',
      (n) => {
        entered.push(`${n.kind}:${n.role}`);
        return n.role !== 'a';
      },
      (n) => left.push(`${n.kind}:${n.role}`),
    );
    expect(first?.client).toBe('f2');
    expect(entered).toEqual(['role:a', 'role:b', 'role:b/c', 'group:b/c']);
    expect(left).toEqual(['group:b/c', 'role:b/c', 'role:b']);
    expect(s.walk(() => false)).toBeUndefined();
  });

  it('credits back, refuses to go below zero, and refuses bad weights', () => {
    const s = createHierarchicalSorter(total);
    const a = s.addLeaf('x', 'a');
    const b = s.addLeaf('y', 'b');
    s.charge(a, parse('cpus:10'));
    s.charge(b, parse('mem:20480'));
    expect(s.sort()).toEqual(['x/a', 'y/b']);
    s.charge(a, parse('cpus:10'), -1);
    expect(s.findRole('x')!.share).toBe(0);
    expect(() => s.charge(a, parse('cpus:1'), -1)).toThrow(SorterError);
    expect(() => s.addLeaf('x', 'a')).toThrow(/already added/);
    expect(() => createHierarchicalSorter(total, { weights: { x: 0 } }).role('x')).toThrow(/weight/);
  });
});

// A reference that rebuilds the whole order from scratch: sort each level by (share, id).
function referenceOrder(
  leaves: { role: string; client: string; alloc: Scalars }[],
  weights: Record<string, number>,
  tot: Scalars,
): string[] {
  const roles = new Set<string>();
  for (const l of leaves) for (let r = l.role; r !== ''; r = parentRole(r)) roles.add(r);
  const sumIn = (pred: (l: { role: string }) => boolean): Scalars => {
    const s = { cpus: 0, mem: 0, disk: 0, gpus: 0 };
    for (const l of leaves)
      if (pred(l)) {
        s.cpus += l.alloc.cpus;
        s.mem += l.alloc.mem;
      }
    return s;
  };
  const order = (role: string): string[] => {
    type Item = { id: string; share: number; expand: () => string[] };
    const items: Item[] = [];
    for (const r of roles) {
      if (parentRole(r) !== role) continue;
      items.push({
        id: r.slice(r.lastIndexOf('/') + 1),
        share:
          dominantShare(
            sumIn((l) => isWithinRole(l.role, r)),
            tot,
          ) / (weights[r] ?? 1),
        expand: () => order(r),
      });
    }
    const own = leaves.filter((l) => l.role === role);
    if (role !== '' && own.length > 0) {
      items.push({
        id: '.',
        share: dominantShare(
          sumIn((l) => l.role === role),
          tot,
        ),
        expand: () =>
          own
            .map((l) => ({ id: l.client, share: dominantShare(l.alloc, tot) }))
            .sort((a, b) => a.share - b.share || (a.id < b.id ? -1 : 1))
            .map((l) => `${role}/${l.id}`),
      });
    }
    items.sort((a, b) => a.share - b.share || (a.id < b.id ? -1 : 1));
    return items.flatMap((i) => i.expand());
  };
  return order('');
}

describe('hierarchical sorter against a reference that re-sorts everything', () => {
  it('agrees on the order after any sequence of charges and credits', () => {
    const roleArb = fc.constantFrom('a', 'a/x', 'a/y', 'b', 'b/z/q', 'c');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(roleArb, fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 10 }),
        fc.array(
          fc.record({
            leaf: fc.nat(),
            cpus: fc.integer({ min: 0, max: 20_000 }),
            mem: fc.integer({ min: 0, max: 20_000_000 }),
            credit: fc.boolean(),
          }),
          { maxLength: 40 },
        ),
        fc.record({
          a: fc.integer({ min: 1, max: 4 }),
          b: fc.integer({ min: 1, max: 4 }),
          'a/x': fc.integer({ min: 1, max: 3 }),
        }),
        (leafSpecs, ops, weights) => {
          const s = createHierarchicalSorter(total, { weights });
          const leaves: { role: string; client: string; alloc: Scalars; node: TreeNode }[] = [];
          for (const [role, n] of leafSpecs) {
            const client = `f${n}`;
            if (leaves.some((l) => l.role === role && l.client === client)) continue;
            leaves.push({
              role,
              client,
              alloc: { cpus: 0, mem: 0, disk: 0, gpus: 0 },
              node: s.addLeaf(role, client),
            });
          }
          for (const op of ops) {
            const l = leaves[op.leaf % leaves.length]!;
            const r = { cpus: op.cpus, mem: op.mem, disk: 0, gpus: 0 };
            if (op.credit && l.alloc.cpus >= r.cpus && l.alloc.mem >= r.mem) {
              s.charge(l.node, r, -1);
              l.alloc.cpus -= r.cpus;
              l.alloc.mem -= r.mem;
            } else if (!op.credit) {
              s.charge(l.node, r);
              l.alloc.cpus += r.cpus;
              l.alloc.mem += r.mem;
            }
          }
          expect(s.sort()).toEqual(
            referenceOrder(leaves, weights, { cpus: 100_000, mem: 102_400_000, disk: 0, gpus: 0 }),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
