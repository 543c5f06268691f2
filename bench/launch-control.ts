/**
 * The control plane as its own process, for `bench/launch.ts` (as in AWS, where it runs in
 * Lambda, apart from frameworks and agents). Lines on stdin: `calls` prints the process's API-call
 * tally, its billed units, Lambda invocations and time per function and the call detail as one
 * JSON line; `reset` clears them; `stop` stops the handlers and exits.
 *
 * Run: `tsx bench/launch-control.ts '<{"cluster":…,"dlqs":…,"interval":…}>'`.
 */
import { createInterface } from 'node:readline';
import { apiCalls, apiCapacity, apiUnits, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { startBenchControlPlane } from './launch-control-plane.ts';

const arg = process.argv[2];
if (!arg) {
  console.error('usage: launch-control.ts <json: cluster, dlqs, interval>');
  process.exit(2);
}
const { cluster, dlqs, interval } = JSON.parse(arg);
const { cp, tally } = startBenchControlPlane(cluster, dlqs, interval);
console.log(
  JSON.stringify({ started: true, allocationIntervalSeconds: cp.deps.config.allocationIntervalSeconds }),
);

createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'calls') {
    console.log(
      JSON.stringify({
        calls: snapshotCalls(apiCalls),
        units: snapshotCalls(apiUnits),
        capacity: snapshotCalls(apiCapacity),
        lambda: Object.fromEntries(tally.lambda),
        detail: Object.fromEntries(tally.detail),
      }),
    );
  }
  if (line === 'reset') {
    apiCalls.clear();
    apiUnits.clear();
    apiCapacity.clear();
    tally.lambda.clear();
    tally.detail.clear();
  }
  if (line === 'stop') {
    await cp.stop();
    console.log(JSON.stringify({ stopped: true }));
    process.exit(0);
  }
});
