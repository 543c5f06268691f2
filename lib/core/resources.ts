/**
 * Resources: cpus, mem (MB), disk (MB), gpus as fixed-point scalars and ports as ranges.
 *
 * Scalars are held as integers in thousandths (Mesos keeps three decimals), so adding and
 * subtracting never accumulates floating-point drift. `Resources` is the internal form used by
 * the core and stored in DynamoDB; `WireResources` (plain decimals) is what the protocol carries.
 */

export const SCALARS = ['cpus', 'mem', 'disk', 'gpus'] as const;
export type ScalarName = (typeof SCALARS)[number];

/** An inclusive port range `[begin, end]`. */
export type Range = readonly [number, number];

/** Internal resources: scalars in thousandths, ports as sorted, non-overlapping, non-adjacent ranges. */
export interface Resources {
  readonly cpus: number;
  readonly mem: number;
  readonly disk: number;
  readonly gpus: number;
  readonly ports: readonly Range[];
}

/** Resources as the protocol carries them: decimals with at most three places. */
export interface WireResources {
  cpus?: number;
  mem?: number;
  disk?: number;
  gpus?: number;
  ports?: [number, number][];
}

export const SCALE = 1000;

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

export function resources(partial: Partial<Resources> = {}): Resources {
  return {
    cpus: partial.cpus ?? 0,
    mem: partial.mem ?? 0,
    disk: partial.disk ?? 0,
    gpus: partial.gpus ?? 0,
    ports: normalizeRanges(partial.ports ?? []),
  };
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

export function add(a: Resources, b: Resources): Resources {
  return {
    cpus: a.cpus + b.cpus,
    mem: a.mem + b.mem,
    disk: a.disk + b.disk,
    gpus: a.gpus + b.gpus,
    ports: rangesAdd(a.ports, b.ports),
  };
}

/** a − b; throws when b is not contained in a (resources never go below zero). */
export function subtract(a: Resources, b: Resources): Resources {
  if (!contains(a, b)) throw new ResourceError(`cannot subtract ${format(b)} from ${format(a)}`);
  return {
    cpus: a.cpus - b.cpus,
    mem: a.mem - b.mem,
    disk: a.disk - b.disk,
    gpus: a.gpus - b.gpus,
    ports: rangesSubtract(a.ports, b.ports),
  };
}

/** a ⊇ b. */
export function contains(a: Resources, b: Resources): boolean {
  return (
    a.cpus >= b.cpus &&
    a.mem >= b.mem &&
    a.disk >= b.disk &&
    a.gpus >= b.gpus &&
    rangesContain(a.ports, b.ports)
  );
}

export function isEmpty(r: Resources): boolean {
  return r.cpus === 0 && r.mem === 0 && r.disk === 0 && r.gpus === 0 && r.ports.length === 0;
}

export function equals(a: Resources, b: Resources): boolean {
  return contains(a, b) && contains(b, a);
}

export function sum(list: Iterable<Resources>): Resources {
  let acc = EMPTY;
  for (const r of list) acc = add(acc, r);
  return acc;
}

/** Scalars only (ports dropped): the part DRF shares are computed on. */
export function scalarOf(r: Resources, name: ScalarName): number {
  return r[name];
}

export function toWire(r: Resources): WireResources {
  const w: WireResources = {};
  for (const name of SCALARS) if (r[name] !== 0) w[name] = fromFixed(r[name]);
  if (r.ports.length > 0) w.ports = r.ports.map(([b, e]) => [b, e]);
  return w;
}

export function fromWire(w: WireResources): Resources {
  return {
    cpus: toFixed(w.cpus ?? 0, 'cpus'),
    mem: toFixed(w.mem ?? 0, 'mem'),
    disk: toFixed(w.disk ?? 0, 'disk'),
    gpus: toFixed(w.gpus ?? 0, 'gpus'),
    ports: normalizeRanges(w.ports ?? []),
  };
}

/** Mesos agent syntax: `cpus:4;mem:8192;disk:1000;ports:[31000-32000,33000-33010]`. */
export function parse(text: string): Resources {
  const w: WireResources = {};
  for (const raw of text.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    const colon = part.indexOf(':');
    if (colon < 0) throw new ResourceError(`expected name:value in "${part}"`);
    const name = part.slice(0, colon).trim();
    const value = part.slice(colon + 1).trim();
    if (name === 'ports') {
      const m = /^\[(.*)\]$/.exec(value);
      if (!m) throw new ResourceError(`ports must look like [31000-32000], got "${value}"`);
      w.ports = m[1]!
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => {
          const rm = /^(\d+)\s*-\s*(\d+)$/.exec(s);
          if (!rm) throw new ResourceError(`invalid port range "${s}"`);
          return [Number(rm[1]), Number(rm[2])] as [number, number];
        });
    } else if ((SCALARS as readonly string[]).includes(name)) {
      if (!/^\d+(\.\d+)?$/.test(value))
        throw new ResourceError(`${name} must be a non-negative number, got "${value}"`);
      w[name as ScalarName] = Number(value);
    } else {
      throw new ResourceError(`unknown resource "${name}"`);
    }
  }
  return fromWire(w);
}

/** The inverse of `parse`, for logs and the CLI. */
export function format(r: Resources): string {
  const parts: string[] = [];
  for (const name of SCALARS) if (r[name] !== 0) parts.push(`${name}:${fromFixed(r[name])}`);
  if (r.ports.length > 0) parts.push(`ports:[${r.ports.map(([b, e]) => `${b}-${e}`).join(',')}]`);
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
