/**
 * Resources: cpus, mem (MB), disk (MB), gpus as fixed-point scalars and ports as ranges, each
 * either unreserved or reserved for a role.
 *
 * Scalars are held as integers in thousandths (Mesos keeps three decimals), so adding and
 * subtracting never accumulates floating-point drift. `Resources` is the internal form used by
 * the core and stored in DynamoDB; `WireResources` (plain decimals) is what the protocol carries.
 *
 * Reservations live inside the value: the top-level fields are the *unreserved* part and the
 * optional `reserved` map holds, per role, what is reserved for it (Mesos's `cpus(eng):2`). Every
 * operation works per part — reserved cpus never satisfy a request for unreserved cpus, nor the
 * other way round — so every accounting path (an agent's total, its offers, its tasks, what is
 * free) keeps working with reservations unchanged. The map is normalized: no empty entries, and
 * absent rather than empty, so the unreserved-only case (nearly all of them) allocates nothing
 * extra and takes the same fast paths as before.
 */
import { ANY_ROLE, roleNameProblem } from '../protocol/role-name.ts';

export const SCALARS = ['cpus', 'mem', 'disk', 'gpus'] as const;
export type ScalarName = (typeof SCALARS)[number];

/** An inclusive port range `[begin, end]`. */
export type Range = readonly [number, number];

/** Scalars in thousandths and ports as sorted, non-overlapping, non-adjacent ranges. */
export interface ScalarsAndPorts {
  readonly cpus: number;
  readonly mem: number;
  readonly disk: number;
  readonly gpus: number;
  readonly ports: readonly Range[];
}

/** Reserved parts by role; never holds an empty part (see {@link withReserved}). */
export type Reserved = Readonly<Record<string, ScalarsAndPorts>>;

/** Internal resources: the unreserved part at the top level, reservations per role in `reserved`. */
export interface Resources extends ScalarsAndPorts {
  readonly reserved?: Reserved;
}

/** One part of resources as the protocol carries it: decimals with at most three places. */
export interface WireScalarsAndPorts {
  cpus?: number;
  mem?: number;
  disk?: number;
  gpus?: number;
  ports?: [number, number][];
}

/** Resources as the protocol carries them; `reserved` maps a role to what is reserved for it. */
export interface WireResources extends WireScalarsAndPorts {
  reserved?: Record<string, WireScalarsAndPorts>;
}

export const SCALE = 1000;

/** The role of unreserved resources (`*`) and the role-name rules are the protocol's. */
export { ANY_ROLE, roleNameProblem };

export const EMPTY: Resources = Object.freeze({
  cpus: 0,
  mem: 0,
  disk: 0,
  gpus: 0,
  ports: Object.freeze([]),
});

export class ResourceError extends Error {
  override name = 'ResourceError';
}

/** Converts a decimal to thousandths, rejecting NaN, infinities and negatives. */
export function toFixed(value: number, name = 'value'): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new ResourceError(`${name} must be a finite number`);
  if (value < 0) throw new ResourceError(`${name} must not be negative`);
  return Math.round(value * SCALE);
}

export function fromFixed(value: number): number {
  return value / SCALE;
}

/** Builds resources from parts (missing scalars are 0; ports are normalized; reservations too). */
export function resources(partial: Partial<Resources> = {}): Resources {
  const base: Resources = {
    cpus: partial.cpus ?? 0,
    mem: partial.mem ?? 0,
    disk: partial.disk ?? 0,
    gpus: partial.gpus ?? 0,
    ports: normalizeRanges(partial.ports ?? []),
  };
  if (!partial.reserved) return base;
  const reserved: [string, ScalarsAndPorts][] = [];
  for (const role of Object.keys(partial.reserved)) {
    const p = partial.reserved[role]!;
    reserved.push([
      role,
      {
        cpus: p.cpus ?? 0,
        mem: p.mem ?? 0,
        disk: p.disk ?? 0,
        gpus: p.gpus ?? 0,
        ports: normalizeRanges(p.ports ?? []),
      },
    ]);
  }
  return withReserved(base, reserved);
}

/** Sorts and merges ranges; rejects reversed or out-of-range ports. */
export function normalizeRanges(ranges: readonly Range[]): Range[] {
  for (const [b, e] of ranges) {
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e > 65535 || b > e) {
      throw new ResourceError(`invalid port range [${b}-${e}]`);
    }
  }
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [b, e] of sorted) {
    const last = out[out.length - 1];
    if (last && b <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([b, e]);
  }
  return out;
}

export function portCount(ranges: readonly Range[]): number {
  let n = 0;
  for (const [b, e] of ranges) n += e - b + 1;
  return n;
}

function rangesAdd(a: readonly Range[], b: readonly Range[]): Range[] {
  if (b.length === 0) return a as Range[];
  if (a.length === 0) return b as Range[];
  return normalizeRanges([...a, ...b]);
}

