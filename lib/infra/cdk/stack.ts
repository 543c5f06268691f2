import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { dlqName, QUEUES, type QueueName, queueName, TABLES, type TableName } from '../definition.ts';
import { MesoControlPlane, type MesoControlPlaneProps, pascal } from './control-plane.ts';

export interface MesoStackProps extends StackProps, MesoControlPlaneProps {}

/**
 * The deployable Meso stack: the control plane and, as outputs, everything a framework, an agent
 * or the `meso` CLI needs to find it: every queue URL (dead-letter queues included), every table
 * name and the ARNs of the framework and agent managed policies.
 */
export class MesoStack extends Stack {
  readonly controlPlane: MesoControlPlane;

  constructor(scope: Construct, id: string, props: MesoStackProps = {}) {
    super(scope, id, props);
    const meso = new MesoControlPlane(this, 'ControlPlane', props);
    this.controlPlane = meso;

    for (const key of Object.keys(QUEUES) as QueueName[]) {
      new CfnOutput(this, `Queue${pascal(key)}Url`, {
        description: `URL of ${queueName(meso.prefix, QUEUES[key])}`,
        value: meso.queues[key].queueUrl,
      });
      new CfnOutput(this, `Queue${pascal(key)}DeadLetterUrl`, {
        description: `URL of ${dlqName(meso.prefix, QUEUES[key])}`,
        value: meso.deadLetterQueues[key].queueUrl,
      });
    }
    for (const key of Object.keys(TABLES) as TableName[]) {
      new CfnOutput(this, `Table${pascal(key)}Name`, { value: meso.tables[key].tableName });
    }
    new CfnOutput(this, 'FrameworkPolicyArn', {
      description: 'Attach to a framework principal (MesoFrameworkPolicy)',
      value: meso.frameworkPolicy.managedPolicyArn,
    });
    new CfnOutput(this, 'AgentPolicyArn', {
      description: 'Attach to an agent principal (MesoAgentPolicy)',
      value: meso.agentPolicy.managedPolicyArn,
    });
  }
}
