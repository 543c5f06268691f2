/**
 * **MesoFramework**: the IAM identity of one framework, issued by the operator. It may send
 * scheduler calls and use its own event queue `frameworkQueueName(prefix, frameworkId)` (the name
 * the SDK creates and the control plane derives), and nothing else: no other framework's queue,
 * no control-plane queue's receive side.
 */
import { Arn, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { frameworkQueueName } from '../../sdk/calls.ts';
import type { MesoControlPlane } from './control-plane.ts';
import { frameworkStatements } from './queue-access.ts';

/** `<prefix>-fw-….fifo`'s ARN in the control plane's account and region. */
export function frameworkQueueArn(scope: Construct, prefix: string, frameworkId: string): string {
  return Arn.format({ service: 'sqs', resource: frameworkQueueName(prefix, frameworkId) }, Stack.of(scope));
}

export interface MesoFrameworkProps {
  readonly controlPlane: MesoControlPlane;
  /** The id the framework subscribes with; names its event queue. */
  readonly frameworkId: string;
  /**
   * Who runs the framework (an ECS task's or a service's principal, another account): the
   * identity is then a role it assumes.
   *
   * @default - an IAM user, whose access key the operator creates (never in the template)
   */
  readonly assumedBy?: iam.IPrincipal;
}

/**
 * @example
 * new MesoFramework(stack, 'Marathon', { controlPlane: meso, frameworkId: 'marathon' });
 * // then: aws iam create-access-key --user-name <its user>; the framework subscribes as `marathon`
 */
export class MesoFramework extends Construct {
  readonly policy: iam.ManagedPolicy;
  readonly queueName: string;
  /** With `assumedBy`. */
  readonly role?: iam.Role;
  /** Without it. */
  readonly user?: iam.User;

  constructor(scope: Construct, id: string, props: MesoFrameworkProps) {
    super(scope, id);
    const { controlPlane, frameworkId } = props;
    if (frameworkId.length === 0 || frameworkId.length > 256) {
      throw new Error(`MesoFramework: framework id must be 1-256 characters, got ${frameworkId.length}`);
    }
    this.queueName = frameworkQueueName(controlPlane.prefix, frameworkId);
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: `Meso framework ${this.queueName} (${controlPlane.prefix}): scheduler calls and its own event queue only`,
      statements: frameworkStatements(
        controlPlane.queues.schedulerCalls.queueArn,
        frameworkQueueArn(this, controlPlane.prefix, frameworkId),
      ),
    });
    if (props.assumedBy) {
      this.role = new iam.Role(this, 'Role', {
        assumedBy: props.assumedBy,
        description: `Meso framework ${this.queueName}`,
        managedPolicies: [this.policy],
      });
    } else {
      this.user = new iam.User(this, 'User', { managedPolicies: [this.policy] });
    }
  }
}