/** a ⊇ b for normalized ranges. */
export function rangesContain(a: readonly Range[], b: readonly Range[]): boolean {
  let i = 0;
  for (const [b0, b1] of b) {
    while (i < a.length && a[i]![1] < b0) i++;
    const r = a[i];
    if (!r || r[0] > b0 || r[1] < b1) return false;
  }
  return true;
}

function rangesSubtract(a: readonly Range[], b: readonly Range[]): Range[] {
  if (b.length === 0) return a as Range[];
  let out: [number, number][] = a.map(([x, y]) => [x, y]);
  for (const [s0, s1] of b) {
    const next: [number, number][] = [];
    for (const [x, y] of out) {
      if (s1 < x || s0 > y) next.push([x, y]);
      else {
        if (x < s0) next.push([x, s0 - 1]);
        if (s1 < y) next.push([s1 + 1, y]);
      }
    }
    out = next;
  }
  return out;
}

/** The intersection of normalized ranges. */
function rangesIntersect(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = Math.max(a[i]![0], b[j]![0]);
    const hi = Math.min(a[i]![1], b[j]![1]);
    if (lo <= hi) out.push([lo, hi]);
    if (a[i]![1] < b[j]![1]) i++;
    else j++;
  }
  return out;
}

const partEmpty = (p: ScalarsAndPorts): boolean =>
  p.cpus === 0 && p.mem === 0 && p.disk === 0 && p.gpus === 0 && p.ports.length === 0;

function partAdd(a: ScalarsAndPorts, b: ScalarsAndPorts): ScalarsAndPorts {
  return {
    cpus: a.cpus + b.cpus,
    mem: a.mem + b.mem,
    disk: a.disk + b.disk,
    gpus: a.gpus + b.gpus,
    ports: rangesAdd(a.ports, b.ports),
  };
}

function partSubtract(a: ScalarsAndPorts, b: ScalarsAndPorts): ScalarsAndPorts {
  return {
    cpus: a.cpus - b.cpus,
    mem: a.mem - b.mem,
    disk: a.disk - b.disk,
    gpus: a.gpus - b.gpus,
    ports: rangesSubtract(a.ports, b.ports),
  };
}

function partContains(a: ScalarsAndPorts, b: ScalarsAndPorts): boolean {
  return (
    a.cpus >= b.cpus &&
    a.mem >= b.mem &&
    a.disk >= b.disk &&
    a.gpus >= b.gpus &&
    rangesContain(a.ports, b.ports)
  );
}

/** The part without reservations (the value itself when it has none). */
export function unreserved(r: Resources): ScalarsAndPorts & Resources {
  if (r.reserved === undefined) return r;
  return { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus, ports: r.ports };
}

/** What is reserved for exactly `role` (EMPTY when nothing is). */
export function reservedFor(r: Resources, role: string): ScalarsAndPorts {
  const res = r.reserved;
  return res !== undefined && Object.hasOwn(res, role) ? res[role]! : EMPTY;
}

/**
 * `base` (its unreserved part) with `reserved` as its reservations, normalized: empty parts and
 * the `*` role (unreserved by definition) are folded away, an empty map becomes absent.
 */
export function withReserved(
  base: ScalarsAndPorts,
  reserved: Readonly<Record<string, ScalarsAndPorts>> | Iterable<readonly [string, ScalarsAndPorts]>,
): Resources {
  let out: ScalarsAndPorts = unreserved(base as Resources);
  const list: Iterable<readonly [string, ScalarsAndPorts]> =
    Symbol.iterator in reserved
      ? (reserved as Iterable<readonly [string, ScalarsAndPorts]>)
      : Object.entries(reserved as Record<string, ScalarsAndPorts>);
  const merged = new Map<string, ScalarsAndPorts>();
  for (const [role, p] of list) {
    if (role === ANY_ROLE) out = partAdd(out, p);
    else if (!partEmpty(p)) merged.set(role, merged.has(role) ? partAdd(merged.get(role)!, p) : p);
  }
  if (merged.size === 0) return out;
  const entries = [...merged].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  // fromEntries defines own properties, so a role named `__proto__` cannot reach the prototype.
  return { ...out, reserved: Object.fromEntries(entries) };
}

/** Everything as if it were unreserved: what shares and quantities are computed on. */
export function flatten(r: Resources): Resources {
  const res = r.reserved;
  if (res === undefined) return r;
  let out: ScalarsAndPorts = unreserved(r);
  for (const role of Object.keys(res)) out = partAdd(out, res[role]!);
  return out;
}

