/**
 * Parsing of `meso run`'s arguments: pure functions, unit-tested.
 */
import { InvalidArgumentError } from 'commander';
import { parse as parseResources } from '../core/resources.ts';
import { UsageError } from './io.ts';

/**
 * The command of `meso run`, with Mesos's semantics: one argument is a shell command
 * (`meso run 'echo $HOME'` runs `sh -c 'echo $HOME'`), several are an argv run without a shell
 * (`meso run -- sh -c 'echo hi'`). `shell: false` (`--no-shell`) makes one argument an argv too.
 */
export function commandFromArgs(args: readonly string[], opts: { shell?: boolean } = {}): string | string[] {
  if (args.length === 0 || args[0] === '')
    throw new UsageError('no command given: meso run [options] -- <command...>');
  if (args.length === 1 && opts.shell !== false) return args[0]!;
  return [...args];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `--env K=V` (repeatable) into an environment; the value may hold `=`, the last K wins. */
export function parseEnvPairs(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !ENV_NAME.test(key)) {
      throw new UsageError(`--env expects NAME=value with NAME of letters, digits and _, got "${pair}"`);
    }
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

/** Commander's collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A resource amount: a non-negative decimal with at most three places (Mesos's precision). */
export function parseAmount(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a non-negative number, got "${value}"`);
  }
  if (Math.abs(Math.round(n * 1000) - n * 1000) > 1e-6) {
    throw new InvalidArgumentError(`at most three decimal places, got "${value}"`);
  }
  return n;
}

/** Seconds: a non-negative number. */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a non-negative number of seconds, got "${value}"`);
  }
  return n;
}

/** A positive integer (agent counts). */
export function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  }
  return n;
}

/** Agent resources in Mesos syntax (`cpus:2;mem:2048;ports:[31000-32000]`), checked, kept as text. */
export function parseResourceSpec(value: string): string {
  try {
    parseResources(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
  return value;
}
