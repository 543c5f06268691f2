/**
 * **MesoBuiltInFramework**: one of Meso's built-in frameworks — services (`meso app`,
 * `framework: 'services'`) or jobs (`meso job`, `framework: 'jobs'`) — serverless as the control plane: its table,
 * its event queue (the `<prefix>-fw-meso-<name>.fifo` any framework would have) with a dead-letter
 * queue, and one Lambda function that consumes the queue and runs the framework's tick every
 * minute from a scheduled rule (one function, so all its calls come from one sender). Reserved
 * concurrency 1: the framework handles its messages one at a time, in order. Nothing runs while
 * nothing happens.
 */
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../../definition/env.ts';
import { tableName } from '../../definition/tables-queues.ts';
import { type BuiltInFramework, builtInEnv } from '../../frameworks/host/built-in.ts';
import type { MetaStore } from '../../frameworks/host/framework.ts';
import { JOBS } from '../../frameworks/jobs/built-in.ts';
import { SERVICES } from '../../frameworks/services/built-in.ts';
import { bundledFunction } from './bundled-function.ts';
import type { MesoControlPlane } from './control-plane.ts';
import { acknowledge } from './nag.ts';

/** Each built-in framework, its function's entry, and what its tick does. */
interface BuiltIn {
  /** What the stack needs of it: its name, table and queue. */
  readonly framework: Pick<BuiltInFramework<MetaStore>, 'name' | 'table' | 'queueName'>;
  readonly entry: string;
  readonly what: string;
}

export const BUILT_IN: Readonly<Record<'services' | 'jobs', BuiltIn>> = {
  services: {
    framework: SERVICES,
    entry: fileURLToPath(new URL('../../../functions/services.ts', import.meta.url)),
    what: 'subscribe if Meso went quiet, revive, reconcile',
  },
  jobs: {
    framework: JOBS,
    entry: fileURLToPath(new URL('../../../functions/jobs.ts', import.meta.url)),
    what: 'start the runs cron says are due, enforce deadlines and run times',
  },
};

/** The event queue's visibility timeout; the function's timeout is a sixth of it. */
const VISIBILITY_SECONDS = 60;

export interface MesoBuiltInFrameworkProps {
  readonly controlPlane: MesoControlPlane;
  readonly framework: 'services' | 'jobs';
  /** @default RemovalPolicy.RETAIN (the table holds the apps) */
  readonly removalPolicy?: RemovalPolicy;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default events.Schedule.rate(Duration.minutes(1)) */
  readonly tickSchedule?: events.Schedule;
}

export class MesoBuiltInFramework extends Construct {
  readonly table: dynamodb.Table;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly function: nodejs.NodejsFunction;
  readonly tickRule: events.Rule;

  constructor(scope: Construct, id: string, props: MesoBuiltInFrameworkProps) {
    super(scope, id);
    const { controlPlane } = props;
    const b = BUILT_IN[props.framework];
    const fw = b.framework;
    const name = fw.name;
    const env = builtInEnv(name);
    const prefix = controlPlane.prefix;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.table = new dynamodb.Table(this, 'Table', {
      tableName: tableName(prefix, fw.table),
      partitionKey: { name: fw.table.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: fw.table.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });

    const queueName = fw.queueName(prefix);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: queueName.replace(/\.fifo$/, '-dlq.fifo'),
      fifo: true,
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    acknowledge(
      this.deadLetterQueue,
      'Serverless-SQSRedrivePolicy',
      'A dead-letter queue: its messages wait for an operator, there is nowhere further to send them',
    );
    this.queue = new sqs.Queue(this, 'EventQueue', {
      queueName,
      fifo: true,
      contentBasedDeduplication: false,
      visibilityTimeout: Duration.seconds(VISIBILITY_SECONDS),
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });

    this.function = bundledFunction(this, {
      id: '',
      functionName: `${prefix}-${name}`,
      entry: b.entry,
      roleDescription: `${prefix}-${name}: its table, its event queue, scheduler calls, its log group`,
      memorySize: 512,
      timeout: Duration.seconds(VISIBILITY_SECONDS / 6),
      reservedConcurrentExecutions: 1,
      environment: {
        [ENV.prefix]: prefix,
        [ENV.queues('schedulerCalls')]: controlPlane.queues.schedulerCalls.queueUrl,
        [env.table]: this.table.tableName,
        [env.queueUrl]: this.queue.queueUrl,
        POWERTOOLS_SERVICE_NAME: `meso-${name}`,
        NODE_OPTIONS: '--enable-source-maps',
      },
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy,
      noTracingBecause:
        'Each message is followed by message id in the structured logs; X-Ray would add a cost per call',
    });
    this.function.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );
    this.table.grantReadWriteData(this.function);
    controlPlane.queues.schedulerCalls.grantSendMessages(this.function);

    this.tickRule = new events.Rule(this, 'TickSchedule', {
      description: `Runs ${prefix}-${name}'s tick: ${b.what}`,
      schedule: props.tickSchedule ?? events.Schedule.rate(Duration.minutes(1)),
      targets: [
        new eventsTargets.LambdaFunction(this.function, {
          retryAttempts: 0,
          maxEventAge: Duration.minutes(1),
        }),
      ],
    });
    acknowledge(
      this.tickRule,
      'Serverless-EventBusDLQ',
      'A missed tick is worth nothing later: the next one comes within a minute',
    );

    const reason =
      "Its queue's records that keep failing go to the queue's dead-letter queue; a failed tick is redone by the next";
    acknowledge(this.function, 'Serverless-LambdaDLQ', reason);
    acknowledge(this.function, 'Serverless-LambdaEventSourceMappingDestination', reason);
    acknowledge(this.function, 'Serverless-LambdaAsyncFailureDestination', reason);
  }
}
