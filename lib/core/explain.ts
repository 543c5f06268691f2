/**
 * `meso explain`: why a framework (or the frameworks of a role) gets no offers right now, from
 * the allocator's own state. Mesos operators had to piece this together from master logs; here
 * the answer comes from running the very cycle the allocator would run, on the same input, with
 * a trace of every decision (`AllocationTrace`), and classifying each agent:
 *
 * - offered to the subject (it *would* get an offer: the allocator has not run since, or the
 *   offer is outstanding);
 * - unavailable (unreachable, draining, deactivated) or full (nothing free worth offering);
 * - filtered (the framework declined it, until T), below the framework's or role's minimum;
 * - capped to nothing by the role's quota limit, by headroom held back for other roles'
 *   guarantees, or because what is free is reserved for other roles;
 * - given to someone ahead in DRF order ("below its DRF turn").
 *
 * Pure, like the allocator: the caller reads the same records the allocator reads.
 */
import {
  type AllocatedOffer,
  type AllocateOptions,
  type AllocationInput,
  type AllocationTrace,
  allocate,
  type TraceSkip,
} from './allocator.ts';
import {
  ANY_ROLE,
  add,
  EMPTY,
  flatten,
  format,
  isEmpty,
  type Resources,
  SCALARS,
  unreserved,
  withReserved,
} from './resources.ts';
import { formatQuantities, type Quantities, type RoleConfig } from './roles.ts';
import { isWithinRole, parentRole, roleAndAncestors } from './sorter/hierarchical.ts';

export type Subject = { readonly framework: string } | { readonly role: string };

export type FindingCode =
  | 'unknown-framework'
  | 'no-frameworks'
  | 'inactive'
  | 'suppressed'
  | 'offered'
  | 'filtered'
  | 'below-minimum'
  | 'quota-limit'
  | 'headroom'
  | 'reserved-elsewhere'
  | 'drf-turn'
  | 'agents-unavailable'
  | 'agents-full'
  | 'no-agents'
  | 'not-reached';

export interface Finding {
  readonly code: FindingCode;
  /** One sentence an operator can act on. */
  readonly message: string;
  /** Agents this finding covers (0 for framework-wide findings). */
  readonly agents: number;
  /** A few agent ids, for looking further. */
  readonly examples: readonly string[];
}

export interface FrameworkExplanation {
  readonly frameworkId: string;
  readonly roles: readonly string[];
  /** Agents the framework would be offered in a cycle run now. */
  readonly offers: number;
  readonly findings: readonly Finding[];
}

export interface RoleSummary {
  readonly role: string;
  readonly weight: number;
  readonly guarantee?: Quantities;
  readonly limit?: Quantities;
  /** Offered and used resources of frameworks in the role and below it. */
  readonly allocated: Resources;
  /** The part of `allocated` that is outstanding offers (when the caller knows it). */
  readonly offered: Resources;
  /** Everything reserved for the role and below it, allocated or not. */
  readonly reserved: Resources;
  /** What quota counts: unreserved allocations plus all reservations (scalars, flattened). */
  readonly consumed: Resources;
  /** Weighted dominant share of `allocated` (what DRF orders the role by among its siblings). */
  readonly share: number;
  /** Frameworks subscribed in the role itself (not below it). */
  readonly frameworks: number;
}

export interface Explanation {
  readonly subject: string;
  readonly frameworks: readonly FrameworkExplanation[];
  /** The subject's roles and their ancestors. */
  readonly roles: readonly RoleSummary[];
  /** Framework-independent findings (a role with no frameworks, an empty cluster). */
  readonly findings: readonly Finding[];
}

const EXAMPLES = 3;
const when = (ms: number): string => new Date(ms).toISOString();
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function quantitiesText(q: Quantities | undefined): string {
  const text = formatQuantities(q);
  return text === '{}' ? '-' : text;
}

/**
 * Every role the input knows of (configured, subscribed to, reserved for, and their ancestors),
 * with what it holds, what is reserved for it, what quota counts, and its DRF share.
 *
 * @example
 * summarizeRoles(input).find((r) => r.role === 'eng')?.share;
 */
