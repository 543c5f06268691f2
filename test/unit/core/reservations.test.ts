import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  add,
  claim,
  contains,
  EMPTY,
  equals,
  flatten,
  format,
  fromWire,
  isEmpty,
  parse,
  ResourceError,
  type Resources,
  reservedFor,
  resources,
  roleNameProblem,
  scalarOf,
  subtract,
  toWire,
  unreserved,
} from '../../../lib/core/resources.ts';

describe('reservations: parse and format', () => {
  it('parses Mesos syntax with roles, keeping the unreserved part at the top level', () => {
    const r = parse('cpus(eng):2;mem(eng):1024;cpus:2;ports(eng/web):[8000-8010];mem:512');
    expect(r.cpus).toBe(2000);
    expect(r.mem).toBe(512_000);
    expect(reservedFor(r, 'eng')).toEqual({ cpus: 2000, mem: 1_024_000, disk: 0, gpus: 0, ports: [] });
    expect(reservedFor(r, 'eng/web').ports).toEqual([[8000, 8010]]);
    expect(reservedFor(r, 'ads')).toEqual(EMPTY);
    expect(format(r)).toBe('cpus:2;mem:512;cpus(eng):2;mem(eng):1024;ports(eng/web):[8000-8010]');
    expect(parse(format(r))).toEqual(r);
  });

  it('treats cpus(*) as unreserved and leaves `reserved` out when nothing is reserved', () => {
    const r = parse('cpus(*):2;cpus:1');
    expect(r).toEqual(parse('cpus:3'));
    expect('reserved' in r).toBe(false);
    expect('reserved' in parse('cpus(eng):0;mem:1')).toBe(false);
  });

  it('rejects invalid roles and unknown names', () => {
    expect(() => parse('cpus(a b):1')).toThrow(ResourceError);
    expect(() => parse('cpus(/eng):1')).toThrow(/empty path segment/);
    expect(() => parse('cpus(eng/..):1')).toThrow(/"\.\."/);
    expect(() => parse('cpus(-x):1')).toThrow(/starts with -/);
    expect(() => parse('bananas(eng):1')).toThrow(/unknown resource/);
    expect(roleNameProblem('eng/web')).toBeUndefined();
    expect(roleNameProblem('*')).toBeUndefined();
    expect(roleNameProblem('')).toMatch(/empty/);
    expect(roleNameProblem('a*b')).toMatch(/contains/);
  });

  it('round-trips through the wire form, and rejects reservations for invalid roles', () => {
    const r = parse('cpus(eng):1.5;mem:64;disk(ads):10');
    expect(toWire(r)).toEqual({ mem: 64, reserved: { ads: { disk: 10 }, eng: { cpus: 1.5 } } });
    expect(fromWire(toWire(r))).toEqual(r);
    expect(fromWire({ cpus: 1, reserved: { '*': { cpus: 1 } } })).toEqual(parse('cpus:2'));
    expect(() => fromWire({ reserved: { 'a b': { cpus: 1 } } })).toThrow(/cannot reserve/);
    expect(() => fromWire({ reserved: { eng: { cpus: -1 } } })).toThrow(/cpus\(eng\)/);
  });

  it('is safe with role names that are Object.prototype names', () => {
    const r = parse('cpus(__proto__):1;cpus(constructor):2');
    expect(reservedFor(r, '__proto__').cpus).toBe(1000);
    expect(reservedFor(r, 'constructor').cpus).toBe(2000);
    expect(reservedFor(r, 'toString')).toEqual(EMPTY);
    expect(Object.getPrototypeOf(r.reserved)).toBe(Object.prototype);
    expect(reservedFor(add(r, r), '__proto__').cpus).toBe(2000);
  });
});

