import { describe, expect, it } from 'vitest';
import { ResourceError } from '../../../lib/core/resources.ts';
import { formatQuantities, parseQuantities, roleConfigProblems } from '../../../lib/core/roles.ts';

describe('quantities', () => {
  it('parse only the names given, in thousandths, and format back', () => {
    const q = parseQuantities('cpus:10;mem:20480.5');
    expect(q).toEqual({ cpus: 10_000, mem: 20_480_500 });
    expect('disk' in q).toBe(false);
    expect(formatQuantities(q)).toBe('cpus:10;mem:20480.5');
    expect(formatQuantities({ mem: 0 })).toBe('mem:0');
    expect(formatQuantities(undefined)).toBe('{}');
    expect(parseQuantities('')).toEqual({});
  });

  it('refuse ports, unknown names, negatives and repeats', () => {
    expect(() => parseQuantities('ports:[1-2]')).toThrow(ResourceError);
    expect(() => parseQuantities('bananas:1')).toThrow(/quota covers/);
    expect(() => parseQuantities('cpus:-1')).toThrow(/non-negative/);
    expect(() => parseQuantities('cpus:1;cpus:2')).toThrow(/twice/);
    expect(() => parseQuantities('cpus')).toThrow(/name:value/);
  });
});

describe('roleConfigProblems', () => {
  it('accepts consistent settings', () => {
    expect(
      roleConfigProblems([
        { role: 'eng', weight: 2, guarantee: { cpus: 10_000 }, limit: { cpus: 20_000 } },
        { role: 'eng/web', guarantee: { cpus: 6_000 }, limit: { cpus: 20_000 } },
        { role: 'eng/batch', guarantee: { cpus: 4_000 } },
        { role: 'ads' },
      ]),
    ).toEqual([]);
  });

  it('names every problem: bad names and weights, guarantee over limit, children over their parent', () => {
    const problems = roleConfigProblems([
      { role: 'bad role' },
      { role: 'w', weight: 0 },
      { role: 'g', guarantee: { mem: 5_000 }, limit: { mem: 1_000 } },
      { role: 'p', guarantee: { cpus: 4_000 }, limit: { cpus: 8_000 } },
      { role: 'p/a', guarantee: { cpus: 3_000 }, limit: { cpus: 9_000 } },
      { role: 'p/b', guarantee: { cpus: 2_000 } },
    ]);
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/role "bad role": it contains whitespace/);
    expect(problems.join('\n')).toMatch(/role w: weight must be a number > 0/);
    expect(problems.join('\n')).toMatch(/role g: mem guarantee 5 is above its limit 1/);
    expect(problems.join('\n')).toMatch(/role p\/a: cpus limit 9 is above p's limit 8/);
    expect(problems.join('\n')).toMatch(/role p: its children are guaranteed 5 cpus, more than its own 4/);
  });

  it('checks a child against its nearest configured ancestor', () => {
    expect(
      roleConfigProblems([
        { role: 'top', limit: { cpus: 1_000 } },
        { role: 'top/mid/leaf', guarantee: { cpus: 2_000 } },
      ]),
    ).toEqual(["role top/mid/leaf: cpus guarantee 2 is above top's limit 1"]);
  });
});
