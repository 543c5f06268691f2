/**
 * One calibrating process for `bench/calibrate.ts`: a replayer of the run's calls with its share
 * of the callers. Prints `{"ready":true}` once its queues and items exist; then each stdin line
 * `round <seconds>` runs a timed round and prints `{"round":…}`, and `close` removes its queues
 * and exits.
 *
 * Run: `tsx bench/calibrate-process.ts '<{"cluster":…,"mix":…,"callers":N,"name":…}>'`.
 */
import { createInterface } from 'node:readline';
import { replayer } from './calibrate.ts';

const arg = process.argv[2];
if (!arg) {
  console.error('usage: calibrate-process.ts <json: cluster, mix, callers, name>');
  process.exit(2);
}
const { cluster, mix, callers, name } = JSON.parse(arg);
const r = await replayer(cluster, mix, { callers, name });
console.log(JSON.stringify({ ready: true }));

createInterface({ input: process.stdin }).on('line', async (line) => {
  const [command, arg1] = line.split(' ');
  if (command === 'round') console.log(JSON.stringify({ round: await r.round(Number(arg1)) }));
  if (command === 'close') {
    await r.close();
    process.exit(0);
  }
});
