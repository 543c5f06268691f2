import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  add,
  contains,
  EMPTY,
  equals,
  format,
  fromFixed,
  fromWire,
  isEmpty,
  normalizeRanges,
  parse,
  portCount,
  type Range,
  ResourceError,
  type Resources,
  rangesContain,
  resources,
  subtract,
  sum,
  takePorts,
  toFixed,
  toWire,
} from '../../../lib/core/resources.ts';

/** Normalized port ranges inside [lo, hi]. */
const portsIn = (lo: number, hi: number): fc.Arbitrary<Range[]> =>
  fc
    .array(
      fc.tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: 0, max: 50 })).map(([b, n]): Range => {
        const e = Math.min(hi, b + n);
        return [b, e];
      }),
      { maxLength: 5 },
    )
    .map((r) => normalizeRanges(r));

const scalar = fc.integer({ min: 0, max: 1_000_000_000 });
const res = (ports: fc.Arbitrary<Range[]> = portsIn(0, 65535)): fc.Arbitrary<Resources> =>
  fc.record({ cpus: scalar, mem: scalar, disk: scalar, gpus: scalar, ports }).map((r) => resources(r));

describe('parse', () => {
  it('parses the Mesos agent syntax into thousandths and ranges', () => {
    const r = parse('cpus:4;mem:8192;ports:[31000-32000]');
    expect(r).toEqual({ cpus: 4000, mem: 8_192_000, disk: 0, gpus: 0, ports: [[31000, 32000]] });
  });

  it('accepts decimals, several ranges and whitespace, and merges adjacent ranges', () => {
    const r = parse(' cpus: 0.5 ; disk:100;gpus:1; ports:[33000-33010, 31000-31999,32000-32000] ');
    expect(r.cpus).toBe(500);
    expect(r.disk).toBe(100_000);
    expect(r.gpus).toBe(1000);
    expect(r.ports).toEqual([
      [31000, 32000],
      [33000, 33010],
    ]);
  });

  it('round-trips through format', () => {
    const text = 'cpus:2.5;mem:1024;disk:10;ports:[80-80,443-444]';
    expect(format(parse(text))).toBe(text);
    expect(format(EMPTY)).toBe('{}');
  });

  it.each([
    ['cpus:-1', /non-negative/],
    ['mem:NaN', /non-negative/],
    ['cpus:Infinity', /non-negative/],
    ['cpus:', /non-negative/],
    ['cpus:1e3', /non-negative/],
    ['foo:1', /unknown resource "foo"/],
    ['cpus', /expected name:value/],
    ['ports:31000-32000', /ports must look like/],
    ['ports:[32000-31000]', /invalid port range/],
    ['ports:[31000-70000]', /invalid port range/],
    ['ports:[a-b]', /invalid port range/],
  ])('rejects %s', (text, message) => {
    expect(() => parse(text)).toThrow(ResourceError);
    expect(() => parse(text)).toThrow(message);
  });
});

describe('fixed point', () => {
  it('rejects negative and non-finite values', () => {
    expect(() => toFixed(-0.001, 'cpus')).toThrow(/cpus must not be negative/);
    expect(() => toFixed(Number.NaN, 'mem')).toThrow(/mem must be a finite number/);
    expect(() => toFixed(Number.POSITIVE_INFINITY)).toThrow(ResourceError);
    expect(() => fromWire({ cpus: -1 })).toThrow(ResourceError);
  });

  it('has no float drift after adding 0.1 cpus 1000 times', () => {
    const tenth = fromWire({ cpus: 0.1 });
    let acc = EMPTY;
    for (let i = 0; i < 1000; i++) acc = add(acc, tenth);
    expect(acc.cpus).toBe(100_000);
    expect(fromFixed(acc.cpus)).toBe(100);
    expect(toWire(acc)).toEqual({ cpus: 100 });
    // Subtracting it back lands exactly on zero.
    for (let i = 0; i < 1000; i++) acc = subtract(acc, tenth);
    expect(isEmpty(acc)).toBe(true);
  });

  it('round-trips wire values with three decimals', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000_000 }), (thousandths) => {
        const w = thousandths / 1000;
        expect(toWire(fromWire({ mem: w }))).toEqual(thousandths === 0 ? {} : { mem: w });
      }),
    );
  });
});