export function summarizeRoles(
  input: AllocationInput,
  offeredByRole: Readonly<Record<string, Resources>> = {},
): RoleSummary[] {
  const configs = new Map<string, RoleConfig>((input.roles ?? []).map((c) => [c.role, c]));
  const own = new Map<
    string,
    { allocated: Resources; offered: Resources; reserved: Resources; frameworks: number }
  >();
  const entry = (role: string) => {
    let e = own.get(role);
    if (!e) {
      e = { allocated: EMPTY, offered: EMPTY, reserved: EMPTY, frameworks: 0 };
      own.set(role, e);
    }
    for (let p = parentRole(role); p !== ''; p = parentRole(p))
      if (!own.has(p)) own.set(p, { allocated: EMPTY, offered: EMPTY, reserved: EMPTY, frameworks: 0 });
    return e;
  };
  for (const role of configs.keys()) entry(role);
  for (const f of input.frameworks) {
    const roles = f.roles && f.roles.length > 0 ? f.roles : [ANY_ROLE];
    for (const role of new Set(roles)) if (f.active) entry(role).frameworks++;
    if (f.allocations) {
      for (const role of Object.keys(f.allocations))
        entry(role).allocated = add(entry(role).allocated, f.allocations[role]!);
    } else if (!isEmpty(f.allocated)) {
      entry(roles[0]!).allocated = add(entry(roles[0]!).allocated, f.allocated);
    }
  }
  for (const role of Object.keys(offeredByRole))
    entry(role).offered = add(entry(role).offered, offeredByRole[role]!);
  if (input.reservedTotals) {
    for (const role of Object.keys(input.reservedTotals))
      entry(role).reserved = add(entry(role).reserved, input.reservedTotals[role]!);
  } else {
    for (const a of input.agents) {
      const res = a.total.reserved;
      if (res)
        for (const role of Object.keys(res))
          entry(role).reserved = add(entry(role).reserved, withReserved(EMPTY, [[role, res[role]!]]));
    }
  }
  let total = input.total ? flatten(input.total) : EMPTY;
  if (!input.total) for (const a of input.agents) total = add(total, flatten(a.total));
  const out: RoleSummary[] = [];
  for (const role of [...own.keys()].sort()) {
    let allocated = EMPTY;
    let offered = EMPTY;
    let reserved = EMPTY;
    for (const [r, e] of own) {
      if (!isWithinRole(r, role)) continue;
      allocated = add(allocated, e.allocated);
      offered = add(offered, e.offered);
      reserved = add(reserved, e.reserved);
    }
    const c = configs.get(role);
    const weight = c?.weight ?? 1;
    const flat = flatten(allocated);
    let share = 0;
    for (const name of SCALARS) if (total[name] > 0) share = Math.max(share, flat[name] / total[name]);
    out.push({
      role,
      weight,
      ...(c?.guarantee ? { guarantee: c.guarantee } : {}),
      ...(c?.limit ? { limit: c.limit } : {}),
      allocated,
      offered,
      reserved,
      consumed: flatten(add(unreserved(allocated), reserved)),
      share: share / weight,
      frameworks: own.get(role)!.frameworks,
    });
  }
  return out;
}

interface AgentOutcome {
  offered: AllocatedOffer[];
  skips: TraceSkip[];
}

/**
 * Explains, for a framework or every framework in a role (and below it), why it is or is not
 * getting offers, by running the allocation cycle on `input` with a trace.
 *
 * @example
 * const e = explain(input, { framework: 'f1' });
 * for (const line of formatExplanation(e)) console.log(line);
 */