describe('reservations: arithmetic', () => {
  it('adds and subtracts per role, and never lets reserved stand in for unreserved', () => {
    const a = parse('cpus:4;cpus(eng):2');
    const b = parse('cpus(eng):1;cpus(ads):1');
    expect(add(a, b)).toEqual(parse('cpus:4;cpus(eng):3;cpus(ads):1'));
    expect(subtract(a, parse('cpus(eng):2'))).toEqual(parse('cpus:4'));
    expect(contains(a, parse('cpus:4'))).toBe(true);
    expect(contains(a, parse('cpus:5'))).toBe(false);
    expect(contains(a, parse('cpus(eng):3'))).toBe(false);
    expect(contains(a, parse('cpus(ads):1'))).toBe(false);
    expect(contains(parse('cpus(eng):10'), parse('cpus:1'))).toBe(false);
    expect(() => subtract(a, parse('cpus(ads):1'))).toThrow(ResourceError);
    expect(isEmpty(subtract(a, a))).toBe(true);
    expect(equals(a, parse('cpus(eng):2;cpus:4'))).toBe(true);
    expect(equals(a, parse('cpus:6'))).toBe(false);
  });

  it('flattens reserved into unreserved for shares and counts', () => {
    const r = parse('cpus:1;cpus(eng):2;mem(ads):3;ports(eng):[1-2];ports:[5-5]');
    expect(flatten(r)).toEqual(parse('cpus:3;mem:3;ports:[1-2,5-5]'));
    expect(scalarOf(r, 'cpus')).toBe(3000);
    expect(unreserved(r)).toEqual(parse('cpus:1;ports:[5-5]'));
  });

  it('keeps the unreserved-only case free of a `reserved` key', () => {
    const r = add(parse('cpus:1'), parse('mem:1'));
    expect('reserved' in r).toBe(false);
    expect('reserved' in subtract(parse('cpus:2;cpus(eng):1'), parse('cpus(eng):1'))).toBe(false);
  });

  const role = fc.constantFrom('eng', 'eng/web', 'ads');
  const part = fc.record({
    cpus: fc.integer({ min: 0, max: 10_000 }),
    mem: fc.integer({ min: 0, max: 10_000 }),
  });
  const res: fc.Arbitrary<Resources> = fc
    .record({ base: part, reserved: fc.array(fc.tuple(role, part), { maxLength: 3 }) })
    .map(({ base, reserved }) =>
      add(
        resources(base),
        reserved.reduce<Resources>(
          (acc, [r, p]) => add(acc, resources({ reserved: { [r]: resources(p) } })),
          EMPTY,
        ),
      ),
    );

  it('satisfies the same laws as unreserved resources (property)', () => {
    fc.assert(
      fc.property(res, res, res, (a, b, c) => {
        expect(add(a, b)).toEqual(add(b, a));
        expect(add(add(a, b), c)).toEqual(add(a, add(b, c)));
        expect(contains(add(a, b), a)).toBe(true);
        expect(subtract(add(a, b), b)).toEqual(a);
        expect(contains(a, b)).toBe(
          (() => {
            try {
              subtract(a, b);
              return true;
            } catch {
              return false;
            }
          })(),
        );
        expect(fromWire(toWire(a))).toEqual(a);
        expect(parse(format(a))).toEqual(a);
        // Flattening never loses or invents a scalar.
        expect(flatten(add(a, b))).toEqual(add(flatten(a), flatten(b)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('claim', () => {
  it('takes reserved resources first, then unreserved, for a plain request', () => {
    const offer = parse('cpus(eng):1;cpus:4;mem(eng):100;mem:1000');
    expect(claim(offer, parse('cpus:2;mem:50'))).toEqual(parse('cpus(eng):1;cpus:1;mem(eng):50'));
    expect(claim(offer, parse('cpus:5;mem:1100'))).toEqual(offer);
    expect(claim(offer, parse('cpus:6'))).toBeUndefined();
    // A request naming a reservation must be contained as it is.
    expect(claim(offer, parse('cpus(eng):1'))).toEqual(parse('cpus(eng):1'));
    expect(claim(offer, parse('cpus(eng):2'))).toBeUndefined();
    // Without reservations it is plain containment.
    expect(claim(parse('cpus:1'), parse('cpus:1'))).toEqual(parse('cpus:1'));
    expect(claim(parse('cpus:1'), parse('cpus:2'))).toBeUndefined();
  });

  it('takes ports from the reservation that holds them', () => {
    const offer = parse('cpus:1;ports:[31000-31010];ports(eng):[8000-8000]');
    expect(claim(offer, parse('cpus:1;ports:[8000-8000,31000-31000]'))).toEqual(
      parse('cpus:1;ports:[31000-31000];ports(eng):[8000-8000]'),
    );
  });

  it('always returns something the offer contains and that flattens to the request (property)', () => {
    const part = fc.record({
      cpus: fc.integer({ min: 0, max: 5000 }),
      mem: fc.integer({ min: 0, max: 5000 }),
    });
    fc.assert(
      fc.property(part, part, part, part, (u, e, w, want) => {
        const offer = resources({ ...u, reserved: { eng: resources(e), 'eng/web': resources(w) } });
        const got = claim(offer, resources(want));
        if (got === undefined) expect(contains(flatten(offer), resources(want))).toBe(false);
        else {
          expect(contains(offer, got)).toBe(true);
          expect(flatten(got)).toEqual(resources(want));
        }
      }),
      { numRuns: 300 },
    );
  });
});
