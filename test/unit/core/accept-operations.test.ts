import { describe, expect, it } from 'vitest';
import {
  type AcceptedOffer,
  type AcceptOperation,
  applyReservations,
  validateAccept,
  withDynamicReservations,
} from '../../../lib/core/accept.ts';
import { EMPTY, parse } from '../../../lib/core/resources.ts';

const NOW = 1_000;
const offer = (resources: string, role = 'eng', over: Partial<AcceptedOffer> = {}): AcceptedOffer => ({
  offerId: 'o1',
  agentId: 'a1',
  frameworkId: 'f1',
  role,
  resources: parse(resources),
  expiresAt: NOW + 1,
  ...over,
});
const run = (offers: AcceptedOffer[], operations: AcceptOperation[], dynamic?: string) =>
  validateAccept({
    frameworkId: 'f1',
    now: NOW,
    offers,
    operations,
    existingTaskIds: new Set(),
    ...(dynamic ? { dynamicReservations: parse(dynamic) } : {}),
  });
const launch = (taskId: string, resources: string): AcceptOperation => ({
  type: 'LAUNCH',
  tasks: [{ taskId, agentId: 'a1', resources: parse(resources) }],
});

describe('validateAccept: RESERVE and UNRESERVE', () => {
  it('reserves offered unreserved resources for the offer role, and later LAUNCHes see them', () => {
    const d = run(
      [offer('cpus:4;mem:4096')],
      [
        { type: 'RESERVE', resources: parse('cpus(eng):2;mem(eng/web):1024') },
        launch('t1', 'cpus:3;mem:512'),
      ],
    );
    expect(d.operationErrors).toEqual([]);
    expect(d.reserved).toEqual(parse('cpus(eng):2;mem(eng/web):1024'));
    expect(d.role).toBe('eng');
    // t1 takes the eng reservation first (the offer's role), then unreserved; mem(eng/web) is not eng's.
    expect(d.launched).toEqual([{ taskId: 't1', resources: parse('cpus(eng):2;cpus:1;mem:512') }]);
    expect(d.remaining).toEqual(parse('cpus:1;mem:2560;mem(eng/web):1024'));
  });

  it("refuses to reserve for a role outside the offer's role, unreserved names, or more than is offered", () => {
    const d = run(
      [offer('cpus:4')],
      [
        { type: 'RESERVE', resources: parse('cpus(ads):1') },
        { type: 'RESERVE', resources: parse('cpus:1') },
        { type: 'RESERVE', resources: parse('cpus(eng):5') },
        { type: 'RESERVE', resources: EMPTY },
      ],
    );
    expect(d.operationErrors).toHaveLength(4);
    expect(d.operationErrors[0]).toMatch(/role ads is not allowed with an offer allocated to role eng/);
    expect(d.operationErrors[1]).toMatch(/names unreserved resources/);
    expect(d.operationErrors[2]).toMatch(/only cpus:4 of the offers is unreserved/);
    expect(d.operationErrors[3]).toMatch(/names no resources/);
    expect(d.remaining).toEqual(parse('cpus:4'));
    // An offer of role * cannot reserve at all.
    expect(
      run([offer('cpus:4', '*')], [{ type: 'RESERVE', resources: parse('cpus(eng):1') }]).operationErrors,
    ).toHaveLength(1);
  });

  it('unreserves only dynamic reservations that are offered', () => {
    const offers = [offer('cpus(eng):2;cpus:1')];
    const ok = run(offers, [{ type: 'UNRESERVE', resources: parse('cpus(eng):1') }], 'cpus(eng):2');
    expect(ok.operationErrors).toEqual([]);
    expect(ok.unreserved).toEqual(parse('cpus(eng):1'));
    expect(ok.remaining).toEqual(parse('cpus(eng):1;cpus:2'));
    const stat = run(offers, [{ type: 'UNRESERVE', resources: parse('cpus(eng):1') }]);
    expect(stat.operationErrors[0]).toMatch(/only dynamic reservations/);
    const tooMuch = run(offers, [{ type: 'UNRESERVE', resources: parse('cpus(eng):3') }], 'cpus(eng):9');
    expect(tooMuch.operationErrors[0]).toMatch(/the offers hold only/);
  });

  it('refuses offers of different roles in one ACCEPT', () => {
    const d = run(
      [offer('cpus:1', 'a', { offerId: 'o1' }), offer('cpus:1', 'b', { offerId: 'o2' })],
      [launch('t1', 'cpus:1')],
    );
    expect(d.rejected[0]!.message).toMatch(/different roles \(a, b\)/);
  });
});

describe('agent totals with reservations', () => {
  it('carves reservations out of the unreserved part, and gives them back', () => {
    const total = parse('cpus:8;mem:8192');
    const after = applyReservations(total, parse('cpus(eng):2'), EMPTY);
    expect(after).toEqual(parse('cpus:6;mem:8192;cpus(eng):2'));
    expect(applyReservations(after, EMPTY, parse('cpus(eng):2'))).toEqual(total);
  });

  it('keeps dynamic reservations across a re-registration when they still fit', () => {
    expect(withDynamicReservations(parse('cpus:8'), parse('cpus(eng):2'))).toEqual({
      total: parse('cpus:6;cpus(eng):2'),
      dynamic: parse('cpus(eng):2'),
    });
    expect(withDynamicReservations(parse('cpus:1'), parse('cpus(eng):2'))).toEqual({
      total: parse('cpus:1'),
      dynamic: EMPTY,
    });
    expect(withDynamicReservations(parse('cpus:1'), undefined)).toEqual({
      total: parse('cpus:1'),
      dynamic: EMPTY,
    });
  });
});