export function explain(
  input: AllocationInput,
  subject: Subject,
  options: Pick<AllocateOptions, 'shuffle'> = {},
): Explanation {
  const byAgent = new Map<string, AgentOutcome>();
  const outcome = (agentId: string): AgentOutcome => {
    let o = byAgent.get(agentId);
    if (!o) {
      o = { offered: [], skips: [] };
      byAgent.set(agentId, o);
    }
    return o;
  };
  const shares = new Map<string, number>();
  const trace: AllocationTrace = {
    skip: (e) => outcome(e.agentId).skips.push(e),
    offer: (o, share) => {
      outcome(o.agentId).offered.push(o);
      shares.set(`${o.role}/${o.frameworkId}`, share);
    },
  };
  allocate(input, { ...options, trace });
  const roles = summarizeRoles(input);
  const roleOf = new Map(roles.map((r) => [r.role, r]));

  const label = 'framework' in subject ? `framework ${subject.framework}` : `role ${subject.role}`;
  const targets =
    'framework' in subject
      ? input.frameworks.filter((f) => f.frameworkId === subject.framework)
      : input.frameworks.filter((f) =>
          (f.roles && f.roles.length > 0 ? f.roles : [ANY_ROLE]).some((r) => isWithinRole(r, subject.role)),
        );
  const general: Finding[] = [];
  if (input.agents.length === 0)
    general.push({ code: 'no-agents', message: 'the cluster has no agents', agents: 0, examples: [] });
  if ('framework' in subject && targets.length === 0) {
    general.push({
      code: 'unknown-framework',
      message: `framework ${subject.framework} is not subscribed (or was torn down long ago)`,
      agents: 0,
      examples: [],
    });
  }
  if ('role' in subject && targets.length === 0) {
    general.push({
      code: 'no-frameworks',
      message: `no framework is subscribed in role ${subject.role} or below it`,
      agents: 0,
      examples: [],
    });
  }

  const frameworks = targets.map((f): FrameworkExplanation => {
    const fRoles = f.roles && f.roles.length > 0 ? [...new Set(f.roles)] : [ANY_ROLE];
    const inScope = 'role' in subject ? fRoles.filter((r) => isWithinRole(r, subject.role)) : fRoles;
    const findings: Finding[] = [];
    const add1 = (code: FindingCode, message: string, agents: string[] = []) =>
      findings.push({ code, message, agents: agents.length, examples: agents.slice(0, EXAMPLES) });
    if (!f.active) {
      add1(
        'inactive',
        'the framework is not connected (disconnected, failing over or torn down): it is offered nothing',
      );
      return { frameworkId: f.frameworkId, roles: fRoles, offers: 0, findings };
    }
    const suppressed = inScope.filter((r) => f.suppressedRoles?.includes(r));
    if (suppressed.length > 0) {
      add1(
        'suppressed',
        suppressed.length === inScope.length
          ? `it suppressed offers (SUPPRESS) in ${suppressed.length === 1 ? `role ${suppressed[0]}` : `all its roles (${suppressed.join(', ')})`}: nothing until it sends REVIVE`
          : `it suppressed offers in role${suppressed.length > 1 ? 's' : ''} ${suppressed.join(', ')} until REVIVE`,
      );
    }
    const buckets = new Map<FindingCode, string[]>();
    const put = (code: FindingCode, agentId: string) =>
      buckets.set(code, [...(buckets.get(code) ?? []), agentId]);
    let filteredUntil = 0;
    const turns: { agentId: string; to: AllocatedOffer }[] = [];
    let offers = 0;
    const mine = (e: TraceSkip) =>
      (e.frameworkId === undefined || e.frameworkId === f.frameworkId) &&
      e.role !== undefined &&
      inScope.includes(e.role);
    for (const a of input.agents) {
      const o = byAgent.get(a.agentId);
      if (o?.offered.some((x) => x.frameworkId === f.frameworkId && inScope.includes(x.role))) {
        offers++;
        continue;
      }
      const skips = o?.skips ?? [];
      if (skips.some((e) => e.reason === 'agent-inactive')) put('agents-unavailable', a.agentId);
      else if (isEmpty(a.free) || skips.some((e) => e.reason === 'agent-too-small'))
        put('agents-full', a.agentId);
      else {
        const own = skips.filter(mine);
        const filtered = own.find((e) => e.reason === 'filtered');
        const bound = (b: TraceSkip['bound']) =>
          own.some((e) => e.reason === 'role-nothing-offerable' && e.bound === b);
        if (filtered) {
          put('filtered', a.agentId);
          filteredUntil = Math.max(filteredUntil, filtered.until ?? 0);
        } else if (own.some((e) => e.reason === 'below-minimum')) put('below-minimum', a.agentId);
        else if (bound('limit')) put('quota-limit', a.agentId);
        else if (
          bound('headroom') ||
          (skips.some((e) => e.reason === 'agent-held-back') && !(o && o.offered.length > 0))
        )
          put('headroom', a.agentId);
        else if (bound('reserved-elsewhere')) put('reserved-elsewhere', a.agentId);
        else if (bound('too-small')) put('agents-full', a.agentId);
        else if (o && o.offered.length > 0) {
          put('drf-turn', a.agentId);
          turns.push({ agentId: a.agentId, to: o.offered[0]! });
        } else put('not-reached', a.agentId);
      }
    }
    const n = (code: FindingCode) => buckets.get(code) ?? [];
    if (offers > 0) {
      add1(
        'offered',
        `it would be offered ${offers} agent${offers === 1 ? '' : 's'} in a cycle run now (or holds those offers already)`,
      );
    }
    if (n('filtered').length > 0) {
      add1(
        'filtered',
        `it declined ${n('filtered').length} agent${n('filtered').length === 1 ? '' : 's'} with a filter; the last filter ends ${when(filteredUntil)} (REVIVE clears them)`,
        n('filtered'),
      );
    }
    if (n('below-minimum').length > 0) {
      add1(
        'below-minimum',
        `${n('below-minimum').length} agents have less free than its minimum offer for the role`,
        n('below-minimum'),
      );
    }
    if (n('quota-limit').length > 0) {
      const limited = inScope
        .flatMap(roleAndAncestors)
        .map((r) => roleOf.get(r))
        .filter((r): r is RoleSummary => !!r?.limit);
      const detail = limited
        .map(
          (r) =>
            `${r.role} consumes ${format(onlyNamed(r.consumed, r.limit!))} of its limit ${quantitiesText(r.limit)}`,
        )
        .join('; ');
      add1(
        'quota-limit',
        `its role is at its quota limit on ${n('quota-limit').length} agents${detail ? ` (${detail})` : ''}`,
        n('quota-limit'),
      );
    }
    if (n('headroom').length > 0) {
      add1(
        'headroom',
        `${n('headroom').length} agents' free resources are held back for other roles' unmet quota guarantees`,
        n('headroom'),
      );
    }
    if (n('reserved-elsewhere').length > 0) {
      add1(
        'reserved-elsewhere',
        `${n('reserved-elsewhere').length} agents have free resources only reserved for other roles (its role has no reservations there)`,
        n('reserved-elsewhere'),
      );
    }
    if (turns.length > 0) {
      const t = turns[0]!;
      const theirs = shares.get(`${t.to.role}/${t.to.frameworkId}`);
      const mineShare = inScope.map((r) => roleOf.get(r)?.share ?? 0);
      add1(
        'drf-turn',
        `below its DRF turn on ${turns.length} agents: they went to frameworks ahead of it (e.g. ${t.agentId} → ${t.to.frameworkId} in role ${t.to.role}${theirs !== undefined ? `, share ${pct(theirs)} after the offer` : ''}; its role${inScope.length > 1 ? 's' : ''} ${inScope.map((r, i) => `${r} at ${pct(mineShare[i]!)}`).join(', ')})`,
        turns.map((x) => x.agentId),
      );
    }
    if (n('agents-unavailable').length > 0) {
      add1(
        'agents-unavailable',
        `${n('agents-unavailable').length} agents are unreachable, draining or deactivated`,
        n('agents-unavailable'),
      );
    }
    if (n('agents-full').length > 0) {
      add1(
        'agents-full',
        `${n('agents-full').length} agents have nothing free worth offering (below the minimum allocatable)`,
        n('agents-full'),
      );
    }
    if (n('not-reached').length > 0) {
      add1('not-reached', `${n('not-reached').length} agents were offered to nobody`, n('not-reached'));
    }
    return { frameworkId: f.frameworkId, roles: fRoles, offers, findings };
  });

  const wanted = new Set<string>();
  const addRole = (r: string) => {
    for (const a of roleAndAncestors(r)) wanted.add(a);
  };
  if ('role' in subject) addRole(subject.role);
  for (const f of frameworks) for (const r of f.roles) addRole(r);
  return {
    subject: label,
    frameworks,
    roles: roles.filter((r) => wanted.has(r.role)),
    findings: general,
  };
}

