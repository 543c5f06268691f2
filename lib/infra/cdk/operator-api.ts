/**
 * The operator's view in AWS: the operator HTTP API and dashboard as a Lambda function behind a
 * function URL with IAM auth (`AWS_IAM`: only principals granted `lambda:InvokeFunctionUrl` reach
 * it; `meso ui` signs with the operator's credentials), plus a CloudWatch dashboard of the
 * control plane's figures and alarms on the ones that need an operator.
 */
import { fileURLToPath } from 'node:url';
import { Arn, CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { ENV, ENV_DEFAULTS } from '../../definition/env.ts';
import { QUEUES, type QueueName, TABLES, type TableName } from '../../definition/tables-queues.ts';
import { buildDashboardSync } from '../../local/dashboard-assets.ts';
import { bundledFunction } from './bundled-function.ts';
import { acknowledgeIndexGrants, type MesoControlPlane } from './control-plane.ts';
import { acknowledge, wildcardResourceFinding } from './nag.ts';

export interface MesoOperatorApiProps {
  readonly controlPlane: MesoControlPlane;
  /** Alarms notify this topic too. */
  readonly alarmTopic?: sns.ITopic;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

const ENTRY = fileURLToPath(new URL('../../../functions/operator-api.ts', import.meta.url));

const keys = <K extends string>(o: Readonly<Record<K, unknown>>) => Object.keys(o) as K[];

/**
 * @example
 * const api = new MesoOperatorApi(stack, 'OperatorApi', { controlPlane: meso });
 * api.grantInvoke(new iam.Role(...)); // an operator role may open the dashboard
 */
export class MesoOperatorApi extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly url: lambda.FunctionUrl;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: MesoOperatorApiProps) {
    super(scope, id);
    const cp = props.controlPlane;
    const prefix = cp.prefix;
    const namespace = ENV_DEFAULTS.metricsNamespace;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    const environment: Record<string, string> = {
      [ENV.prefix]: prefix,
      [ENV.metricsNamespace]: namespace,
      POWERTOOLS_SERVICE_NAME: 'meso-operator-api',
      NODE_OPTIONS: '--enable-source-maps',
    };
    for (const key of keys(TABLES)) environment[ENV.tables(key as TableName)] = cp.tables[key].tableName;
    for (const key of keys(QUEUES)) environment[ENV.queues(key as QueueName)] = cp.queues[key].queueUrl;

    const assets = buildDashboardSync();
    this.function = bundledFunction(this, {
      id: '',
      functionName: `${prefix}-operator-api`,
      entry: ENTRY,
      roleDescription: `${prefix}-operator-api: reads the tables, kills and tears down for operators`,
      memorySize: 512,
      timeout: Duration.seconds(30),
      environment,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy,
      // The dashboard's files, built now, travel inside the bundle.
      define: { MESO_DASHBOARD: JSON.stringify(JSON.stringify(assets)) },
      noTracingBecause:
        'An operator tool called a few times a minute at most; its logs name every action and its principal',
    });
    const role = this.function.role as iam.Role;
    const sync =
      'Invoked synchronously through its function URL only: the caller sees every failure, there is nothing to retry or dead-letter';
    acknowledge(this.function, 'Serverless-LambdaDLQ', sync);
    acknowledge(this.function, 'Serverless-LambdaAsyncFailureDestination', sync);

    // Reads every table; KILL marks a task, TEARDOWN removes a framework (with its outbox in meta).
    for (const key of keys(TABLES)) cp.tables[key].grantReadWriteData(role);
    acknowledgeIndexGrants(this, role, cp.tables, keys(TABLES));
    cp.queues.allocator.grantSendMessages(role);
    cp.queues.timers.grantSendMessages(role);
    const tenantQueues = ['fw', 'agent'].map((kind) =>
      Arn.format({ service: 'sqs', resource: `${prefix}-${kind}-*` }, Stack.of(this)),
    );
    role.addToPolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: tenantQueues }));
    for (const arn of tenantQueues) {
      acknowledge(
        role,
        wildcardResourceFinding(this, arn),
        "Send only: a KILL to the agent running the task, a framework's TASK_KILLED, to queues whose names arrive at run time",
      );
    }
    // Dead-letter depths for the dashboard.
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:GetQueueUrl', 'sqs:GetQueueAttributes'],
        resources: keys(QUEUES).map((q) => cp.deadLetterQueues[q].queueArn),
      }),
    );

    this.url = this.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.AWS_IAM });
    new CfnOutput(Stack.of(this), 'OperatorApiUrl', {
      description: 'The operator API and dashboard (IAM auth: open it with `meso ui`)',
      value: this.url.url,
    });

    const metric = (name: string, statistic: string, service: string, label?: string) =>
      new cloudwatch.Metric({
        namespace,
        metricName: name,
        statistic,
        period: Duration.minutes(1),
        dimensionsMap: { service },
        ...(label ? { label } : {}),
      });
    const search = (expression: string, label: string) =>
      new cloudwatch.MathExpression({ expression, label, period: Duration.minutes(5), usingMetrics: {} });
    const cycle = metric('CycleDuration', 'p90', 'meso-allocator', 'cycle p90');
    const launch = metric('LaunchLatency', 'p90', 'meso-registry', 'launch p90');

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${prefix}-operator`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Agent utilisation (% of each agent, dominant resource)',
        left: [
          search(
            `SEARCH('{${namespace},agent,service} MetricName="AgentUtilisation"', 'Maximum', 300)`,
            'agent',
          ),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Role allocation (% of the cluster, dominant resource)',
        left: [
          search(`SEARCH('{${namespace},role,service} MetricName="RoleAllocation"', 'Maximum', 300)`, 'role'),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Allocation cycle duration (ms)',
        left: [cycle, metric('CycleDuration', 'p50', 'meso-allocator', 'cycle p50')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Launch latency: ACCEPT to TASK_RUNNING (ms)',
        left: [launch, metric('LaunchLatency', 'p50', 'meso-registry', 'launch p50')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Offers outstanding',
        left: [
          search(`SEARCH('{${namespace},service} MetricName="OffersOutstanding"', 'Maximum', 300)`, 'offers'),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Rejected calls (by queue and code) and refused operator calls',
        left: [
          search(
            `SEARCH('{${namespace},code,queue,service} MetricName="RejectedCalls"', 'Sum', 300)`,
            'rejected',
          ),
          search(
            `SEARCH('{${namespace},call,service} MetricName="OperatorCallsRejected"', 'Sum', 300)`,
            'operator',
          ),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues (messages)',
        left: keys(QUEUES).map((q) =>
          cp.deadLetterQueues[q].metricApproximateNumberOfMessagesVisible({
            label: q,
            period: Duration.minutes(1),
          }),
        ),
        width: 12,
      }),
    );

    const alarms = [
      cycle.createAlarm(this, 'SlowCyclesAlarm', {
        alarmDescription: `The allocator's cycles take over 10 s (p90 over 5 minutes): offers are late; see the ${prefix}-operator dashboard`,
        threshold: 10_000,
        evaluationPeriods: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      launch.createAlarm(this, 'SlowLaunchesAlarm', {
        alarmDescription: `Tasks take over 2 minutes from ACCEPT to TASK_RUNNING (p90 over 5 minutes): agents slow or image pulls stuck`,
        threshold: 120_000,
        evaluationPeriods: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      this.function.metricErrors({ period: Duration.minutes(5) }).createAlarm(this, 'ApiErrorsAlarm', {
        alarmDescription: `${prefix}-operator-api failed invocations`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const a of alarms) {
        a.addAlarmAction(action);
        a.addOkAction(action);
      }
    }
    this.alarms = alarms;
  }

  /** Lets `grantee` call the API (`lambda:InvokeFunctionUrl`): give it to operator roles. */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.function.grantInvokeUrl(grantee);
  }
}
