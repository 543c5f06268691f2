import { describe, expect, it } from 'vitest';
import { MAX_FILTERS, revive, suppress, withFilter } from '../../../lib/core/framework-change.ts';
import { parse } from '../../../lib/core/resources.ts';

const r = parse('cpus:1');

describe('refusal filters', () => {
  it('adds a filter and drops those that ended', () => {
    const filters = { a1: { until: 100, resources: r }, a2: { until: 300, resources: r } };
    expect(Object.keys(withFilter(filters, 'a3', r, 200, 500)).sort()).toEqual(['a2', 'a3']);
  });

  it(`keeps at most ${MAX_FILTERS}, dropping those that end soonest`, () => {
    const filters = Object.fromEntries(
      Array.from({ length: MAX_FILTERS }, (_, i) => [`a${i}`, { until: 1_000 + i, resources: r }]),
    );
    const next = withFilter(filters, 'new', r, 0, 5_000);
    expect(Object.keys(next)).toHaveLength(MAX_FILTERS);
    expect(next.a0).toBeUndefined();
    expect(next.new?.until).toBe(5_000);
  });
});

describe('SUPPRESS and REVIVE', () => {
  const fw = { roles: ['a', 'b', 'c'], suppressedRoles: ['c'] };
  it('SUPPRESS adds only the framework’s own roles, all of them by default', () => {
    expect(suppress(fw, ['b', 'other'])).toEqual({ suppressedRoles: ['b', 'c'] });
    expect(suppress(fw)).toEqual({ suppressedRoles: ['a', 'b', 'c'] });
  });
  it('REVIVE clears every filter and ends the SUPPRESS of the roles named', () => {
    expect(revive(fw, ['a'])).toEqual({ filters: {}, suppressedRoles: ['c'] });
    expect(revive(fw)).toEqual({ filters: {}, suppressedRoles: [] });
  });
});
