/**
 * `npm run chaos`: the chaos run (bench/chaos-run.ts) on fresh emulators — several agents and
 * frameworks launching and killing tasks while agents are cut off, crashed and restarted,
 * frameworks fail over, handler invocations fail or time out, DynamoDB throttles and conflicts,
 * SQS sends fail, repeat and lag, and the control plane's clients are recreated. It prints the
 * invariants and the figures and exits 1 if any invariant failed.
 *
 * Options: --seed N (default: random, printed), --duration S (fault phase, default 60),
 * --agents N (4), --frameworks N (3), --tasks N (400), --rate P (0.05), --every MS (1500),
 * --settle S (90), --json (the report as JSON on stdout).
 */
import { parseArgs } from 'node:util';
import { provision } from '../lib/local/provision.ts';
import { formatReport, runChaos } from './chaos-run.ts';
import { startBenchEmulators } from './common.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string', default: '60' },
    agents: { type: 'string', default: '4' },
    frameworks: { type: 'string', default: '3' },
    tasks: { type: 'string', default: '400' },
    rate: { type: 'string', default: '0.05' },
    every: { type: 'string', default: '1500' },
    settle: { type: 'string', default: '90' },
    json: { type: 'boolean', default: false },
  },
});

async function main(): Promise<number> {
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  process.stderr.write(`chaos: seed ${seed}\n`);
  const { emulators, aws } = await startBenchEmulators('mesochaos');
  try {
    const prefix = `chaos${seed % 100_000}`;
    const p = await provision({ aws, prefix });
    const report = await runChaos({
      seed,
      cluster: { aws, prefix, queues: p.queues, tables: p.tables, source: 'chaos' },
      dlqs: p.dlqs,
      faultPhaseMs: Number(values.duration) * 1000,
      settleMs: Number(values.settle) * 1000,
      agents: Number(values.agents),
      frameworks: Number(values.frameworks),
      maxTasks: Number(values.tasks),
      faultRate: Number(values.rate),
      eventEveryMs: Number(values.every),
      partitionBlocksDeletes: true,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return report.violations === 0 ? 0 : 1;
  } finally {
    await emulators.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
