/** `meso run` asking for more than any agent has says so at once; `--timeout` bounds the wait for an offer. */
import { expect, it } from 'vitest';
import type { CliIo } from '../../../lib/cli/io.ts';
import { runProgram } from '../../../lib/cli/program.ts';
import { neverFits } from '../../../lib/cli/run-fit.ts';
import type { ClusterConfig } from '../../../lib/config/cluster.ts';
import type { AgentRecord } from '../../../lib/core/model.ts';
import { parse } from '../../../lib/core/resources.ts';
import { MesoSdkError } from '../../../lib/sdk/errors.ts';
import type { RunTaskOptions, RunTaskResult } from '../../../lib/sdk/run-task.ts';

const agent = (hostname: string, total: string, status: AgentRecord['status'] = 'ACTIVE'): AgentRecord =>
  ({ agentId: `id-${hostname}`, hostname, status, total: parse(total) }) as unknown as AgentRecord;

it('neverFits: only when every known agent is too small, counting reservations; unknown cluster: cannot tell', () => {
  const big = parse('cpus:1;mem:999999');
  expect(neverFits([], big)).toBeUndefined();
  expect(neverFits([agent('h1', 'cpus:2;mem:23081')], big)).toBe(
    'no agent in the cluster could ever hold cpus:1;mem:999999 (h1 has cpus:2;mem:23081): ask for less, or add an agent that large',
  );
  expect(
    neverFits([agent('h1', 'cpus:2;mem:23081'), agent('h2', 'cpus:4;mem:1000000')], big),
  ).toBeUndefined();
  expect(neverFits([agent('h1', 'cpus:2;mem:500000;mem(eng):500000')], big)).toBeUndefined();
  // A GONE agent will never hold anything again.
  expect(neverFits([agent('h1', 'cpus:2;mem:1000000', 'GONE')], big)).toBeUndefined();
  expect(neverFits([agent('h1', 'cpus:2;mem:1000000', 'GONE'), agent('h2', 'cpus:2;mem:10')], big)).toMatch(
    /^no agent .* \(h2 has cpus:2;mem:10\)/,
  );
});

const CLUSTER = {
  aws: { region: 'us-east-1', sqsEndpoint: 'http://127.0.0.1:1' },
  prefix: 'meso',
  queues: {
    schedulerCalls: 'http://q/c',
    agentCalls: 'http://q/a',
    allocator: 'http://q/l',
    timers: 'http://q/t',
  },
  tables: { agents: 'a', frameworks: 'f', tasks: 't', meta: 'm' },
  source: 'test',
} as ClusterConfig;

/** `meso run` whose runTask waits for offers that never fit, as the real one does, until aborted. */
async function waitingRun(argv: string[], agents: readonly AgentRecord[] | undefined) {
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: () => true },
    stderr: { write: (t: string) => err.push(t) },
    onInterrupt: () => () => {},
    exit: (code: number): never => {
      throw new Error(`exit ${code}`);
    },
  } as unknown as CliIo;
  let aborted = false;
  const code = await runProgram(argv, {
    io,
    run: {
      loadConfig: () => CLUSTER,
      createSqsClient: () => ({ destroy: () => {} }) as never,
      listAgents: async () => agents,
      runTask: (opts: RunTaskOptions) =>
        new Promise<RunTaskResult>((_, fail) => {
          opts.onSubscribed?.('fw');
          opts.signal?.addEventListener('abort', () => {
            aborted = true;
            fail(new MesoSdkError('the run was aborted before the task was launched', 'ABORTED'));
          });
        }),
    },
  });
  return { code, err: err.join(''), aborted };
}

it('meso run --mem 999999 on a cluster whose agents are all smaller says so at once and exits 1', async () => {
  const r = await waitingRun(['run', '--mem', '999999', 'true'], [agent('vm', 'cpus:2;mem:23081')]);
  expect(r.aborted).toBe(true);
  expect(r.code).toBe(1);
  expect(r.err).toContain(
    'meso: no agent in the cluster could ever hold cpus:0.1;mem:999999 (vm has cpus:2;mem:23081): ask for less, or add an agent that large\n',
  );
});

it('--timeout gives up when no offer fits in time, saying so', async () => {
  const r = await waitingRun(['run', '--timeout', '0.2', '--mem', '64', 'true'], undefined);
  expect(r.aborted).toBe(true);
  expect(r.code).toBe(1);
  expect(r.err).toContain('meso: no offer held cpus:0.1;mem:64 within 0.2 s (--timeout); giving up\n');
});