export function add(a: Resources, b: Resources): Resources {
  const ra = a.reserved;
  const rb = b.reserved;
  const base = partAdd(a, b);
  if (ra === undefined && rb === undefined) return base;
  const merged: [string, ScalarsAndPorts][] = [];
  if (ra) for (const role of Object.keys(ra)) merged.push([role, ra[role]!]);
  if (rb) for (const role of Object.keys(rb)) merged.push([role, rb[role]!]);
  return withReserved(base, merged);
}

/** a − b; throws when b is not contained in a (resources never go below zero). */
export function subtract(a: Resources, b: Resources): Resources {
  if (!contains(a, b)) throw new ResourceError(`cannot subtract ${format(b)} from ${format(a)}`);
  const base = partSubtract(a, b);
  const ra = a.reserved;
  if (ra === undefined) return base; // b ⊆ a, so b has no reservations either
  const rb = b.reserved;
  const left: [string, ScalarsAndPorts][] = [];
  for (const role of Object.keys(ra)) {
    left.push([
      role,
      rb !== undefined && Object.hasOwn(rb, role) ? partSubtract(ra[role]!, rb[role]!) : ra[role]!,
    ]);
  }
  return withReserved(base, left);
}

/** a ⊇ b, part by part: reserved resources only contain what is reserved for the same role. */
export function contains(a: Resources, b: Resources): boolean {
  if (!partContains(a, b)) return false;
  const rb = b.reserved;
  if (rb === undefined) return true;
  const ra = a.reserved;
  if (ra === undefined) return false; // normalized: b holds some non-empty reservation
  for (const role of Object.keys(rb)) {
    if (!Object.hasOwn(ra, role) || !partContains(ra[role]!, rb[role]!)) return false;
  }
  return true;
}

export function isEmpty(r: Resources): boolean {
  return (
    partEmpty(r) &&
    (r.reserved === undefined || Object.keys(r.reserved).every((k) => partEmpty(r.reserved![k]!)))
  );
}

export function equals(a: Resources, b: Resources): boolean {
  return contains(a, b) && contains(b, a);
}

export function sum(list: Iterable<Resources>): Resources {
  let acc = EMPTY;
  for (const r of list) acc = add(acc, r);
  return acc;
}

/** Scalars only (ports dropped), reserved and unreserved together: the part DRF shares are computed on. */
export function scalarOf(r: Resources, name: ScalarName): number {
  let n = r[name];
  const res = r.reserved;
  if (res !== undefined) for (const role of Object.keys(res)) n += res[role]![name];
  return n;
}

/** The smaller of each scalar and the intersection of the ports (both parts unreserved). */
export function meet(a: ScalarsAndPorts, b: ScalarsAndPorts): Resources {
  return {
    cpus: Math.min(a.cpus, b.cpus),
    mem: Math.min(a.mem, b.mem),
    disk: Math.min(a.disk, b.disk),
    gpus: Math.min(a.gpus, b.gpus),
    ports: rangesIntersect(a.ports, b.ports),
  };
}

/**
 * Finds, within `available`, concrete resources for a request that names no reservation: what
 * is reserved is taken first (reservations exist to be used), role by role in the order given,
 * then unreserved resources. Returns undefined when `available` cannot hold the request. A
 * request that names reservations itself must be contained exactly ({@link contains}).
 *
 * This lets a framework that thinks in plain quantities (`cpus:1;mem:128`) launch on an offer of
 * reserved resources, while the task's record says exactly which resources it holds, so they go
 * back to the right reservation when it ends.
 *
 * @example
 * claim(parse('cpus(eng):1;cpus:4'), parse('cpus:2'), ['eng']); // cpus(eng):1;cpus:1
 */
export function claim(
  available: Resources,
  want: Resources,
  roles?: readonly string[],
): Resources | undefined {
  const res = available.reserved;
  if (want.reserved !== undefined || res === undefined) return contains(available, want) ? want : undefined;
  if (!contains(flatten(available), want)) return undefined;
  let left: ScalarsAndPorts = want;
  const taken: [string, ScalarsAndPorts][] = [];
  for (const role of roles ?? Object.keys(res)) {
    if (!Object.hasOwn(res, role)) continue;
    const part = meet(res[role]!, left);
    if (partEmpty(part)) continue;
    taken.push([role, part]);
    left = partSubtract(left, part);
  }
  if (!partContains(available, left)) return undefined;
  return withReserved(left, taken);
}

function partToWire(p: ScalarsAndPorts): WireScalarsAndPorts {
  const w: WireScalarsAndPorts = {};
  for (const name of SCALARS) if (p[name] !== 0) w[name] = fromFixed(p[name]);
  if (p.ports.length > 0) w.ports = p.ports.map(([b, e]) => [b, e]);
  return w;
}

