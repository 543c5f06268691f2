/**
 * `meso dlq`: what the control plane gave up on. `meso dlq` (or `meso dlq list`) shows each
 * dead-letter queue's depth and its messages; `meso dlq redrive` puts them back on their queues
 * once the cause is fixed (all, one queue's, or the message ids named). The alarm on each
 * dead-letter queue (CloudWatch, `<prefix>-<queue>-dlq`) is what tells an operator to look.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import type { AwsConfig } from '../adapters/aws-config.ts';
import {
  type DeadLetter,
  deadLetterQueues,
  listDeadLetters,
  type RedriveReport,
  redriveDeadLetters,
} from '../adapters/dlq.ts';
import { type ClusterConfig, ConfigError } from '../config/cluster.ts';
import { QUEUES, type QueueName } from '../definition/tables-queues.ts';
import { type CliIo, EXIT, line, UsageError } from './io.ts';

export interface DlqDeps {
  io: CliIo;
  loadConfig: () => ClusterConfig;
  createSqsClient: (aws: AwsConfig) => SQSClient;
}

interface DlqOptions {
  queue?: string;
  max?: string;
  json?: boolean;
  native?: boolean;
}

/** `scheduler-calls` or `schedulerCalls` → `schedulerCalls`. */
export function queueArg(name: string | undefined): QueueName[] | undefined {
  if (name === undefined) return undefined;
  for (const [key, def] of Object.entries(QUEUES)) {
    if (key === name || def.name === name) return [key as QueueName];
  }
  throw new UsageError(
    `unknown queue "${name}" (one of ${Object.values(QUEUES)
      .map((d) => d.name)
      .join(', ')})`,
  );
}

function formatLetter(l: DeadLetter): string {
  const when = l.sentAt ? new Date(l.sentAt).toISOString() : '?';
  const body = l.body.length > 300 ? `${l.body.slice(0, 300)}…` : l.body;
  return `  ${l.messageId}  sent ${when}  group ${l.groupId ?? '-'}  from ${l.senderId ?? '?'}\n    ${body}\n`;
}

async function withClient<T>(
  deps: DlqDeps,
  fn: (sqs: SQSClient, config: ClusterConfig) => Promise<T>,
): Promise<T> {
  const config = deps.loadConfig();
  const sqs = deps.createSqsClient(config.aws);
  try {
    return await fn(sqs, config);
  } finally {
    sqs.destroy();
  }
}

async function report(deps: DlqDeps, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      deps.io.stderr.write(line(`meso dlq: ${e.message}`));
      return EXIT.USAGE;
    }
    deps.io.stderr.write(line(`meso dlq: ${(e as Error).message}`));
    return EXIT.FAILED;
  }
}

export async function dlqList(opts: DlqOptions, deps: DlqDeps): Promise<number> {
  return report(deps, () =>
    withClient(deps, async (sqs, config) => {
      const queues = queueArg(opts.queue);
      const max = opts.max ? Number(opts.max) : 100;
      const depths = await deadLetterQueues(sqs, config.prefix, queues);
      const letters = await listDeadLetters(sqs, config.prefix, { ...(queues ? { queues } : {}), max });
      if (opts.json) {
        deps.io.stdout.write(`${JSON.stringify({ queues: depths, messages: letters }, null, 2)}\n`);
        return EXIT.OK;
      }
      for (const d of depths) {
        deps.io.stdout.write(`${QUEUES[d.queue].name}-dlq: ${d.count} message${d.count === 1 ? '' : 's'}\n`);
        for (const l of letters.filter((x) => x.queue === d.queue)) deps.io.stdout.write(formatLetter(l));
      }
      const total = depths.reduce((n, d) => n + d.count, 0);
      if (total > 0) deps.io.stderr.write('meso: fix the cause, then `meso dlq redrive` puts them back.\n');
      return EXIT.OK;
    }),
  );
}

export async function dlqRedrive(ids: string[], opts: DlqOptions, deps: DlqDeps): Promise<number> {
  return report(deps, () =>
    withClient(deps, async (sqs, config) => {
      const queues = queueArg(opts.queue);
      const result: RedriveReport = await redriveDeadLetters(sqs, config.prefix, config.queues, {
        ...(queues ? { queues } : {}),
        ...(ids.length > 0 ? { messageIds: ids } : {}),
        ...(opts.native ? { useNativeMove: true } : {}),
      });
      if (opts.json) {
        deps.io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        for (const l of result.redriven)
          deps.io.stdout.write(`redriven ${l.messageId} → ${QUEUES[l.queue].name}\n`);
        for (const q of result.moveTasks)
          deps.io.stdout.write(`${QUEUES[q].name}-dlq: SQS is moving every message back\n`);
        deps.io.stderr.write(`meso: ${result.redriven.length} message(s) redriven\n`);
      }
      const missing = ids.filter((id) => !result.redriven.some((l) => l.messageId === id));
      if (missing.length > 0) {
        deps.io.stderr.write(line(`meso dlq: not found: ${missing.join(', ')}`));
        return EXIT.FAILED;
      }
      return EXIT.OK;
    }),
  );
}

export function registerDlqCommand(
  program: Command,
  deps: () => DlqDeps,
  done: (code: number) => void,
): Command {
  const dlq = program
    .command('dlq')
    .description("List and redrive the control plane's dead-letter queues (messages that failed 5 times).");
  const queueHelp = `only this queue (${Object.values(QUEUES)
    .map((d) => d.name)
    .join(', ')})`;
  dlq
    .command('list', { isDefault: true })
    .description('Show each dead-letter queue and the messages in it.')
    .option('--queue <name>', queueHelp)
    .option('--max <n>', 'messages shown per queue (default 100)')
    .option('--json', 'machine-readable output')
    .action(async (options: DlqOptions) => done(await dlqList(options, deps())));
  dlq
    .command('redrive')
    .description('Put dead letters back on their queues: all of them, or the message ids given.')
    .argument('[messageIds...]', 'only these messages')
    .option('--queue <name>', queueHelp)
    .option('--native', "use SQS's own redrive where the endpoint has it (keeps the original sender)")
    .option('--json', 'machine-readable output')
    .action(async (ids: string[], options: DlqOptions) => done(await dlqRedrive(ids, options, deps())));
  return dlq;
}
