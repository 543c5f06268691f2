import type { FrameworkRecord } from '../../core/model.ts';
import type { SchedulerCall } from '../../protocol/index.ts';
import type { ControlDeps, InboundRecord } from '../deps.ts';
import { sendToFramework } from '../emit.ts';
import { reject } from '../reject.ts';
import { masterStatus } from '../statuses.ts';

/**
 * A call from a DISCONNECTED framework: it is told to SUBSCRIBE again (the SDK does so on this
 * error). The tasks of an ACCEPT are answered TASK_DROPPED (partition-aware) or TASK_LOST, with
 * REASON_MASTER_DISCONNECTED, as Mesos's driver answers a launch while disconnected
 * (DisconnectedSchedulerLaunchLost / Dropped); its offers were taken back when it disconnected.
 */
export async function disconnectedCall(
  deps: ControlDeps,
  record: InboundRecord,
  fw: FrameworkRecord,
  call: SchedulerCall,
): Promise<void> {
  if (call.type === 'ACCEPT') {
    const now = deps.clock.now();
    const tasks = call.operations.flatMap((op) => (op.type === 'LAUNCH' ? op.tasks : []));
    await sendToFramework(
      deps,
      fw.queueUrl,
      tasks.map((t) => ({
        event: {
          v: 1,
          type: 'UPDATE',
          status: masterStatus(
            now,
            fw.frameworkId,
            t.taskId,
            fw.partitionAware ? 'TASK_DROPPED' : 'TASK_LOST',
            'REASON_MASTER_DISCONNECTED',
            'the framework is disconnected; SUBSCRIBE again',
            t.agentId,
          ),
        },
        dedupId: `accept.${record.messageId}.${t.taskId}`,
      })),
    );
  }
  return reject(deps, 'scheduler-calls', record, {
    code: 'FRAMEWORK_DISCONNECTED',
    message: `framework ${fw.frameworkId} is disconnected (silent for too long); SUBSCRIBE again`,
    call: call.type,
    replyTo: { kind: 'framework', queueUrl: fw.queueUrl },
  });
}
