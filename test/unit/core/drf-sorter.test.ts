import { describe, expect, it } from 'vitest';
import { parse, resources } from '../../../lib/core/resources.ts';
import { dominantShare } from '../../../lib/core/sorter/index.ts';

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
