/**
 * The whole Meso control plane as one construct: the tables and queues of `lib/definition/tables-queues.ts`,
 * a dead-letter queue and an alarm per queue, the four Lambda functions, their event sources
 * and least-privilege roles, and the managed policies that frameworks and agents attach.
 */
import { fileURLToPath } from 'node:url';
import { Arn, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { aclsFromJson } from '../../core/acl.ts';
import { MIN_TASK_RETENTION_SECONDS } from '../../core/task-retention.ts';
import { ENV, ENV_DEFAULTS } from '../../definition/env.ts';
import {
  DEFAULT_PREFIX,
  dlqName,
  type FunctionName,
  type IndexDef,
  QUEUES,
  type QueueDef,
  type QueueName,
  queueName,
  TABLES,
  type TableDef,
  type TableName,
  tableName,
} from '../../definition/tables-queues.ts';
import { bundledFunction } from './bundled-function.ts';
import { acknowledge, wildcardResourceFinding } from './nag.ts';
import { agentStatements, frameworkStatements } from './queue-access.ts';

/** Every Lambda function of the control plane: the queue consumers plus the scheduled sweep. */
export type ControlPlaneFunction = FunctionName | 'sweep';

/** What one function may touch. Nothing else is granted (besides consuming its own queues). */
export interface FunctionAccess {
  /** Tables it reads and writes. */
  readonly readWrite: readonly TableName[];
  /** Tables it only reads. */
  readonly read: readonly TableName[];
  /** Control-plane queues it sends to. */
  readonly send: readonly QueueName[];
}

/**
 * Least privilege, per function. On top of this every function may `sqs:SendMessage` to
 * `arn:aws:sqs:<region>:<account>:<prefix>-fw-*` and `…:<prefix>-agent-*`: the queues that
 * frameworks and agents own, whose URLs only arrive at run time. The control plane's own queues
 * are `<prefix>-cp-*` (`queueName` in `../definition.ts`), outside both.
 */
export const FUNCTION_ACCESS: Readonly<Record<ControlPlaneFunction, FunctionAccess>> = {
  registry: {
    readWrite: ['agents', 'frameworks', 'tasks', 'meta'],
    read: [],
    send: ['allocator', 'timers'],
  },
  allocator: { readWrite: ['agents', 'frameworks', 'meta'], read: ['tasks'], send: ['timers'] },
  // Timers mark agents UNREACHABLE (their tasks too) and remove frameworks whose failover timeout ended.
  timers: { readWrite: ['agents', 'frameworks', 'tasks', 'meta'], read: [], send: ['allocator', 'timers'] },
  sweep: { readWrite: ['agents', 'frameworks', 'tasks', 'meta'], read: [], send: ['allocator', 'timers'] },
};

/**
 * Concurrency per function: `reserved` caps (and guarantees) its instances; `perQueue` is the
 * event source's maximum concurrency on each queue it consumes, so one flooded queue cannot take
 * all of the function's instances (the registry consumes both calls queues) and a burst of calls
 * is queued in SQS, not fanned out over the account's Lambda concurrency. The sweep runs one at a time.
 */
export const CONCURRENCY: Readonly<Record<ControlPlaneFunction, { reserved: number; perQueue?: number }>> = {
  registry: { reserved: 20, perQueue: 10 },
  allocator: { reserved: 10, perQueue: 10 },
  timers: { reserved: 5, perQueue: 5 },
  sweep: { reserved: 1 },
};

/** Memory per function, MB. The allocator sorts and bin-packs whole shards, so it gets more (and more CPU). */
export const MEMORY_MB: Readonly<Record<ControlPlaneFunction, number>> = {
  registry: 512,
  allocator: 1024,
  timers: 512,
  sweep: 512,
};

/**
 * AWS recommends a queue visibility timeout of at least six times the consuming function's
 * timeout, so that a batch retried after throttling is not made visible again while in flight.
 */
const VISIBILITY_TO_TIMEOUT = 6;

/** The sweep runs once a schedule period; it should finish before the next one starts. */
const SWEEP_TIMEOUT = Duration.seconds(50);

export { ESM_REQUIRE_BANNER } from './bundled-function.ts';

const ENTRIES: Readonly<Record<ControlPlaneFunction, string>> = {
  registry: fileURLToPath(new URL('../../../functions/registry.ts', import.meta.url)),
  allocator: fileURLToPath(new URL('../../../functions/allocator.ts', import.meta.url)),
  timers: fileURLToPath(new URL('../../../functions/timers.ts', import.meta.url)),
  sweep: fileURLToPath(new URL('../../../functions/sweep.ts', import.meta.url)),
};

/**
 * Longest prefix accepted. SQS names are at most 80 characters and the longest fixed suffix is
 * `-cp-scheduler-calls-dlq.fifo` (28); frameworks and agents append their own ids to
 * `<prefix>-fw-` / `<prefix>-agent-`, so leave them most of the room.
 */
export const MAX_PREFIX_LENGTH = 32;
const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/**
 * A prefix with one of these `-`-separated parts would put its queues inside another
 * deployment's tenant namespace (`meso-fw-…` of prefix `meso` is the framework namespace of `meso`).
 */
const RESERVED_PREFIX_PARTS: readonly string[] = ['fw', 'agent', 'logs'];

export interface MesoControlPlaneProps {
  /**
   * Prefix of every physical name: tables `<prefix>-<name>`, queues `<prefix>-cp-<name>[.fifo]`,
   * functions `<prefix>-<function>`; frameworks' and agents' queues are `<prefix>-fw-*` and
   * `<prefix>-agent-*`. Letters, digits, `-` and `_`, at most {@link MAX_PREFIX_LENGTH}
   * characters, with no `-`-separated part `fw`, `agent` or `logs` (so `meso` and `meso-staging` can share
   * an account and region, while `meso-fw` would fall into `meso`'s framework namespace).
   *
   * @default DEFAULT_PREFIX ('meso')
   */
  readonly prefix?: string;

  /**
   * What happens to the tables (the cluster's state) and the functions' log groups when they
   * leave the stack or the stack is deleted. Queues and dead-letter queues are always deleted.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long the functions' logs are kept.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Notified when a dead-letter queue holds a message (ALARM) and when it is empty again (OK).
   *
   * @default - no action: the alarms are only visible in CloudWatch
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Reserve each function's concurrency ({@link CONCURRENCY}). Turn off only in an account whose
   * Lambda concurrency quota is too small to reserve it (AWS keeps 100 unreserved).
   *
   * @default true
   */
  readonly reservedConcurrency?: boolean;

  /**
   * When the sweep function runs (agent liveness, framework failover, expired offers).
   *
   * @default events.Schedule.rate(Duration.minutes(1))
   */
  readonly sweepSchedule?: events.Schedule;

  /**
   * Seconds an offer stays valid before it is rescinded (Mesos `--offer_timeout`); passed to the
   * functions as `MESO_OFFER_TIMEOUT_SECONDS`. A positive integer.
   *
   * @default 60
   */
  readonly offerTimeoutSeconds?: number;

  /**
   * Seconds an ended task's row is kept before the tasks table's TTL (`purgeAt`) removes it;
   * passed to the functions as `MESO_TASK_RETENTION_SECONDS`. An integer, at least 3600.
   *
   * @default 604800 (7 days)
   */
  readonly taskRetentionSeconds?: number;

  /**
   * Seconds between agent heartbeats; passed to the functions as
   * `MESO_HEARTBEAT_INTERVAL_SECONDS`. A positive integer.
   *
   * @default 15
   */
  readonly heartbeatIntervalSeconds?: number;
}

/**
 * Meso's serverless control plane: registry, allocator, timers and sweep functions over DynamoDB,
 * with SQS carrying every call.
 *
 * @example
 * const stack = new Stack(app, 'Meso');
 * const meso = new MesoControlPlane(stack, 'ControlPlane', { prefix: 'meso' });
 * new CfnOutput(stack, 'SchedulerCallsUrl', { value: meso.queues.schedulerCalls.queueUrl });
 */
export class MesoControlPlane extends Construct {
  readonly prefix: string;
  readonly tables: Readonly<Record<TableName, dynamodb.Table>>;
  readonly queues: Readonly<Record<QueueName, sqs.Queue>>;
  readonly deadLetterQueues: Readonly<Record<QueueName, sqs.Queue>>;
  /** One alarm per dead-letter queue: a message in it needs an operator. */
  readonly deadLetterAlarms: Readonly<Record<QueueName, cloudwatch.Alarm>>;
  readonly functions: Readonly<Record<ControlPlaneFunction, nodejs.NodejsFunction>>;
  readonly sweepRule: events.Rule;
  /**
   * Sending scheduler calls, and nothing else: a framework's own queue is granted per framework
   * (`MesoFramework`), so no framework identity reaches another's queue.
   */
  readonly frameworkPolicy: iam.ManagedPolicy;
  /**
   * The agent fleet's instances: send to agent-calls, own `<prefix>-agent-i-*` (EC2 instance ids).
   * On-prem agents get a policy for their one queue (`MesoOnPremAgent`).
   */
  readonly agentPolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: MesoControlPlaneProps = {}) {
    super(scope, id);
    const prefix = props.prefix ?? DEFAULT_PREFIX;
    if (
      !PREFIX_PATTERN.test(prefix) ||
      prefix.length > MAX_PREFIX_LENGTH ||
      prefix.split('-').some((part) => RESERVED_PREFIX_PARTS.includes(part))
    ) {
      throw new Error(
        `MesoControlPlane: prefix ${JSON.stringify(prefix)} must be 1-${MAX_PREFIX_LENGTH} letters, digits, '-' or '_', starting with a letter or digit, with no '-'-separated part 'fw', 'agent' or 'logs'`,
      );
    }
    const offerTimeoutSeconds = positiveInteger(
      'offerTimeoutSeconds',
      props.offerTimeoutSeconds ?? ENV_DEFAULTS.offerTimeoutSeconds,
    );
    const taskRetentionSeconds = positiveInteger(
      'taskRetentionSeconds',
      props.taskRetentionSeconds ?? ENV_DEFAULTS.taskRetentionSeconds,
    );
    if (taskRetentionSeconds < MIN_TASK_RETENTION_SECONDS)
      throw new Error(
        `MesoControlPlane: taskRetentionSeconds must be at least ${MIN_TASK_RETENTION_SECONDS}`,
      );
    const heartbeatIntervalSeconds = positiveInteger(
      'heartbeatIntervalSeconds',
      props.heartbeatIntervalSeconds ?? ENV_DEFAULTS.heartbeatIntervalSeconds,
    );
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.prefix = prefix;

    this.tables = mapRecord(TABLES, (key, def: TableDef) =>
      this.createTable(key, def, prefix, removalPolicy),
    );

    const deadLetterQueues = {} as Record<QueueName, sqs.Queue>;
    const deadLetterAlarms = {} as Record<QueueName, cloudwatch.Alarm>;
    this.queues = mapRecord(QUEUES, (key, def: QueueDef) => {
      const dlq = new sqs.Queue(this, `${pascal(key)}DeadLetterQueue`, {
        queueName: dlqName(prefix, def),
        ...fifoProps(def.fifo),
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      acknowledge(
        dlq,
        'Serverless-SQSRedrivePolicy',
        'A dead-letter queue: its messages wait for an operator (the alarm below), there is nowhere further to send them',
      );
      deadLetterQueues[key] = dlq;
      deadLetterAlarms[key] = this.createDeadLetterAlarm(key, dlq, props.alarmTopic);
      return new sqs.Queue(this, `${pascal(key)}Queue`, {
        queueName: queueName(prefix, def),
        ...fifoProps(def.fifo),
        visibilityTimeout: Duration.seconds(def.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(def.retentionSeconds),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: dlq, maxReceiveCount: def.maxReceiveCount },
      });
    });
    this.deadLetterQueues = deadLetterQueues;
    this.deadLetterAlarms = deadLetterAlarms;

    const environment: Record<string, string> = {
      [ENV.prefix]: prefix,
      [ENV.offerTimeoutSeconds]: String(offerTimeoutSeconds),
      [ENV.heartbeatIntervalSeconds]: String(heartbeatIntervalSeconds),
      [ENV.taskRetentionSeconds]: String(taskRetentionSeconds),
      [ENV.metricsNamespace]: ENV_DEFAULTS.metricsNamespace,
      NODE_OPTIONS: '--enable-source-maps',
    };
    // ACLs while an operator has stored none: closed but for the deployer's grants, the context
    // values `acl` (Mesos's ACL JSON) and `aclPermissive` (true: open, as a dev stack).
    const acl: unknown = this.node.tryGetContext('acl');
    const aclPermissive: unknown = this.node.tryGetContext('aclPermissive');
    environment[ENV.aclPermissive] = String(aclPermissive === true || aclPermissive === 'true');
    if (acl !== undefined) {
      const json = typeof acl === 'string' ? acl : JSON.stringify(acl);
      aclsFromJson(JSON.parse(json)); // a bad document fails the synth, not every call
      environment[ENV.acl] = json;
    }
    for (const key of keys(TABLES)) environment[ENV.tables(key)] = this.tables[key].tableName;
    for (const key of keys(QUEUES)) environment[ENV.queues(key)] = this.queues[key].queueUrl;

    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const functions = {} as Record<ControlPlaneFunction, nodejs.NodejsFunction>;
    for (const name of keys(ENTRIES)) {
      functions[name] = this.createFunction(name, prefix, environment, logRetention, removalPolicy, {
        reserve: props.reservedConcurrency !== false,
      });
    }
    this.functions = functions;

    for (const key of keys(QUEUES)) {
      const def: QueueDef = QUEUES[key];
      functions[def.consumer].addEventSource(
        new SqsEventSource(this.queues[key], {
          batchSize: def.batchSize,
          reportBatchItemFailures: true,
          ...(CONCURRENCY[def.consumer].perQueue
            ? { maxConcurrency: CONCURRENCY[def.consumer].perQueue }
            : {}),
          // FIFO event sources take no batching window; the standard timers queue gathers 1 s.
          ...(def.fifo ? {} : { maxBatchingWindow: Duration.seconds(1) }),
        }),
      );
    }

    // `logs`: the queues readers of task output receive chunks on (lib/protocol/logs.ts).
    const tenantQueues = ['fw', 'agent', 'logs'].map((kind) =>
      Arn.format({ service: 'sqs', resource: `${prefix}-${kind}-*` }, Stack.of(this)),
    );
    for (const name of keys(FUNCTION_ACCESS)) {
      const fn = functions[name];
      const access = FUNCTION_ACCESS[name];
      for (const table of access.readWrite) this.tables[table].grantReadWriteData(fn);
      for (const table of access.read) this.tables[table].grantReadData(fn);
      for (const queue of access.send) this.queues[queue].grantSendMessages(fn);
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: tenantQueues }));
      const role = fn.role as iam.Role;
      for (const arn of tenantQueues) {
        acknowledge(
          role,
          wildcardResourceFinding(this, arn),
          'Send only, to the queues frameworks, agents and log readers own, whose names arrive at run time; the control plane sends only to the queue derived from the id or principal it checked (docs/protocol.md 1.1)',
        );
      }
      acknowledgeIndexGrants(this, role, this.tables, [...access.readWrite, ...access.read]);
    }

    this.sweepRule = new events.Rule(this, 'SweepSchedule', {
      description: `Runs ${prefix}-sweep: agent liveness, framework failover, expired offers`,
      schedule: props.sweepSchedule ?? events.Schedule.rate(Duration.minutes(1)),
      targets: [
        new eventsTargets.LambdaFunction(functions.sweep, {
          retryAttempts: 2,
          maxEventAge: Duration.minutes(1),
        }),
      ],
    });
    acknowledge(
      this.sweepRule,
      'Serverless-EventBusDLQ',
      'A missed sweep event is worth nothing later: the next one comes within a minute and does the same work',
    );

    this.frameworkPolicy = new iam.ManagedPolicy(this, 'MesoFrameworkPolicy', {
      description: `Meso frameworks (${prefix}): send scheduler calls; each framework's own queue is granted by MesoFramework`,
      statements: frameworkStatements(this.queues.schedulerCalls.queueArn),
    });
    const instanceQueues = Arn.format({ service: 'sqs', resource: `${prefix}-agent-i-*` }, Stack.of(this));
    this.agentPolicy = new iam.ManagedPolicy(this, 'MesoAgentPolicy', {
      description: `Meso agent fleet (${prefix}): send agent calls, own <prefix>-agent-i-* (instance id) command queue tagged with the instance's ARN`,
      statements: agentStatements(this.queues.agentCalls.queueArn, {
        sid: 'OwnInstanceCommandQueues',
        arn: instanceQueues,
        byInstanceTag: true,
      }),
    });
    acknowledge(
      this.agentPolicy,
      wildcardResourceFinding(this, instanceQueues),
      "The fleet's instances share one role and name their queues after their instance ids, unknown at synthesis; each may use only the queues tagged with its own instance ARN (ec2:SourceInstanceARN, fleet-identity.ts; docs/security.md, In AWS)",
    );
  }

  private createTable(
    key: TableName,
    def: TableDef,
    prefix: string,
    removalPolicy: RemovalPolicy,
  ): dynamodb.Table {
    const table = new dynamodb.Table(this, `${pascal(key)}Table`, {
      tableName: tableName(prefix, def),
      partitionKey: { name: def.partitionKey, type: dynamodb.AttributeType.STRING },
      ...(def.sortKey ? { sortKey: { name: def.sortKey, type: dynamodb.AttributeType.STRING } } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      ...(def.ttlAttribute ? { timeToLiveAttribute: def.ttlAttribute } : {}),
      // A retained table is the cluster's state: deleting it takes turning this off first.
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
    for (const index of def.indexes ?? []) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: keyType(index) },
        ...(index.sortKey ? { sortKey: { name: index.sortKey, type: keyType(index) } } : {}),
        ...(index.include
          ? { projectionType: dynamodb.ProjectionType.INCLUDE, nonKeyAttributes: [...index.include] }
          : { projectionType: dynamodb.ProjectionType.ALL }),
      });
    }
    return table;
  }

  private createDeadLetterAlarm(key: QueueName, dlq: sqs.Queue, topic?: sns.ITopic): cloudwatch.Alarm {
    const alarm = dlq
      .metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' })
      .createAlarm(this, `${pascal(key)}DeadLetterAlarm`, {
        alarmDescription: `Messages from ${QUEUES[key].name} were given up on after ${QUEUES[key].maxReceiveCount} deliveries; inspect and redrive ${dlq.node.path}`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    if (topic) {
      const action = new cloudwatchActions.SnsAction(topic);
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
    return alarm;
  }

  private createFunction(
    name: ControlPlaneFunction,
    prefix: string,
    environment: Record<string, string>,
    logRetention: logs.RetentionDays,
    removalPolicy: RemovalPolicy,
    opts: { reserve: boolean },
  ): nodejs.NodejsFunction {
    const fn = bundledFunction(this, {
      id: pascal(name),
      functionName: `${prefix}-${name}`,
      entry: ENTRIES[name],
      roleDescription: `${prefix}-${name}: its tables, queues and log group`,
      memorySize: MEMORY_MB[name],
      timeout: functionTimeout(name),
      ...(opts.reserve ? { reservedConcurrentExecutions: CONCURRENCY[name].reserved } : {}),
      environment: { ...environment, POWERTOOLS_SERVICE_NAME: `meso-${name}` },
      // The sweep runs again within a minute; retrying a failed one would only overlap it.
      ...(name === 'sweep' ? { retryAttempts: 0 } : {}),
      logRetention,
      removalPolicy,
      noTracingBecause:
        'Each call is followed by message id and framework or agent id in the structured logs and metrics; X-Ray would add a cost per call and an xray:* grant on every resource',
    });
    if (name === 'sweep') {
      const reason =
        'Scheduled every minute with no retries: a failed sweep is redone by the next one; errors are in its logs and metrics';
      acknowledge(fn, 'Serverless-LambdaDLQ', reason);
      acknowledge(fn, 'Serverless-LambdaAsyncFailureDestination', reason);
    } else {
      const reason =
        "Invoked by an SQS event source only: a record that keeps failing goes to its queue's dead-letter queue (redrive policy, alarmed)";
      acknowledge(fn, 'Serverless-LambdaDLQ', reason);
      acknowledge(fn, 'Serverless-LambdaEventSourceMappingDestination', reason);
    }
    return fn;
  }
}

/**
 * A consumer's timeout: 1/6 of the shortest visibility timeout among the queues it consumes.
 * The sweep, on a schedule, gets {@link SWEEP_TIMEOUT}.
 */
export function functionTimeout(name: ControlPlaneFunction): Duration {
  const visibilities = Object.values(QUEUES)
    .filter((def: QueueDef) => def.consumer === name)
    .map((def) => def.visibilityTimeoutSeconds);
  if (visibilities.length === 0) return SWEEP_TIMEOUT;
  return Duration.seconds(Math.floor(Math.min(...visibilities) / VISIBILITY_TO_TIMEOUT));
}

/** An index's key attribute type: numbers when the definition says so, else strings. */
function keyType(index: IndexDef): dynamodb.AttributeType {
  return index.numericKeys ? dynamodb.AttributeType.NUMBER : dynamodb.AttributeType.STRING;
}

function fifoProps(fifo: boolean): Partial<sqs.QueueProps> {
  if (!fifo) return {};
  // Senders set deduplication ids; high-throughput FIFO: quotas per message group, not per queue.
  return {
    fifo: true,
    contentBasedDeduplication: false,
    fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
    deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
  };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`MesoControlPlane: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function keys<K extends string>(record: Readonly<Record<K, unknown>>): K[] {
  return Object.keys(record) as K[];
}

function mapRecord<K extends string, V, R>(
  record: Readonly<Record<K, V>>,
  fn: (key: K, value: V) => R,
): Record<K, R> {
  const out = {} as Record<K, R>;
  for (const key of keys(record)) out[key] = fn(key, record[key]);
  return out;
}

/** `schedulerCalls` → `SchedulerCalls`, for construct ids and output names. */
export function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * Table.grant* also grants `<table>/index/*`, which cdk-nag reports as a wildcard: acknowledged,
 * naming the indexes, for each granted table that has any (lib/definition/tables-queues.ts).
 */
export function acknowledgeIndexGrants(
  scope: Construct,
  role: iam.Role,
  tables: Readonly<Record<TableName, dynamodb.Table>>,
  granted: readonly TableName[],
): void {
  for (const key of new Set(granted)) {
    const indexes = ((TABLES[key] as TableDef).indexes ?? []).map((i) => i.name);
    if (indexes.length === 0) continue;
    acknowledge(
      role,
      wildcardResourceFinding(scope, `${tables[key].tableArn}/index/*`),
      `The ${key} table's own global secondary indexes (${indexes.join(', ')}), as Table.grant* writes them`,
    );
  }
}
