import { describe, expect, it } from 'vitest';
import {
  agentResources,
  detectedResources,
  diskReserveMb,
  memReserveMb,
  parseAttributes,
  parseShare,
  readMachineFacts,
  shareOf,
  withOverrides,
} from '../../agent/resources.ts';
import { add, format, parse, portCount, ResourceError } from '../../lib/core/resources.ts';
import { tempDir } from './helpers.ts';

const GB = 1024 ** 3;
const facts = { cpus: 8, memBytes: 16 * GB, diskBytes: 100 * GB };

describe('resource detection', () => {
  it('reserves min(1 GB, 10 %) of memory and min(5 GB, 10 %) of disk', () => {
    expect(memReserveMb(16 * 1024)).toBe(1024);
    expect(memReserveMb(2048)).toBe(204);
    expect(diskReserveMb(100 * 1024)).toBe(5 * 1024);
    expect(diskReserveMb(10 * 1024)).toBe(1024);
  });

  it('offers cpus, memory and disk minus reserves, and ports 31000-32000', () => {
    expect(format(detectedResources(facts))).toBe('cpus:8;mem:15360;disk:97280;ports:[31000-32000]');
    expect(format(detectedResources({ cpus: 2, memBytes: 1.5 * GB, diskBytes: 8 * GB }))).toBe(
      'cpus:2;mem:1383;disk:7373;ports:[31000-32000]',
    );
  });

  it('reads this machine', async () => {
    const dir = await tempDir();
    try {
      const f = readMachineFacts(dir.path);
      expect(f.cpus).toBeGreaterThan(0);
      expect(f.memBytes).toBeGreaterThan(0);
      expect(f.diskBytes).toBeGreaterThan(0);
      const r = agentResources(dir.path, 'ports:[5000-5001]');
      expect(r.cpus).toBe(f.cpus * 1000);
      expect(r.ports).toEqual([[5000, 5001]]);
    } finally {
      await dir.remove();
    }
  });
});

describe('--resources overrides', () => {
  const detected = detectedResources(facts);

  it('replaces only the resources the spec names', () => {
    expect(format(withOverrides(detected, 'cpus:2.5;ports:[8000-8100,9000-9000]'))).toBe(
      'cpus:2.5;mem:15360;disk:97280;ports:[8000-8100,9000-9000]',
    );
    expect(format(withOverrides(detected, 'mem:512; disk:0 ;gpus:1'))).toBe(
      'cpus:8;mem:512;gpus:1;ports:[31000-32000]',
    );
  });

  it('an empty or missing spec keeps the detected resources', () => {
    expect(withOverrides(detected, undefined)).toBe(detected);
    expect(withOverrides(detected, '  ')).toBe(detected);
  });

  it('ports:[] offers no ports', () => {
    expect(withOverrides(detected, 'ports:[]').ports).toEqual([]);
  });

  it('rejects malformed specs', () => {
    for (const bad of ['cpus', 'cpus:-1', 'cpus:two', 'ports:31000-32000', 'ports:[2-1]', 'bogus:1']) {
      expect(() => withOverrides(detected, bad), bad).toThrow(ResourceError);
    }
  });
});

describe('--share i/n (several agents on one machine)', () => {
  it('splits every scalar and gives each agent its own ports: together they claim the machine once', () => {
    const machine = detectedResources(facts);
    const shares = [1, 2, 3].map((i) => shareOf(machine, i, 3));
    expect(shares.map(format)).toEqual([
      'cpus:2.666;mem:5120;disk:32426;ports:[31000-31332]',
      'cpus:2.666;mem:5120;disk:32426;ports:[31333-31665]',
      'cpus:2.666;mem:5120;disk:32426;ports:[31666-31998]',
    ]);
    const together = shares.reduce(add);
    for (const name of ['cpus', 'mem', 'disk'] as const)
      expect(together[name]).toBeLessThanOrEqual(machine[name]);
    // No port in two shares: the sum of the parts has as many ports as the parts together.
    expect(portCount(together.ports)).toBe(shares.reduce((n, s) => n + portCount(s.ports), 0));
  });

  it('splits ports across several ranges, and reservations role by role', () => {
    const r = parse('cpus:2;ports:[100-101,200-203];cpus(eng):1;mem(eng):100');
    expect(format(shareOf(r, 1, 2))).toBe('cpus:1;ports:[100-101,200-200];cpus(eng):0.5;mem(eng):50');
    expect(format(shareOf(r, 2, 2))).toBe('cpus:1;ports:[201-203];cpus(eng):0.5;mem(eng):50');
  });

  it('one share of one is the whole', () => {
    const machine = detectedResources(facts);
    expect(format(shareOf(machine, 1, 1))).toBe(format(machine));
  });

  it('--share must be i/n with 1 <= i <= n', () => {
    expect(parseShare('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/2', '3/2', '1', '1/0', 'a/b', '-1/2'])
      expect(() => parseShare(bad)).toThrow(ResourceError);
  });
});

describe('--attributes', () => {
  it('parses name:value pairs separated by semicolons', () => {
    expect(parseAttributes('rack:r1;zone:a')).toEqual({ rack: 'r1', zone: 'a' });
    expect(parseAttributes(' rack : r1 ; ')).toEqual({ rack: 'r1' });
    expect(parseAttributes('url:http://x:80')).toEqual({ url: 'http://x:80' });
    expect(parseAttributes(undefined)).toEqual({});
    expect(parseAttributes('')).toEqual({});
  });

  it('keeps __proto__ an ordinary attribute', () => {
    const a = parseAttributes('__proto__:x');
    expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
    expect(Object.keys(a)).toEqual(['__proto__']);
  });

  it('rejects malformed attributes', () => {
    for (const bad of ['rack', ':r1', 'rack:', 'rack:r1;rack:r2']) {
      expect(() => parseAttributes(bad), bad).toThrow(ResourceError);
    }
  });
});
