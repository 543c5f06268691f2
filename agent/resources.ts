/**
 * What an agent offers: cpus, memory, disk of its work directory and a port range, detected from
 * the machine and overridable per resource with Mesos's `--resources` syntax; and its attributes
 * (`--attributes rack:r1;zone:a`).
 */
import { statfsSync } from 'node:fs';
import os from 'node:os';
import {
  resources as makeResources,
  parse as parseResources,
  type Range,
  ResourceError,
  type Resources,
  SCALARS,
  SCALE,
  type ScalarName,
} from '../lib/core/resources.ts';

/** Mesos's default agent port range. */
export const DEFAULT_PORTS: readonly Range[] = Object.freeze([[31000, 32000] as const]);

/** Memory left to the OS and the agent: min(1 GB, 10 % of the total). */
export function memReserveMb(totalMb: number): number {
  return Math.min(1024, Math.floor(totalMb / 10));
}

/** Disk left free in the work directory's file system: min(5 GB, 10 % of the total). */
export function diskReserveMb(totalMb: number): number {
  return Math.min(5 * 1024, Math.floor(totalMb / 10));
}

/** What detection reads from the machine; injected in tests. */
export interface MachineFacts {
  readonly cpus: number;
  readonly memBytes: number;
  /** Total size of the file system that holds the work directory. */
  readonly diskBytes: number;
}

export function readMachineFacts(workDir: string): MachineFacts {
  const fs = statfsSync(workDir);
  return {
    cpus: os.availableParallelism(),
    memBytes: os.totalmem(),
    diskBytes: fs.blocks * fs.bsize,
  };
}

const MB = 1024 * 1024;

/** The resources an agent offers on a machine with these facts, before `--resources` overrides. */
export function detectedResources(facts: MachineFacts): Resources {
  const memMb = Math.floor(facts.memBytes / MB);
  const diskMb = Math.floor(facts.diskBytes / MB);
  return makeResources({
    cpus: Math.max(0, Math.floor(facts.cpus)) * SCALE,
    mem: Math.max(0, memMb - memReserveMb(memMb)) * SCALE,
    disk: Math.max(0, diskMb - diskReserveMb(diskMb)) * SCALE,
    ports: DEFAULT_PORTS,
  });
}

/** The names a `--resources` spec mentions (`cpus:2;ports:[...]` → cpus, ports). */
function mentioned(spec: string): Set<ScalarName | 'ports'> {
  const names = new Set<ScalarName | 'ports'>();
  for (const raw of spec.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    // `cpus(eng):2` (a static reservation) names cpus too: the spec replaces the detected value.
    const name = part
      .slice(0, part.indexOf(':'))
      .replace(/\(.*\)/, '')
      .trim();
    if (name === 'ports' || (SCALARS as readonly string[]).includes(name))
      names.add(name as ScalarName | 'ports');
  }
  return names;
}

/**
 * Detected resources with the resources a `--resources` spec names replaced by its values;
 * the others stay as detected (`cpus:2` keeps the detected memory, disk and ports).
 * Throws ResourceError on a malformed spec.
 *
 * @example
 * withOverrides(detectedResources(readMachineFacts('/var/lib/meso')), 'cpus:2;ports:[8000-8100]')
 */
export function withOverrides(detected: Resources, spec: string | undefined): Resources {
  if (spec === undefined || spec.trim() === '') return detected;
  const given = parseResources(spec);
  const names = mentioned(spec);
  return makeResources({
    cpus: names.has('cpus') ? given.cpus : detected.cpus,
    mem: names.has('mem') ? given.mem : detected.mem,
    disk: names.has('disk') ? given.disk : detected.disk,
    gpus: names.has('gpus') ? given.gpus : detected.gpus,
    ports: names.has('ports') ? given.ports : detected.ports,
    ...(given.reserved ? { reserved: given.reserved } : {}),
  });
}

/** Detects this machine's resources (disk measured where `workDir` lives) and applies overrides. */
export function agentResources(workDir: string, spec?: string, facts?: MachineFacts): Resources {
  return withOverrides(detectedResources(facts ?? readMachineFacts(workDir)), spec);
}

/**
 * Parses Mesos attribute syntax, `rack:r1;zone:a` → `{ rack: 'r1', zone: 'a' }`. The first `:`
 * splits name from value, so values may contain colons. Throws ResourceError on a malformed part
 * or a repeated name.
 */
export function parseAttributes(spec: string | undefined): Record<string, string> {
  const out = new Map<string, string>();
  if (spec === undefined) return {};
  for (const raw of spec.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    const colon = part.indexOf(':');
    if (colon < 0) throw new ResourceError(`expected name:value in attribute "${part}"`);
    const name = part.slice(0, colon).trim();
    const value = part.slice(colon + 1).trim();
    if (name === '') throw new ResourceError(`attribute "${part}" has no name`);
    if (value === '') throw new ResourceError(`attribute "${name}" has no value`);
    if (name.length > 128 || value.length > 1024) throw new ResourceError(`attribute "${name}" is too long`);
    if (out.has(name)) throw new ResourceError(`attribute "${name}" is given twice`);
    out.set(name, value);
  }
  // fromEntries defines own properties, so a name like `__proto__` cannot reach the prototype.
  return Object.fromEntries(out);
}

/** `--share 2/3` → the 2nd of 3 shares (1-based). Throws ResourceError on anything else. */
export function parseShare(text: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || count > 1000 || index < 1 || index > count) {
    throw new ResourceError(`expected --share i/n with 1 <= i <= n <= 1000, got "${text}"`);
  }
  return { index, count };
}

/** The `index`-th (1-based) of `count` contiguous, equal slices of the ports; what does not divide is left out. */
function portSlice(ranges: readonly Range[], index: number, count: number): Range[] {
  let total = 0;
  for (const [b, e] of ranges) total += e - b + 1;
  const per = Math.floor(total / count);
  let skip = (index - 1) * per;
  let left = per;
  const out: Range[] = [];
  for (const [b, e] of ranges) {
    const size = e - b + 1;
    if (skip >= size) {
      skip -= size;
      continue;
    }
    const from = b + skip;
    skip = 0;
    const n = Math.min(left, e - from + 1);
    if (n > 0) out.push([from, from + n - 1]);
    left -= n;
    if (left === 0) break;
  }
  return out;
}

function partShare<P extends Omit<Resources, 'reserved'>>(p: P, index: number, count: number) {
  // cpus keep three decimals; memory and disk are whole MB.
  const whole = (v: number) => Math.floor(v / count / SCALE) * SCALE;
  return {
    cpus: Math.floor(p.cpus / count),
    mem: whole(p.mem),
    disk: whole(p.disk),
    gpus: whole(p.gpus),
    ports: portSlice(p.ports, index, count),
  };
}

/**
 * One of `count` agents on one machine offers the `index`-th share of it: each scalar divided by
 * `count` (rounded down) and its own slice of the ports, so the agents together claim the machine
 * once, and no port is offered twice (`meso dev --agents N`).
 *
 * @example
 * shareOf(parse('cpus:2;mem:2048;ports:[31000-32000]'), 2, 2); // cpus:1;mem:1024;ports:[31500-31999]
 */
export function shareOf(r: Resources, index: number, count: number): Resources {
  const reserved = r.reserved
    ? Object.fromEntries(Object.entries(r.reserved).map(([role, p]) => [role, partShare(p, index, count)]))
    : undefined;
  return makeResources({ ...partShare(r, index, count), ...(reserved ? { reserved } : {}) });
}
