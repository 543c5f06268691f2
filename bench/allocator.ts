/**
 * The allocator benchmark: one full allocation cycle in the pure core (lib/core/allocator.ts),
 * median of 5 after a warm-up, for the shapes in docs/benchmarks.md, plus the DynamoDB calls one
 * cycle costs on the emulators (`--emulators`, counted at the client).
 *
 * Run: `npm run bench:allocator` (or `npx tsx bench/allocator.ts [--quick] [--emulators]`).
 * `--emulators` also starts DynamoDB Local and runs the control plane's cycle over it.
 * Not a test: it prints a table and the machine it ran on, for docs/benchmarks.md.
 *
 * Shapes (see bench/allocator-shapes.ts):
 * - agents × frameworks, frameworks spread over √F roles (a third of them with two child roles,
 *   weights 1-3), every agent free: the first cycle after a cold start;
 * - the same with 50 % of every agent already running tasks;
 * - the cycle after every framework declined, with a long filter, each offer it got in the
 *   previous cycle (Mesos's DeclineOffers benchmark): each agent must go to someone else;
 * - quota-heavy: 3,000 agents, 3,000 roles each with a guarantee (half the cluster in all),
 *   every fourth also with a limit, one framework per role.
 */
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { apiCalls, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { createDynamoClient, DynamoStore } from '../lib/adapters/dynamo-store.ts';
import { AgentView, OVERLAP_MS } from '../lib/control/agent-view.ts';
import { runAllocationCycle } from '../lib/control/allocation.ts';
import { type ControlDeps, DEFAULT_CONTROL_CONFIG } from '../lib/control/deps.ts';
import { takeAgentOffers } from '../lib/control/records/agents.ts';
import { roleKey } from '../lib/control/roles.ts';
import { type Allocation, type AllocationInput, allocate } from '../lib/core/allocator.ts';
import type { AgentRecord, FrameworkRecord } from '../lib/core/model.ts';
import { provision } from '../lib/local/provision.ts';
import type { Bus } from '../lib/ports/bus.ts';
import type { Item, WriteOp } from '../lib/ports/store.ts';
import { AGENT, buildQuotaShape, buildShape, shuffler, withDeclines } from './allocator-shapes.ts';
import { startBenchEmulators } from './common.ts';

const args = new Set(process.argv.slice(2));
// A full collection before each timed run, so one run's garbage is not the next one's time.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const pause = new Int32Array(new SharedArrayBuffer(4));
const quick = args.has('--quick');

interface Row {
  readonly shape: string;
  readonly medianMs: number;
  readonly minMs: number;
  /** Median CPU time of the process over a cycle (user + system): what other load inflates least. */
  readonly cpuMs: number;
  readonly offers: number;
  readonly goalMs?: number;
}

interface Measured {
  median: number;
  min: number;
  cpu: number;
  result: Allocation;
}

function measure(input: AllocationInput, runs = 5): Measured {
  const shuffle = shuffler(42);
  let result = allocate(input, { shuffle }); // warm-up: JIT and inline caches
  const times: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i++) {
    gc(); // each run starts from a collected heap…
    Atomics.wait(pause, 0, 0, 20); // …and the collector's background sweeping done
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    result = allocate(input, { shuffle });
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  const mid = Math.floor(runs / 2);
  return { median: times[mid]!, min: times[0]!, cpu: cpus[mid]!, result };
}

const row = (shape: string, m: Measured, goalMs?: number): Row => ({
  shape,
  medianMs: m.median,
  minMs: m.min,
  cpuMs: m.cpu,
  offers: m.result.offers.length,
  ...(goalMs !== undefined ? { goalMs } : {}),
});

const GOALS: Record<string, number> = {
  '10000x1000': 25,
  '10000x3000': 40,
  '50000x1000': 150,
};

/**
 * One allocation cycle through the real control-plane code over DynamoDB Local: `agents` agents
 * and `frameworks` frameworks (in 10 roles with settings in the meta table) written to the tables,
 * then cycles run; DynamoDB calls counted at the client, SQS messages counted at a stub bus (the
 * SQS emulator is not the subject here).
 */
async function emulatorCycles(agents: number, frameworks: number): Promise<string[]> {
  const { emulators, aws } = await startBenchEmulators('mesobench');
  try {
    const p = await provision({ aws, prefix: 'allocbench' });
    const messages = { sent: 0, calls: 0 };
    const bus: Bus = {
      async send(_url, ms) {
        messages.sent += ms.length;
        messages.calls += Math.ceil(ms.length / 10);
      },
    };
    const store = new DynamoStore(createDynamoClient(aws), p.tables);
    let n = 0;
    const deps: ControlDeps = {
      store,
      bus,
      clock: { now: () => Date.now() },
      ids: { next: () => `id${n++}` },
      metrics: { count: () => {} },
      log: { info: () => {}, warn: () => {}, error: (m, e) => console.error(m, e) },
      config: { ...DEFAULT_CONTROL_CONFIG, queues: p.queues, prefix: 'allocbench' },
    };
    const now = Date.now();
    const puts: WriteOp[] = [];
    for (let i = 0; i < agents; i++) {
      const a: AgentRecord = {
        agentId: `agent-${i}`,
        principal: 'bench',
        hostname: `host-${i}`,
        queueUrl: `http://localhost/allocbench-agent-${i}.fifo`,
        total: AGENT,
        attributes: { rack: `r${i % 10}` },
        status: 'ACTIVE',
        offers: {},
        tasks: {},
        registeredAt: now,
        lastSeenAt: now,
        shard: 0,
        version: 0,
      };
      puts.push({ kind: 'put', table: 'agents', item: a as unknown as Item, expect: 'absent' });
    }
    for (let j = 0; j < frameworks; j++) {
      const f: FrameworkRecord = {
        frameworkId: `fw-${j}`,
        principal: 'bench',
        name: `fw-${j}`,
        roles: [`team${j % 10}`],
        queueUrl: `http://localhost/allocbench-fw-${j}.fifo`,
        status: 'ACTIVE',
        failoverTimeoutSeconds: 0,
        partitionAware: false,
        filters: {},
        subscribedAt: now,
        version: 0,
      };
      puts.push({ kind: 'put', table: 'frameworks', item: f as unknown as Item, expect: 'absent' });
    }
    for (let r = 0; r < 10; r++) {
      puts.push({
        kind: 'put',
        table: 'meta',
        item: { key: roleKey(`team${r}`), role: `team${r}`, weight: 1 + (r % 3), updatedAt: now },
        expect: 'absent',
      });
    }
    for (let i = 0; i < puts.length; i += 50)
      await Promise.all(puts.slice(i, i + 50).map((op) => store.write([op])));

    const lines: string[] = [];
    // The allocator instance's view of the agents, as the allocator's handler keeps it.
    const view = new AgentView();
    const labels = [
      'first cycle (every agent free)',
      'next cycle, 5.5 s later (reads back the first one’s offers)',
      'next cycle, one agent changed',
    ];
    for (const label of labels) {
      // Past the view's re-read overlap since the first cycle's writes, so the next cycles read
      // only what changed after it; then one agent's offers are taken back.
      if (label === labels[1]) await new Promise((r) => setTimeout(r, OVERLAP_MS + 500));
      if (label === labels[2]) await takeAgentOffers(store, 'agent-0', () => true);
      apiCalls.clear();
      messages.sent = 0;
      messages.calls = 0;
      const t0 = performance.now();
      const report = await runAllocationCycle(deps, 0, { view });
      const ms = performance.now() - t0;
      const calls = snapshotCalls();
      const dynamo = Object.entries(calls)
        .filter(([k]) => k.startsWith('DynamoDB.'))
        .map(([k, v]) => `${k.slice('DynamoDB.'.length)} ${v}`)
        .join(', ');
      lines.push(
        `| ${agents} agents × ${frameworks} frameworks, ${label} | ${report.offers} | ${report.agentsRead} | ${dynamo || 'none'} | ${messages.sent} messages in ${messages.calls} SendMessageBatch | ${report.decideMs.toFixed(1)} | ${ms.toFixed(0)} |`,
      );
    }
    return lines;
  } finally {
    await emulators.stop();
  }
}

function main(): void {
  const rows: Row[] = [];
  const agentCounts = quick ? [1_000, 10_000] : [1_000, 10_000, 50_000];
  const frameworkCounts = quick ? [100, 1_000] : [100, 1_000, 3_000];
  for (const agents of agentCounts) {
    for (const frameworks of frameworkCounts) {
      const key = `${agents}x${frameworks}`;
      const input = buildShape({ agents, frameworks });
      const fresh = measure(input);
      rows.push(row(`${key} all free`, fresh, GOALS[key]));
      rows.push(row(`${key} 50% allocated`, measure(buildShape({ agents, frameworks, allocated: 0.5 }))));
      const declined = measure(withDeclines(input, fresh.result.offers));
      rows.push(row(`${key} after all declined`, declined, 2 * fresh.median));
    }
  }
  const q = measure(buildQuotaShape(3_000, 3_000));
  rows.push(row('quota-heavy 3000 agents x 3000 roles', q, 250));

  const cpus = os.cpus();
  console.log(`# allocator cycle, median of 5 (after a warm-up), ${new Date().toISOString().slice(0, 10)}`);
  console.log(
    `# ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('| shape | median ms | min ms | CPU ms (median) | offers | goal ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const goal =
      r.goalMs === undefined ? '' : `${r.goalMs.toFixed(1)}${r.medianMs <= r.goalMs ? ' ✓' : ' ✗'}`;
    console.log(
      `| ${r.shape} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)} | ${r.cpuMs.toFixed(1)} | ${r.offers} | ${goal} |`,
    );
  }
}

main();
if (args.has('--emulators')) {
  const sizes: [number, number][] = quick
    ? [[200, 20]]
    : [
        [200, 20],
        [1_000, 100],
      ];
  (async () => {
    console.log('\n# one cycle on the emulators (DynamoDB Local), calls counted at the client');
    console.log(
      '| cluster, cycle | offers | agents read | DynamoDB calls | SQS (stub bus) | decide ms | cycle ms |',
    );
    console.log('| --- | ---: | ---: | --- | --- | ---: | ---: |');
    for (const [a, f] of sizes) for (const l of await emulatorCycles(a, f)) console.log(l);
  })().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
