/**
 * One agent as its own process, for `bench/launch.ts`: the same Agent and SQS client as deployed,
 * started from the arguments, reporting on stdout. Lines on stdin: `calls` prints the process's
 * API-call tally and its units as one JSON line; `stop` stops the agent (killing its tasks) and exits.
 *
 * With `MESO_BENCH_AGENT_CALLS=1` each `calls` answer is also written to stderr as
 * `{"agentCalls": …}`, so the agents' calls by operation can be read apart from the others'.
 *
 * Run: `tsx bench/launch-agent.ts <agent-calls queue url> <prefix> <work dir> <resources>`
 * (the emulators' endpoint and credentials from the environment, as `configToEnv` writes them).
 */
import { createInterface } from 'node:readline';
import { Agent } from '../agent/agent.ts';
import { silentLog } from '../agent/log.ts';
import { apiCalls, apiUnits, snapshotCalls } from '../lib/adapters/api-calls.ts';
import { awsConfigFromEnv } from '../lib/adapters/aws-config.ts';
import { createSqsHttpClient } from '../lib/adapters/sqs-http.ts';

const [queueUrl, prefix, workDir, resources] = process.argv.slice(2);
if (!queueUrl || !prefix || !workDir || !resources) {
  console.error('usage: launch-agent.ts <agent-calls queue url> <prefix> <work dir> <resources>');
  process.exit(2);
}
const sqs = createSqsHttpClient(awsConfigFromEnv());
const agent = new Agent({ sqs, agentCallsQueueUrl: queueUrl, prefix, workDir, resources, log: silentLog });
agent.once('registered', () => console.log(JSON.stringify({ registered: true })));
await agent.start();

createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'calls') {
    const calls = snapshotCalls(apiCalls);
    console.log(JSON.stringify({ calls, units: snapshotCalls(apiUnits) }));
    // The agents' own calls by operation (the report sums them with everyone's), on request.
    if (process.env.MESO_BENCH_AGENT_CALLS) console.error(JSON.stringify({ agentCalls: calls }));
  }
  if (line === 'reset') {
    apiCalls.clear();
    apiUnits.clear();
  }
  if (line === 'stop') {
    await agent.stop({ killTasks: true });
    sqs.close();
    console.log(JSON.stringify({ stopped: true }));
    process.exit(0);
  }
});