function onlyNamed(r: Resources, q: Quantities): Resources {
  return {
    cpus: q.cpus !== undefined ? r.cpus : 0,
    mem: q.mem !== undefined ? r.mem : 0,
    disk: q.disk !== undefined ? r.disk : 0,
    gpus: q.gpus !== undefined ? r.gpus : 0,
    ports: [],
  };
}

/** The explanation as lines of text, for the CLI. */
export function formatExplanation(e: Explanation): string[] {
  const lines: string[] = [`Why ${e.subject} is (not) getting offers now:`];
  for (const f of e.findings) lines.push(`  - ${f.message}`);
  for (const f of e.frameworks) {
    lines.push(`framework ${f.frameworkId} (roles ${f.roles.join(', ')}):`);
    if (f.findings.length === 0) lines.push('  - nothing to report');
    for (const x of f.findings) {
      lines.push(
        `  - ${x.message}${x.examples.length > 0 && x.code !== 'offered' ? ` [e.g. ${x.examples.join(', ')}]` : ''}`,
      );
    }
  }
  if (e.roles.length > 0) {
    lines.push('roles:');
    for (const r of e.roles) {
      lines.push(
        `  ${r.role}: weight ${r.weight}, share ${pct(r.share)}, allocated ${format(flatten(r.allocated))}, consumed ${format(r.consumed)}, guarantee ${quantitiesText(r.guarantee)}, limit ${quantitiesText(r.limit)}`,
      );
    }
  }
  return lines;
}
