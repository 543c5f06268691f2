import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import {
  dlqName,
  QUEUES,
  type QueueName,
  queueName,
  TABLES,
  type TableName,
} from '../../definition/tables-queues.ts';
import { MesoAgentFleet, type MesoAgentFleetProps } from './agent-fleet.ts';
import { MesoControlPlane, type MesoControlPlaneProps, pascal } from './control-plane.ts';
import { MesoOperatorApi } from './operator-api.ts';
import { MesoBuiltInFramework } from './services.ts';

export interface MesoStackProps extends StackProps, MesoControlPlaneProps {
  /**
   * Agents on EC2 in this stack (`cdk deploy -c agents=2`): an Auto Scaling group whose
   * instances install the bundled agent at boot, in `vpc` or a new one (2 AZs, 1 NAT gateway,
   * flow logs of all traffic to CloudWatch Logs, kept as long as the functions' logs).
   *
   * @default - none: agents join with `meso-agent install`
   */
  readonly agentFleet?: Omit<MesoAgentFleetProps, 'controlPlane' | 'vpc'> & { readonly vpc?: ec2.IVpc };
  /**
   * The built-in services (`meso app`) and jobs (`meso job`) frameworks (`MesoBuiltInFramework`).
   *
   * @default true
   */
  readonly services?: boolean;
}

/**
 * The deployable Meso stack: the control plane and, as outputs, everything a framework, an agent
 * or the `meso` CLI needs to find it: every queue URL (dead-letter queues included), every table
 * name and the ARNs of the framework and agent managed policies.
 */
export class MesoStack extends Stack {
  readonly controlPlane: MesoControlPlane;
  readonly agentFleet?: MesoAgentFleet;
  /** The operator API, its function URL (IAM auth), the CloudWatch dashboard and alarms. */
  readonly operatorApi: MesoOperatorApi;
  /** The built-in frameworks, unless `services: false`. */
  readonly services?: MesoBuiltInFramework;
  readonly jobs?: MesoBuiltInFramework;

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
    this.operatorApi = new MesoOperatorApi(this, 'OperatorApi', {
      controlPlane: meso,
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
    });
    if (props.services !== false) {
      const common = {
        controlPlane: meso,
        ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      };
      this.services = new MesoBuiltInFramework(this, 'Services', { ...common, framework: 'services' });
      this.jobs = new MesoBuiltInFramework(this, 'Jobs', { ...common, framework: 'jobs' });
      for (const [id, f] of [
        ['Services', this.services],
        ['Jobs', this.jobs],
      ] as const) {
        new CfnOutput(this, `${id}TableName`, { value: f.table.tableName });
        new CfnOutput(this, `${id}QueueUrl`, { value: f.queue.queueUrl });
      }
    }
    if (props.agentFleet) {
      const { vpc, ...fleet } = props.agentFleet;
      this.agentFleet = new MesoAgentFleet(this, 'AgentFleet', {
        ...fleet,
        controlPlane: meso,
        vpc: vpc ?? this.createVpc(props),
      });
      new CfnOutput(this, 'AgentFleetGroupName', {
        description: 'The Auto Scaling group of the agent fleet',
        value: this.agentFleet.autoScalingGroup.autoScalingGroupName,
      });
    }
  }

  private createVpc(props: MesoStackProps): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'AgentVpc', { maxAzs: 2, natGateways: 1 });
    const flowLogs = new logs.LogGroup(this, 'AgentVpcFlowLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    vpc.addFlowLog('FlowLogs', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    return vpc;
  }
}
