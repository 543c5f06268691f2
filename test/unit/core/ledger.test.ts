import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addOffers,
  agentFree,
  ledgerKey,
  offered,
  spendAccept,
  takeOffers,
} from '../../../lib/core/ledger.ts';
import type { AgentRecord, OfferRecord } from '../../../lib/core/model.ts';
import { agentOfOffer, offerId } from '../../../lib/core/offer-id.ts';
import { add, EMPTY, format, parse } from '../../../lib/core/resources.ts';

const offer = (id: string, resources: string, frameworkId = 'f1'): OfferRecord => ({
  offerId: id,
  frameworkId,
  role: '*',
  resources: parse(resources),
  expiresAt: 1,
});

const ledger = (over: Partial<AgentRecord> = {}) => ({
  total: parse('cpus:8;mem:8192'),
  offers: {} as AgentRecord['offers'],
  tasks: {} as AgentRecord['tasks'],
  ...over,
});

describe('offer ids', () => {
  it('name their agent, and an id without one names none', () => {
    expect(agentOfOffer(offerId('u-1', 'agent-7'))).toBe('agent-7');
    expect(agentOfOffer('no-agent')).toBeUndefined();
    expect(agentOfOffer('@')).toBeUndefined();
    expect(agentOfOffer('x@')).toBeUndefined();
  });
});

describe('the agent ledger', () => {
  it('free is the total minus offers and tasks', () => {
    const a = ledger({
      offers: { o1: offer('o1', 'cpus:2;mem:1024') },
      tasks: { t1: { frameworkId: 'f1', resources: parse('cpus:1;mem:512') } },
    });
    expect(format(agentFree(a))).toBe(format(parse('cpus:5;mem:6656')));
  });

  it('offers added are taken from free; taken back, they are free again', () => {
    const a = ledger();
    const withOffers = {
      ...a,
      ...addOffers(a, [offer('o1', 'cpus:2;mem:1024'), offer('o2', 'cpus:1;mem:1024', 'f2')]),
    };
    expect(format(agentFree(withOffers))).toBe(format(parse('cpus:5;mem:6144')));
    const { offers, taken } = takeOffers(withOffers, (o) => o.frameworkId === 'f2');
    expect(taken.map((o) => o.offerId)).toEqual(['o2']);
    expect(Object.keys(offers)).toEqual(['o1']);
    expect(format(offered(taken))).toBe(format(parse('cpus:1;mem:1024')));
    expect(takeOffers(withOffers, () => false).taken).toEqual([]);
  });

  it('an ACCEPT spends its offers: launched tasks join, the rest is free again', () => {
    const a = ledger({ offers: { o1: offer('o1', 'cpus:4;mem:4096'), o2: offer('o2', 'cpus:1;mem:128') } });
    const next = spendAccept(
      a,
      'f1',
      { consumedOfferIds: ['o1'], role: 'eng', reserved: EMPTY, unreserved: EMPTY },
      [{ taskId: 't1', resources: parse('cpus:1;mem:512') }],
    );
    expect(Object.keys(next.offers)).toEqual(['o2']);
    expect(next.tasks).toEqual({
      [ledgerKey('f1', 't1')]: {
        frameworkId: 'f1',
        taskId: 't1',
        role: 'eng',
        resources: parse('cpus:1;mem:512'),
      },
    });
    expect(next.total).toBeUndefined();
    expect(format(agentFree({ total: a.total, ...next }))).toBe(format(parse('cpus:6;mem:7552')));
  });

  it('RESERVE in an ACCEPT changes the total and the dynamic reservations', () => {
    const a = ledger({ offers: { o1: offer('o1', 'cpus:4;mem:4096') } });
    const reserved = parse('cpus(eng):2');
    const next = spendAccept(
      a,
      'f1',
      { consumedOfferIds: ['o1'], role: 'eng', reserved, unreserved: EMPTY },
      [],
    );
    expect(format(next.total!)).toBe(format(parse('cpus:6;cpus(eng):2;mem:8192')));
    expect(format(next.dynamicReservations!)).toBe(format(reserved));
  });

  it('taking offers back frees exactly what they held', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        (cpus, pick) => {
          const offers = Object.fromEntries(cpus.map((c, i) => [`o${i}`, offer(`o${i}`, `cpus:${c}`)]));
          const a = ledger({ offers });
          const { offers: left, taken } = takeOffers(a, (o) => Number(o.offerId.slice(1)) < pick);
          expect(format(agentFree({ ...a, offers: left }))).toBe(format(add(agentFree(a), offered(taken))));
        },
      ),
    );
  });
});
