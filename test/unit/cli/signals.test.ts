/** `meso run` cleans up on what a process manager or a closing terminal sends, not only on Ctrl-C. */
import { expect, it } from 'vitest';
import { INTERRUPTS, processIo } from '../../../lib/cli/io.ts';

it('SIGINT, SIGTERM and SIGHUP each reach the interrupt handler, until it is removed', () => {
  expect([...INTERRUPTS].sort()).toEqual(['SIGHUP', 'SIGINT', 'SIGTERM']);
  const seen: string[] = [];
  const before = INTERRUPTS.map((s) => process.listenerCount(s));
  const stop = processIo.onInterrupt((signal) => seen.push(signal));
  // process.emit calls the listeners as a delivered signal would, without signalling the test.
  for (const s of INTERRUPTS) process.emit(s, s);
  expect(seen).toEqual([...INTERRUPTS]);
  stop();
  expect(INTERRUPTS.map((s) => process.listenerCount(s))).toEqual(before);
});
