/**
 * The registry's half for frameworks: every call on the `scheduler-calls` queue. A call is parsed,
 * its sender checked against the identity that subscribed the framework, and handed to its own
 * module under lib/control/scheduler/ by the table below. Each call reads its records, decides in
 * lib/core, writes conditionally (lib/control/records/) and only then sends; a redelivered call
 * finds its effect already persisted and re-sends the same messages (same dedup ids), so it
 * changes nothing.
 *
 * A new call: its schema in lib/protocol/scheduler.ts, a module here named after it exporting a
 * `FrameworkCallHandler`, and one line in `CALLS`.
 */
import type { FrameworkRecord } from '../core/model.ts';
import { type CallOf, parseMessage, type SchedulerCall, SchedulerCallSchema } from '../protocol/index.ts';
import type { ControlDeps, InboundRecord } from './deps.ts';
import { touchFramework } from './failover.ts';
import { groupProblem, schedulerCallGroups } from './groups.ts';
import { identityProblem } from './identity.ts';
import { readLogs } from './logs.ts';
import { getFramework } from './records/frameworks.ts';
import { ownQueueUrlProblem, type Rejection, reject } from './reject.ts';
import { accept } from './scheduler/accept.ts';
import { acknowledge } from './scheduler/acknowledge.ts';
import { decline } from './scheduler/decline.ts';
import { disconnectedCall } from './scheduler/disconnected.ts';
import { kill } from './scheduler/kill.ts';
import { reconcile } from './scheduler/reconcile.ts';
import { revive } from './scheduler/revive.ts';
import { subscribe } from './scheduler/subscribe.ts';
import { suppress } from './scheduler/suppress.ts';
import { teardown } from './scheduler/teardown.ts';

/** Calls of a subscribed framework, made by its owner; the framework record as read. */
type Bound = Exclude<SchedulerCall['type'], 'SUBSCRIBE' | 'ACKNOWLEDGE' | 'READ_LOGS'>;
export type FrameworkCallHandler<K extends Bound> = (
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: CallOf<K>,
) => Promise<void>;

/** HEARTBEAT: being heard from is all it does (`touchFramework`, before dispatch). */
const heartbeat: FrameworkCallHandler<'HEARTBEAT'> = async () => {};

const CALLS: { readonly [K in Bound]: FrameworkCallHandler<K> } = {
  TEARDOWN: teardown,
  ACCEPT: accept,
  DECLINE: decline,
  REVIVE: revive,
  SUPPRESS: suppress,
  KILL: kill,
  RECONCILE: reconcile,
  HEARTBEAT: heartbeat,
};

const CALL_TYPES: readonly string[] = ['SUBSCRIBE', 'ACKNOWLEDGE', 'READ_LOGS', ...Object.keys(CALLS)];

export async function handleSchedulerCall(deps: ControlDeps, record: InboundRecord): Promise<void> {
  const parsed = parseMessage(SchedulerCallSchema, record.body, CALL_TYPES);
  if (!parsed.ok) {
    const raw = (parsed.raw ?? {}) as Record<string, unknown>;
    const framework = raw.framework as Record<string, unknown> | undefined;
    const fwId =
      typeof raw.frameworkId === 'string'
        ? raw.frameworkId
        : typeof framework?.frameworkId === 'string'
          ? framework.frameworkId
          : undefined;
    const replyTo = await replyTarget(
      deps,
      record,
      fwId,
      typeof framework?.queueUrl === 'string' ? framework.queueUrl : undefined,
    );
    return reject(deps, 'scheduler-calls', record, {
      code: parsed.code,
      message: parsed.error,
      call: typeof raw.type === 'string' ? raw.type : undefined,
      replyTo,
    });
  }
  const call = parsed.message;
  // Only in a group of the framework it names: never queued behind (or blocking) another's calls.
  const wrongGroup = groupProblem('framework', record, schedulerCallGroups(call));
  if (wrongGroup) {
    const fwId = call.type === 'SUBSCRIBE' ? call.framework.frameworkId : call.frameworkId;
    const replyTo = await replyTarget(
      deps,
      record,
      fwId,
      call.type === 'SUBSCRIBE' ? call.framework.queueUrl : undefined,
    );
    return reject(deps, 'scheduler-calls', record, {
      code: 'WRONG_GROUP',
      message: wrongGroup,
      call: call.type,
      replyTo,
    });
  }
  // SUBSCRIBE binds the id itself; ACKNOWLEDGE is checked against a cached route; READ_LOGS by ACL.
  if (call.type === 'SUBSCRIBE') return subscribe(deps, record, call);
  if (call.type === 'ACKNOWLEDGE') return acknowledge(deps, record, call);
  // Not only the framework's own identity may read its output, and reading is not being heard from.
  if (call.type === 'READ_LOGS') return readLogs(deps, record, call);

  const fw = await getFramework(deps.store, call.frameworkId);
  const denied = identityProblem('framework', call.frameworkId, fw, record, call.type) ?? tornDown(fw!, call);
  if (denied) return reject(deps, 'scheduler-calls', record, denied);
  const framework = fw!;
  // A framework Meso considers gone must SUBSCRIBE again (lib/control/failover.ts).
  if (framework.status === 'DISCONNECTED' && call.type !== 'TEARDOWN')
    return disconnectedCall(deps, record, framework, call);
  await touchFramework(deps, framework);
  return (CALLS[call.type] as FrameworkCallHandler<Bound>)(deps, record, framework, call as CallOf<Bound>);
}

/** A TEARDOWN delivered again goes through: it re-sends the kills the first one may not have. */
function tornDown(fw: FrameworkRecord, call: SchedulerCall): Rejection | undefined {
  if (fw.status !== 'TORN_DOWN' || call.type === 'TEARDOWN') return undefined;
  return {
    code: 'FRAMEWORK_TORN_DOWN',
    message: `framework ${fw.frameworkId} was torn down`,
    call: call.type,
    replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
  };
}

/** Where an ERROR about this record can go: the framework's queue, if the sender owns it. */
async function replyTarget(
  deps: ControlDeps,
  record: InboundRecord,
  frameworkId: string | undefined,
  subscribeQueueUrl: string | undefined,
): Promise<Rejection['replyTo']> {
  const fw = frameworkId ? await getFramework(deps.store, frameworkId).catch(() => undefined) : undefined;
  if (fw && fw.principal === record.senderId) return { kind: 'framework', queueUrl: fw.queueUrl };
  // An id no one holds yet: only the queue derived from it, never another framework's.
  if (!fw && frameworkId && subscribeQueueUrl)
    if (!ownQueueUrlProblem(deps.config, 'framework', subscribeQueueUrl, frameworkId))
      return { kind: 'framework', queueUrl: subscribeQueueUrl };
  return undefined;
}
