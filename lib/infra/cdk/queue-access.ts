/**
 * What frameworks and agents may do with SQS, as IAM statements: send to the control plane's
 * calls queue and use their own queue, never another tenant's nor the control plane's receive
 * side (docs/security.md, "Queue ownership"). Used by the control plane's managed policies, by
 * `MesoFramework` and by the agent fleet's role.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import { instanceQueueStatements } from './fleet-identity.ts';

/** What an agent does with its own command queue: create it, long-poll it, delete what it handled. */
export const AGENT_QUEUE_ACTIONS = [
  'sqs:CreateQueue',
  'sqs:GetQueueUrl',
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
] as const;

/** What a framework does with its own event queue; the SDK deletes it on `close`. */
export const FRAMEWORK_QUEUE_ACTIONS = [
  'sqs:CreateQueue',
  'sqs:GetQueueUrl',
  'sqs:GetQueueAttributes',
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
  'sqs:DeleteQueue',
] as const;

/**
 * Refuses every SQS action the statements grant when the request is not over TLS. The control
 * plane's queues also deny it in their queue policies; the frameworks' and agents' own queues have
 * no queue policy, so their owners' identities carry the rule.
 */
function denyInsecureTransport(actions: readonly string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'DenyInsecureTransport',
    effect: iam.Effect.DENY,
    actions: [...new Set(actions)],
    resources: ['*'],
    conditions: { Bool: { 'aws:SecureTransport': 'false' } },
  });
}

/**
 * What an agent may do: send to agent-calls (`agentCallsArn`) and use its own command queue
 * (`own.arn`: one agent's `<prefix>-agent-<agentId>.fifo`, or the fleet's `<prefix>-agent-i-*`).
 */
export function agentStatements(
  agentCallsArn: string,
  own: { readonly sid: string; readonly arn: string; readonly byInstanceTag?: boolean },
): iam.PolicyStatement[] {
  const send = ['sqs:SendMessage', 'sqs:GetQueueUrl'];
  return [
    new iam.PolicyStatement({ sid: 'SendAgentCalls', actions: send, resources: [agentCallsArn] }),
    // The fleet's instances: only the queues tagged with their own instance ARN (fleet-identity.ts).
    ...(own.byInstanceTag
      ? instanceQueueStatements(own.sid, own.arn)
      : [new iam.PolicyStatement({ sid: own.sid, actions: [...AGENT_QUEUE_ACTIONS], resources: [own.arn] })]),
    denyInsecureTransport([...send, ...AGENT_QUEUE_ACTIONS, ...(own.byInstanceTag ? ['sqs:TagQueue'] : [])]),
  ];
}

/**
 * What a framework may do: send to scheduler-calls (`schedulerCallsArn`) and, given `ownArn`
 * (its one `<prefix>-fw-….fifo`), use its own event queue.
 */
export function frameworkStatements(schedulerCallsArn: string, ownArn?: string): iam.PolicyStatement[] {
  const send = ['sqs:SendMessage', 'sqs:GetQueueUrl', 'sqs:GetQueueAttributes'];
  return [
    new iam.PolicyStatement({ sid: 'SendSchedulerCalls', actions: send, resources: [schedulerCallsArn] }),
    ...(ownArn
      ? [
          new iam.PolicyStatement({
            sid: 'OwnEventQueue',
            actions: [...FRAMEWORK_QUEUE_ACTIONS],
            resources: [ownArn],
          }),
        ]
      : []),
    denyInsecureTransport([...send, ...(ownArn ? FRAMEWORK_QUEUE_ACTIONS : [])]),
  ];
}
