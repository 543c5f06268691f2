import { describe, expect, it } from 'vitest';
import type { AllocationInput } from '../../../lib/core/allocator.ts';
import { explain, formatExplanation, summarizeRoles } from '../../../lib/core/explain.ts';
import { parse } from '../../../lib/core/resources.ts';
import { agent, fw } from './helpers.ts';

const codes = (input: AllocationInput, s: Parameters<typeof explain>[1]) =>
  explain(input, s).frameworks.flatMap((f) => f.findings.map((x) => `${x.code}:${x.agents}`));

describe('explain', () => {
  it('says when a framework would be offered, and when it is unknown or disconnected', () => {
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:1;mem:64')],
      frameworks: [fw('f1', ['r']), fw('off', ['r'], { active: false })],
    };
    expect(codes(input, { framework: 'f1' })).toEqual(['offered:0']);
    expect(codes(input, { framework: 'off' })).toEqual(['inactive:0']);
    expect(explain(input, { framework: 'nope' }).findings.map((f) => f.code)).toEqual(['unknown-framework']);
    expect(explain({ ...input, agents: [] }, { framework: 'f1' }).findings.map((f) => f.code)).toEqual([
      'no-agents',
    ]);
  });

  it('names filters with their end, DRF turns, draining and full agents', () => {
    const input: AllocationInput = {
      now: 1_000,
      agents: [
        agent('taken', 'cpus:4;mem:4096'),
        agent('filtered', 'cpus:4;mem:4096'),
        agent('drained', 'cpus:4;mem:4096', 'cpus:4;mem:4096', false),
        agent('full', 'cpus:4;mem:4096', ''),
      ],
      frameworks: [
        fw('f1', ['r'], {
          allocated: parse('cpus:2'),
          filters: { filtered: { until: Date.UTC(2026, 10, 24, 12), resources: parse('cpus:4;mem:4096') } },
        }),
        fw('f2', ['s']),
      ],
    };
    const e = explain(input, { framework: 'f1' });
    expect(e.frameworks[0]!.findings.map((f) => `${f.code}:${f.examples.join(',')}`)).toEqual([
      'filtered:filtered',
      'drf-turn:taken',
      'agents-unavailable:drained',
      'agents-full:full',
    ]);
    const text = formatExplanation(e).join('\n');
    expect(text).toContain('the last filter ends 2026-11-24T12:00:00.000Z');
    expect(text).toMatch(/taken → f2 in role s/);
    expect(text).toMatch(/roles:\n {2}r: weight 1/);
  });

  it('names a quota limit, headroom held for guarantees, and reservations for other roles', () => {
    const limited: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:4;mem:4096')],
      frameworks: [
        fw('f1', ['eng/web'], { allocations: { 'eng/web': parse('cpus:2') }, allocated: parse('cpus:2') }),
      ],
      roles: [{ role: 'eng', limit: { cpus: 2000 } }],
    };
    // A limit on cpus alone still lets memory be offered; limit memory too to stop everything.
    expect(codes(limited, { framework: 'f1' })).toEqual(['offered:0']);
    const both = { ...limited, roles: [{ role: 'eng', limit: { cpus: 2000, mem: 0 } }] };
    expect(codes(both, { framework: 'f1' })).toEqual(['quota-limit:1']);
    expect(formatExplanation(explain(both, { framework: 'f1' })).join('\n')).toMatch(
      /eng consumes cpus:2 of its limit cpus:2;mem:0/,
    );

    const held: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:4;mem:4096')],
      frameworks: [fw('f1', ['batch'])],
      roles: [{ role: 'prod', guarantee: { cpus: 4000, mem: 4_096_000 } }],
    };
    expect(codes(held, { framework: 'f1' })).toEqual(['headroom:1']);

    const reserved: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus(ads):4;mem(ads):4096')],
      frameworks: [fw('f1', ['eng'])],
    };
    expect(codes(reserved, { framework: 'f1' })).toEqual(['reserved-elsewhere:1']);
  });

  it('reports suppressed roles and minimums, and explains a role through its frameworks', () => {
    const input: AllocationInput = {
      now: 0,
      agents: [agent('a1', 'cpus:1;mem:512')],
      frameworks: [
        fw('quiet', ['eng/web'], { suppressedRoles: ['eng/web'] }),
        fw('picky', ['eng/batch'], { minAllocatable: { 'eng/batch': [parse('cpus:2')] } }),
        fw('other', ['ads'], { allocated: parse('cpus:1') }),
      ],
    };
    const e = explain(input, { role: 'eng' });
    expect(e.frameworks.map((f) => f.frameworkId)).toEqual(['quiet', 'picky']);
    expect(e.frameworks[0]!.findings[0]!.code).toBe('suppressed');
    expect(e.frameworks[0]!.findings[0]!.message).toMatch(/nothing until it sends REVIVE/);
    expect(e.frameworks[1]!.findings.map((f) => f.code)).toEqual(['below-minimum']);
    expect(e.roles.map((r) => r.role)).toEqual(['eng', 'eng/batch', 'eng/web']);
    expect(explain(input, { role: 'nobody' }).findings.map((f) => f.code)).toEqual(['no-frameworks']);
  });
});

describe('summarizeRoles', () => {
  it('sums allocations and reservations up the tree, with quota consumption and weighted share', () => {
    const rows = summarizeRoles(
      {
        now: 0,
        agents: [agent('a1', 'cpus:8;mem:8192;cpus(eng/web):2'), agent('a2', 'cpus:10;mem:8192')],
        frameworks: [
          fw('f1', ['eng/web'], {
            allocations: { 'eng/web': parse('cpus:4;cpus(eng/web):1') },
            allocated: parse('cpus:5'),
          }),
          fw('f2', ['eng']),
        ],
        roles: [{ role: 'eng', weight: 2, guarantee: { cpus: 6000 } }],
      },
      { 'eng/web': parse('cpus:1') },
    );
    const eng = rows.find((r) => r.role === 'eng')!;
    expect(eng.allocated).toEqual(parse('cpus:4;cpus(eng/web):1'));
    expect(eng.offered).toEqual(parse('cpus:1'));
    expect(eng.reserved).toEqual(parse('cpus(eng/web):2'));
    // 4 unreserved held + 2 reserved.
    expect(eng.consumed).toEqual(parse('cpus:6'));
    expect(eng.share).toBeCloseTo(5 / 20 / 2, 12);
    expect(eng.frameworks).toBe(1);
    expect(rows.map((r) => r.role)).toEqual(['eng', 'eng/web']);
  });
});
