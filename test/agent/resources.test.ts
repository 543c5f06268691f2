import { describe, expect, it } from 'vitest';
import {
  agentResources,
  detectedResources,
  diskReserveMb,
  memReserveMb,
  parseAttributes,
  readMachineFacts,
  withOverrides,
} from '../../agent/resources.ts';
import { format, ResourceError } from '../../lib/core/resources.ts';
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