describe('arithmetic properties', () => {
  it('add is commutative and associative', () => {
    fc.assert(
      fc.property(res(), res(), res(), (a, b, c) => {
        expect(equals(add(a, b), add(b, a))).toBe(true);
        expect(equals(add(add(a, b), c), add(a, add(b, c)))).toBe(true);
      }),
    );
  });

  it('a + b contains both, and (a + b) − b = a when ports are disjoint', () => {
    fc.assert(
      fc.property(res(portsIn(0, 30000)), res(portsIn(30002, 65535)), (a, b) => {
        const s = add(a, b);
        expect(contains(s, a)).toBe(true);
        expect(contains(s, b)).toBe(true);
        expect(subtract(s, b)).toEqual(a);
        expect(subtract(s, a)).toEqual(b);
      }),
    );
  });

  it('subtract succeeds exactly when contains holds, and the result plus b is a', () => {
    fc.assert(
      fc.property(res(), res(), (a, b) => {
        if (contains(a, b)) {
          const d = subtract(a, b);
          expect(contains(a, d)).toBe(true);
          expect(equals(add(d, b), a)).toBe(true);
          expect(Object.values(d).every((v) => typeof v !== 'number' || v >= 0)).toBe(true);
        } else {
          expect(() => subtract(a, b)).toThrow(ResourceError);
        }
      }),
    );
  });

  it('contains is reflexive, and everything contains EMPTY', () => {
    fc.assert(
      fc.property(res(), (a) => {
        expect(contains(a, a)).toBe(true);
        expect(contains(a, EMPTY)).toBe(true);
        expect(subtract(a, a)).toEqual(EMPTY);
      }),
    );
  });

  it('contains is false when any one scalar is larger', () => {
    const a = parse('cpus:2;mem:100;disk:10;gpus:1');
    for (const more of ['cpus:2.001', 'mem:100.001', 'disk:10.001', 'gpus:1.001']) {
      expect(contains(a, parse(more))).toBe(false);
    }
  });

  it('sum adds a list', () => {
    expect(sum([parse('cpus:1'), parse('cpus:2;mem:3'), parse('ports:[1-2]')])).toEqual(
      parse('cpus:3;mem:3;ports:[1-2]'),
    );
    expect(sum([])).toEqual(EMPTY);
  });
});

describe('port ranges', () => {
  it('contains: a range inside one range, not across a gap', () => {
    const a = parse('ports:[31000-31010,31020-31030]').ports;
    expect(rangesContain(a, [[31000, 31010]])).toBe(true);
    expect(rangesContain(a, [[31005, 31006]])).toBe(true);
    expect(
      rangesContain(a, [
        [31001, 31002],
        [31025, 31030],
      ]),
    ).toBe(true);
    expect(rangesContain(a, [[31009, 31021]])).toBe(false);
    expect(rangesContain(a, [[31015, 31015]])).toBe(false);
    expect(rangesContain(a, [[30999, 31000]])).toBe(false);
    expect(rangesContain(a, [[31030, 31031]])).toBe(false);
  });

  it('subtract punches holes and trims ends', () => {
    const a = parse('ports:[31000-32000]');
    expect(subtract(a, parse('ports:[31100-31199]')).ports).toEqual([
      [31000, 31099],
      [31200, 32000],
    ]);
    expect(subtract(a, parse('ports:[31000-31000,32000-32000]')).ports).toEqual([[31001, 31999]]);
    expect(subtract(a, a).ports).toEqual([]);
    expect(() => subtract(a, parse('ports:[30999-31000]'))).toThrow(ResourceError);
  });

  it('subtract then add restores the ranges (property)', () => {
    fc.assert(
      fc.property(portsIn(1000, 1400), portsIn(1000, 1400), (a, b) => {
        const ra = resources({ ports: a });
        const rb = resources({ ports: b });
        const counted = portCount(a);
        if (contains(ra, rb)) {
          const d = subtract(ra, rb);
          expect(portCount(d.ports)).toBe(counted - portCount(b));
          expect(add(d, rb).ports).toEqual(a);
          // No port of b survives in d.
          for (const [b0, b1] of b)
            for (let p = b0; p <= b1; p++) expect(rangesContain(d.ports, [[p, p]])).toBe(false);
        }
      }),
    );
  });

  it('takePorts takes the lowest ports first and refuses to overdraw', () => {
    const ranges = parse('ports:[31000-31001,31005-31010]').ports;
    expect(takePorts(ranges, 3)).toEqual([
      [31000, 31001],
      [31005, 31005],
    ]);
    expect(() => takePorts(ranges, 9)).toThrow(/not enough ports/);
  });
});
