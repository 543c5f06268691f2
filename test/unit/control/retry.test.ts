/**
 * Throttling and transient errors retried with exponential backoff and full jitter
 * (lib/control/retry.ts); conditional-check failures left to the caller, who must re-read.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../lib/adapters/memory-store.ts';
import { queueArg } from '../../../lib/cli/dlq.ts';
import { isTransient, resilientStore, retryTransient } from '../../../lib/control/retry.ts';
import { ConditionFailedError } from '../../../lib/ports/store.ts';

const throttle = () =>
  Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' });

describe('retryTransient', () => {
  it('retries throttling with growing, jittered waits, then succeeds', async () => {
    const waits: number[] = [];
    let calls = 0;
    const out = await retryTransient(
      async () => {
        if (++calls < 4) throw throttle();
        return 'ok';
      },
      {
        attempts: 4,
        baseDelayMs: 100,
        maxDelayMs: 250,
        random: () => 0.5,
        sleep: async (ms) => void waits.push(ms),
      },
    );
    expect(out).toBe('ok');
    // Full jitter: a random share of 100, 200, 250 (capped).
    expect(waits).toEqual([50, 100, 125]);
  });

  it('gives up after its attempts, so the record fails and SQS redelivers it', async () => {
    let calls = 0;
    await expect(
      retryTransient(
        async () => {
          calls++;
          throw throttle();
        },
        { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} },
      ),
    ).rejects.toThrow('slow down');
    expect(calls).toBe(3);
  });

  it('does not retry a failed condition (the caller re-reads) or a plain error', async () => {
    let calls = 0;
    await expect(
      retryTransient(async () => {
        calls++;
        throw new ConditionFailedError('changed');
      }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(calls).toBe(1);
    expect(isTransient(new Error('boom'))).toBe(false);
    expect(isTransient(Object.assign(new Error('x'), { $retryable: {} }))).toBe(true);
  });

  it('a resilient store retries its inner store transparently', async () => {
    const inner = new MemoryStore();
    let fail = 2;
    const flaky = {
      ...inner,
      get: inner.get.bind(inner),
      query: inner.query.bind(inner),
      scan: inner.scan.bind(inner),
      increment: inner.increment.bind(inner),
      write: async (ops: Parameters<MemoryStore['write']>[0]) => {
        if (fail-- > 0) throw throttle();
        return inner.write(ops);
      },
    };
    const store = resilientStore(flaky, { attempts: 4, baseDelayMs: 1, maxDelayMs: 1 });
    await store.write([{ kind: 'put', table: 'meta', item: { key: 'k' }, expect: 'absent' }]);
    expect(await inner.get('meta', { key: 'k' })).toMatchObject({ key: 'k' });
    expect(resilientStore(store)).toBe(store);
  });
});

describe('meso dlq --queue', () => {
  it('takes a queue by its name or its key', () => {
    expect(queueArg('scheduler-calls')).toEqual(['schedulerCalls']);
    expect(queueArg('timers')).toEqual(['timers']);
    expect(queueArg(undefined)).toBeUndefined();
    expect(() => queueArg('nope')).toThrow(/unknown queue/);
  });
});
