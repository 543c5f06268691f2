/**
 * Per-instance identity for the fleet's instances, which share one role. IAM has no policy
 * variable that is the instance id alone, so the queue name cannot be matched against it; the
 * instance's ARN, though, is in every request its role credentials sign (`ec2:SourceInstanceARN`,
 * also a policy variable). So each instance's command queue carries the tag
 * `meso:instance = <its instance ARN>`, set when the instance creates it, and:
 *
 * - CreateQueue (and the TagQueue it needs to tag at creation) is allowed only with exactly that
 *   tag, whose value must be the caller's own instance ARN, and TagQueue never on a queue that is
 *   already tagged: no instance can tag a queue as another's, nor re-tag another's queue as its own;
 * - receiving, deleting and looking up a queue is allowed only when the queue's tag is the
 *   caller's own instance ARN: instance A cannot consume instance B's queue;
 * - UntagQueue is never granted.
 *
 * What this leaves: an instance could create, tagged as itself, a queue named after an instance
 * that does not exist yet (it would have to guess a future instance id), and would then receive
 * that instance's commands. docs/security.md ("In AWS") says so, and what closes it.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import { INSTANCE_QUEUE_TAG as INSTANCE_TAG } from '../../definition/agent-runtime.ts';

/** The IAM policy variable: the ARN of the instance whose role credentials signed the request. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not a template
const OWN_ARN = '${ec2:SourceInstanceARN}';

/** Statements letting a fleet instance create and consume only the queues tagged as its own. */
export function instanceQueueStatements(sid: string, instanceQueuesArn: string): iam.PolicyStatement[] {
  const onlyOwnTag = {
    StringEquals: { [`aws:RequestTag/${INSTANCE_TAG}`]: OWN_ARN },
    'ForAllValues:StringEquals': { 'aws:TagKeys': [INSTANCE_TAG] },
  };
  const own = { [`aws:ResourceTag/${INSTANCE_TAG}`]: OWN_ARN };
  return [
    new iam.PolicyStatement({
      sid: `${sid}Create`,
      actions: ['sqs:CreateQueue'],
      resources: [instanceQueuesArn],
      conditions: onlyOwnTag,
    }),
    // Tagging at creation: a queue with no owner yet, or the caller's own (CreateQueue again
    // after a restart) — never one that is another instance's.
    new iam.PolicyStatement({
      sid: `${sid}TagNew`,
      actions: ['sqs:TagQueue'],
      resources: [instanceQueuesArn],
      conditions: { ...onlyOwnTag, Null: { [`aws:ResourceTag/${INSTANCE_TAG}`]: 'true' } },
    }),
    new iam.PolicyStatement({
      sid: `${sid}TagOwn`,
      actions: ['sqs:TagQueue'],
      resources: [instanceQueuesArn],
      conditions: { ...onlyOwnTag, StringEquals: { ...onlyOwnTag.StringEquals, ...own } },
    }),
    new iam.PolicyStatement({
      sid,
      actions: ['sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:DeleteMessage'],
      resources: [instanceQueuesArn],
      conditions: { StringEquals: own },
    }),
  ];
}