function partFromWire(w: WireScalarsAndPorts, role?: string): ScalarsAndPorts {
  const at = role === undefined ? '' : `(${role})`;
  return {
    cpus: toFixed(w.cpus ?? 0, `cpus${at}`),
    mem: toFixed(w.mem ?? 0, `mem${at}`),
    disk: toFixed(w.disk ?? 0, `disk${at}`),
    gpus: toFixed(w.gpus ?? 0, `gpus${at}`),
    ports: normalizeRanges(w.ports ?? []),
  };
}

export function toWire(r: Resources): WireResources {
  const w: WireResources = partToWire(r);
  const res = r.reserved;
  if (res !== undefined) {
    w.reserved = Object.fromEntries(Object.keys(res).map((role) => [role, partToWire(res[role]!)]));
  }
  return w;
}

export function fromWire(w: WireResources): Resources {
  const base = partFromWire(w);
  if (w.reserved === undefined) return base;
  const reserved: [string, ScalarsAndPorts][] = [];
  for (const role of Object.keys(w.reserved)) {
    const problem = roleNameProblem(role);
    if (problem) throw new ResourceError(`cannot reserve for role "${role}": ${problem}`);
    reserved.push([role, partFromWire(w.reserved[role]!, role)]);
  }
  return withReserved(base, reserved);
}

/**
 * Mesos agent syntax: `cpus:4;mem:8192;disk:1000;ports:[31000-32000,33000-33010]`, with
 * reservations as `cpus(eng):2;mem(eng):1024` (`cpus(*)` is unreserved).
 */
export function parse(text: string): Resources {
  const parts = new Map<string, WireScalarsAndPorts>();
  const partOf = (role: string): WireScalarsAndPorts => {
    const existing = parts.get(role);
    if (existing) return existing;
    const created: WireScalarsAndPorts = {};
    parts.set(role, created);
    return created;
  };
  for (const raw of text.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    const colon = part.indexOf(':');
    if (colon < 0) throw new ResourceError(`expected name:value in "${part}"`);
    const key = part.slice(0, colon).trim();
    const value = part.slice(colon + 1).trim();
    const km = /^([a-z]+)\s*(?:\(([^()]*)\))?$/.exec(key);
    if (!km) throw new ResourceError(`unknown resource "${key}"`);
    const name = km[1]!;
    const role = km[2] === undefined ? ANY_ROLE : km[2].trim();
    if (km[2] !== undefined) {
      const problem = roleNameProblem(role);
      if (problem) throw new ResourceError(`invalid role "${role}" in "${key}": ${problem}`);
    }
    const w = partOf(role);
    if (name === 'ports') {
      const m = /^\[(.*)\]$/.exec(value);
      if (!m) throw new ResourceError(`ports must look like [31000-32000], got "${value}"`);
      const ranges = m[1]!
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => {
          const rm = /^(\d+)\s*-\s*(\d+)$/.exec(s);
          if (!rm) throw new ResourceError(`invalid port range "${s}"`);
          return [Number(rm[1]), Number(rm[2])] as [number, number];
        });
      w.ports = [...(w.ports ?? []), ...ranges];
    } else if ((SCALARS as readonly string[]).includes(name)) {
      if (!/^\d+(\.\d+)?$/.test(value))
        throw new ResourceError(`${key} must be a non-negative number, got "${value}"`);
      w[name as ScalarName] = (w[name as ScalarName] ?? 0) + Number(value);
    } else {
      throw new ResourceError(`unknown resource "${name}"`);
    }
  }
  const reserved: [string, ScalarsAndPorts][] = [];
  for (const [role, w] of parts) if (role !== ANY_ROLE) reserved.push([role, partFromWire(w, role)]);
  return withReserved(partFromWire(parts.get(ANY_ROLE) ?? {}), reserved);
}

function formatPart(p: ScalarsAndPorts, at: string, out: string[]): void {
  for (const name of SCALARS) if (p[name] !== 0) out.push(`${name}${at}:${fromFixed(p[name])}`);
  if (p.ports.length > 0) out.push(`ports${at}:[${p.ports.map(([b, e]) => `${b}-${e}`).join(',')}]`);
}

/** The inverse of `parse`, for logs and the CLI. */
export function format(r: Resources): string {
  const parts: string[] = [];
  formatPart(r, '', parts);
  const res = r.reserved;
  if (res !== undefined) for (const role of Object.keys(res)) formatPart(res[role]!, `(${role})`, parts);
  return parts.length ? parts.join(';') : '{}';
}

/** Takes `count` ports from the ranges, lowest first (used when a task asks for N ports). */
export function takePorts(ranges: readonly Range[], count: number): Range[] {
  const out: Range[] = [];
  let left = count;
  for (const [b, e] of ranges) {
    if (left <= 0) break;
    const n = Math.min(left, e - b + 1);
    out.push([b, b + n - 1]);
    left -= n;
  }
  if (left > 0) throw new ResourceError(`not enough ports: wanted ${count}`);
  return out;
}
