/**
 * The queues a framework or an agent owns, and whether a queue URL a message names is exactly
 * one of them. The control plane sends events only to URLs that pass: a sender-chosen URL is a
 * confused-deputy attack otherwise (another tenant's queue, another host, the control plane's
 * own input queues, a URL with credentials or a query that turns a send into another action).
 */
import { createHash } from 'node:crypto';

/** Where a deployment's queues live: one origin and account, one name prefix. */
export interface QueueHome {
  /** `https://sqs.<region>.amazonaws.com` in AWS; the emulator's `http://127.0.0.1:<port>` locally. */
  readonly origin: string;
  /** The account's path segment: `123456789012`. */
  readonly account: string;
  /** The deployment's resource prefix (`meso`). */
  readonly prefix: string;
  /** Names of the control plane's own queues (calls, allocator, timers and their DLQs): never a sender's. */
  readonly reserved: ReadonlySet<string>;
}

export type QueueOwner = 'framework' | 'agent';

/** SQS queue names: at most 80 characters (with `.fifo`) of letters, digits, `-` and `_`. */
export const MAX_QUEUE_NAME = 80;

const AWS_HOST = /(^|\.)amazonaws\.com(\.cn)?$/;

/**
 * The home of the queue at `controlQueueUrl` (one of the control plane's own queues, whose URL
 * the deployment configures). Throws if that URL is not a plain queue URL, or is AWS over http.
 */
export function queueHomeOf(controlQueueUrl: string, prefix: string, reserved: Iterable<string>): QueueHome {
  const u = new URL(controlQueueUrl);
  const parts = u.pathname.split('/');
  if (parts.length !== 3 || !parts[1] || u.username || u.password || u.search || u.hash)
    throw new Error(`${controlQueueUrl} is not a queue URL of the form <origin>/<account>/<name>`);
  if (AWS_HOST.test(u.hostname) && u.protocol !== 'https:')
    throw new Error(`${controlQueueUrl}: SQS in AWS is reached over https only`);
  return { origin: u.origin, account: parts[1], prefix, reserved: new Set(reserved) };
}

/** `<prefix>-agent-<agentId>.fifo` (agent ids use only characters queue names allow). */
export const agentQueueName = (prefix: string, agentId: string): string => `${prefix}-agent-${agentId}.fifo`;

/**
 * `<prefix>-fw-<frameworkId>.fifo`. Characters SQS does not allow in names (`.` `:` `@`) become
 * `_`; an id too long for the 80-character limit is shortened and suffixed with a hash of the
 * whole id, so two ids never share a queue. Undefined if the prefix leaves no room.
 */
export function frameworkQueueName(prefix: string, frameworkId: string): string | undefined {
  const head = `${prefix}-fw-`;
  const tail = '.fifo';
  const safe = frameworkId.replace(/[^A-Za-z0-9_-]/g, '_');
  if (safe === frameworkId && head.length + safe.length + tail.length <= MAX_QUEUE_NAME)
    return head + safe + tail;
  const hash = createHash('sha256').update(frameworkId).digest('hex').slice(0, 12);
  const room = MAX_QUEUE_NAME - head.length - tail.length - hash.length - 1;
  if (room < 1) return undefined;
  return `${head}${safe.slice(0, room)}-${hash}${tail}`;
}

/** The URL of the queue `id` owns. */
export function ownQueueUrl(home: QueueHome, owner: QueueOwner, id: string): string | undefined {
  const name = owner === 'agent' ? agentQueueName(home.prefix, id) : frameworkQueueName(home.prefix, id);
  return name ? `${home.origin}/${home.account}/${name}` : undefined;
}

const NAME = /^[A-Za-z0-9_-]+\.fifo$/;

/**
 * Why `queueUrl` is not exactly the queue of a `owner` — the one `id` owns when `id` is given,
 * otherwise some framework's or agent's. Undefined when it is. Compared as strings: no other
 * scheme, host, port, account, userinfo, query, fragment, encoding or trailing character passes.
 */
export function queueUrlProblem(
  home: QueueHome,
  owner: QueueOwner,
  queueUrl: string,
  id?: string,
): string | undefined {
  const shown = JSON.stringify(queueUrl.length > 200 ? `${queueUrl.slice(0, 197)}...` : queueUrl);
  const base = `${home.origin}/${home.account}/`;
  if (!queueUrl.startsWith(base)) return `queueUrl ${shown} is not a queue of this deployment (${base}...)`;
  const name = queueUrl.slice(base.length);
  if (!NAME.test(name) || name.length > MAX_QUEUE_NAME)
    return `queueUrl ${shown} does not end in a FIFO queue name (no query, fragment or path after it)`;
  if (home.reserved.has(name)) return `queueUrl ${shown} is one of the control plane's own queues`;
  if (id !== undefined) {
    const want = ownQueueUrl(home, owner, id);
    return want === queueUrl
      ? undefined
      : `queueUrl ${shown} is not the queue of ${owner} ${id}: expected ${JSON.stringify(want ?? '(none: the prefix is too long)')}`;
  }
  const head = `${home.prefix}-${owner === 'agent' ? 'agent' : 'fw'}-`;
  if (!name.startsWith(head) || name.length === head.length + '.fifo'.length)
    return `a ${owner}'s queue is named ${head}<id>.fifo, got ${JSON.stringify(name)}`;
  return undefined;
}
