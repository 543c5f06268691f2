/** Small helpers the bench scripts share. */
import { startEmulators } from '../lib/local/emulators.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The `p`th percentile of an ascending list (nearest rank, rounded down). */
export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Mulberry32: a tiny seeded generator, so a run can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Starts the embedded emulators, signing with `credential` unless keys are set (the emulators
 * accept any), and returns them with the AWS config that reaches them.
 */
export async function startBenchEmulators(credential: string) {
  process.env.AWS_ACCESS_KEY_ID ??= credential;
  process.env.AWS_SECRET_ACCESS_KEY ??= credential;
  const emulators = await startEmulators();
  const aws = {
    region: emulators.region,
    dynamoEndpoint: emulators.dynamoEndpoint,
    sqsEndpoint: emulators.sqsEndpoint,
  };
  return { emulators, aws };
}
