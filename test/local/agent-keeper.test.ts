/**
 * The local stack keeps its agents running: one that dies is said so and started again; one
 * that keeps dying is left down, saying so; stop() ends it for good. Real child processes stand
 * in for the agent.
 */
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { KeptAgent } from '../../lib/local/agent-keeper.ts';

const kept: KeptAgent[] = [];
afterEach(async () => {
  await Promise.all(kept.splice(0).map((k) => k.stop()));
});

/** A stand-in agent: says "registered" on stderr, then runs until killed (or exits with `code`). */
const fakeAgent = (code?: number) => () =>
  spawn(
    process.execPath,
    [
      '-e',
      `console.error('registered'); ${code === undefined ? 'setInterval(() => {}, 1000)' : `process.exit(${code})`}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );

function keep(spawnIt: () => ReturnType<typeof spawn>, extra: { maxRestarts?: number } = {}) {
  const said: string[] = [];
  const logged: string[] = [];
  let gaveUp: () => void = () => {};
  const down = new Promise<void>((r) => {
    gaveUp = r;
  });
  let spawned = 0;
  let onSpawn: () => void = () => {};
  const agent = new KeptAgent({
    name: 'agent-0',
    say: (l) => {
      said.push(l);
      if (/not restarting/.test(l)) gaveUp();
    },
    log: (t) => logged.push(t),
    restartDelayMs: 0,
    spawn: () => {
      spawned++;
      onSpawn();
      return spawnIt();
    },
    ...extra,
  });
  kept.push(agent);
  return {
    agent,
    said,
    logged,
    spawned: () => spawned,
    down,
    nextSpawn: () =>
      new Promise<void>((r) => {
        onSpawn = r;
      }),
  };
}

it('an agent killed with SIGKILL is said to be dead and started again; its lines carry its name', async () => {
  const k = keep(fakeAgent());
  await k.agent.firstRegistration;
  expect(k.logged.join('')).toBe('[agent-0] registered\n');
  const restarted = k.nextSpawn();
  const first = k.agent.process;
  first.kill('SIGKILL');
  await restarted;
  expect(k.spawned()).toBe(2);
  expect(k.agent.process).not.toBe(first);
  expect(k.said).toEqual([
    '[agent-0] the agent killed by SIGKILL; restarting it (its tasks are recovered from its work directory)',
  ]);
  await k.agent.stop();
  expect(k.agent.process.exitCode !== null || k.agent.process.signalCode !== null).toBe(true);
});

it('one that keeps dying is left down after maxRestarts, saying so', async () => {
  const k = keep(fakeAgent(3), { maxRestarts: 2 });
  await k.down;
  expect(k.agent.gaveUp).toBe(true);
  expect(k.spawned()).toBe(3);
  expect(k.said.at(-1)).toMatch(
    /^\[agent-0\] the agent exited with code 3 \(3 times within 60 s\); not restarting it/,
  );
});

it('stop() is not a death: no restart', async () => {
  const k = keep(fakeAgent());
  await k.agent.firstRegistration;
  await k.agent.stop();
  expect(k.spawned()).toBe(1);
  expect(k.said).toEqual([]);
});
