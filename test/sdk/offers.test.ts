import { describe, expect, it } from 'vitest';
import { ResourceError } from '../../lib/core/resources.ts';
import type { Offer } from '../../lib/protocol/scheduler.ts';
import {
  formatWire,
  matchOffers,
  offerFits,
  requestedResources,
  requestedWire,
} from '../../lib/sdk/offers.ts';

const offer = (id: string, resources: Offer['resources']): Offer => ({
  offerId: id,
  frameworkId: 'fw',
  agentId: `agent-${id}`,
  hostname: `host-${id}`,
  resources,
  attributes: {},
  expiresAt: 0,
});

describe('offer matching', () => {
  const want = requestedResources({ cpus: 0.5, mem: 64 });

  it('an offer fits when it holds every scalar asked', () => {
    expect(offerFits(offer('a', { cpus: 0.5, mem: 64 }), want)).toBe(true);
    expect(offerFits(offer('a', { cpus: 4, mem: 8192, disk: 100, ports: [[31000, 32000]] }), want)).toBe(
      true,
    );
    expect(offerFits(offer('a', { cpus: 0.499, mem: 64 }), want)).toBe(false);
    expect(offerFits(offer('a', { cpus: 1 }), want)).toBe(false);
  });

  it('counts in fixed point: 0.1 + 0.2 worth of cpus fits 0.3', () => {
    expect(
      offerFits(offer('a', { cpus: 0.3, mem: 1 }), requestedResources({ cpus: 0.1 + 0.2, mem: 1 })),
    ).toBe(true);
  });

  it('disk and gpus are asked only when given', () => {
    expect(
      offerFits(offer('a', { cpus: 1, mem: 64 }), requestedResources({ cpus: 1, mem: 64, disk: 10 })),
    ).toBe(false);
    expect(
      offerFits(offer('a', { cpus: 1, mem: 64, gpus: 1 }), requestedResources({ cpus: 1, mem: 64, gpus: 1 })),
    ).toBe(true);
  });

  it('picks the first offer that fits and leaves the others to decline', () => {
    const small = offer('small', { cpus: 0.1, mem: 1024 });
    const fits1 = offer('fits1', { cpus: 1, mem: 128 });
    const fits2 = offer('fits2', { cpus: 8, mem: 8192 });
    const { chosen, rest } = matchOffers([small, fits1, fits2], want);
    expect(chosen).toBe(fits1);
    expect(rest).toEqual([small, fits2]);
  });

  it('declines everything when nothing fits', () => {
    const offers = [offer('a', { cpus: 0.1, mem: 1024 }), offer('b', { cpus: 2, mem: 32 })];
    expect(matchOffers(offers, want)).toEqual({ chosen: undefined, rest: offers });
    expect(matchOffers([], want)).toEqual({ chosen: undefined, rest: [] });
  });

  it('the request on the wire leaves zeros out; bad numbers are refused', () => {
    expect(requestedWire({ cpus: 0.1, mem: 32, disk: 0 })).toEqual({ cpus: 0.1, mem: 32 });
    expect(formatWire({ cpus: 0.1, mem: 32 })).toBe('cpus:0.1;mem:32');
    expect(() => requestedResources({ cpus: -1, mem: 32 })).toThrow(ResourceError);
    expect(() => requestedResources({ cpus: Number.NaN, mem: 32 })).toThrow(ResourceError);
    expect(() => requestedResources({ cpus: 0.1, mem: 0.0001 })).toThrow(/three decimal/);
  });
});
