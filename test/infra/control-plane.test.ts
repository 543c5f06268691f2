/**
 * Assertions on the synthesized CloudFormation template of the Meso stack. Synthesis bundles the
 * four functions with the local esbuild (a few seconds), so each stack is synthesized once.
 */
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lib/definition/env.ts';
import {
  DEFAULT_PREFIX,
  dlqName,
  QUEUES,
  type QueueDef,
  type QueueName,
  queueName,
  TABLES,
  type TableDef,
  type TableName,
  tableName,
} from '../../lib/definition/tables-queues.ts';
import {
  CONCURRENCY,
  type ControlPlaneFunction,
  FUNCTION_ACCESS,
  type FunctionAccess,
  functionTimeout,
  MesoControlPlane,
} from '../../lib/infra/cdk/control-plane.ts';
import { MesoStack } from '../../lib/infra/cdk/stack.ts';

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Sid?: string };

const SYNTH_TIMEOUT = 120_000;
const GRANTS = JSON.stringify({
  register_frameworks: [{ principals: { values: ['AROAX:*'] }, roles: { type: 'ANY' } }],
});
const ALARM_TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:meso-alarms';
const queueKeys = Object.keys(QUEUES) as QueueName[];
const tableKeys = Object.keys(TABLES) as TableName[];

/** The access each function needs, written out here so that a widened grant fails the test. */
const EXPECTED_ACCESS: Record<ControlPlaneFunction, FunctionAccess> = {
  registry: {
    readWrite: ['agents', 'frameworks', 'tasks', 'meta'],
    read: [],
    send: ['allocator', 'timers'],
  },
  allocator: { readWrite: ['agents', 'frameworks', 'meta'], read: ['tasks'], send: ['timers'] },
  timers: { readWrite: ['agents', 'frameworks', 'tasks', 'meta'], read: [], send: ['allocator', 'timers'] },
  sweep: { readWrite: ['agents', 'frameworks', 'tasks', 'meta'], read: [], send: ['allocator', 'timers'] },
};
const functionNames = Object.keys(EXPECTED_ACCESS) as ControlPlaneFunction[];

let template: Template;
let custom: Template;

beforeAll(() => {
  const app = new App();
  // The control plane alone: the services framework is checked in services.test.ts.
  const defaults = new MesoStack(app, 'Default', { services: false });
  // The construct on its own, in a plain stack, with every prop set; the alarm topic is an
  // existing one, imported by ARN as a deployment would pass it in.
  const customized = new Stack(app, 'Custom');
  // The deployer's grants, as `cdk deploy -c acl='{...}' -c aclPermissive=true` passes them.
  customized.node.setContext('acl', GRANTS);
  customized.node.setContext('aclPermissive', 'true');
  new MesoControlPlane(customized, 'ControlPlane', {
    prefix: 'meso-test',
    removalPolicy: RemovalPolicy.DESTROY,
    logRetention: logs.RetentionDays.ONE_WEEK,
    alarmTopic: sns.Topic.fromTopicArn(customized, 'Alarms', ALARM_TOPIC_ARN),
    sweepSchedule: events.Schedule.rate(Duration.minutes(5)),
    offerTimeoutSeconds: 30,
    heartbeatIntervalSeconds: 20,
  });
  // Every stack exists before the first synthesis: the app synthesizes (and bundles) once.
  template = Template.fromStack(defaults);
  custom = Template.fromStack(customized);
}, SYNTH_TIMEOUT);

function resources(t: Template, type: string): Record<string, Resource> {
  return t.findResources(type) as Record<string, Resource>;
}

/** The logical id of the resource of `type` whose property `name` equals `value`. */
function logicalId(t: Template, type: string, name: string, value: unknown): string {
  const found = Object.entries(resources(t, type)).filter(([, r]) => r.Properties[name] === value);
  expect(found, `${type} with ${name}=${String(value)}`).toHaveLength(1);
  return found[0]![0];
}

function functionId(t: Template, name: string, prefix = DEFAULT_PREFIX): string {
  return logicalId(t, 'AWS::Lambda::Function', 'FunctionName', `${prefix}-${name}`);
}

function actionsOf(s: Statement): string[] {
  return Array.isArray(s.Action) ? s.Action : [s.Action];
}

/** Statements of the inline policies attached to a function's role. */
function roleStatements(t: Template, fnId: string): Statement[] {
  const fn = resources(t, 'AWS::Lambda::Function')[fnId]!;
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return Object.values(resources(t, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

/** Actions a role is allowed on a resource whose CloudFormation value mentions `ref` (a logical id). */
function allowedOn(statements: Statement[], ref: string): Set<string> {
  const out = new Set<string>();
  for (const s of statements) {
    if (s.Effect === 'Allow' && JSON.stringify(s.Resource).includes(`"${ref}"`)) {
      for (const a of actionsOf(s)) out.add(a);
    }
  }
  return out;
}

describe('MesoStack template', { timeout: SYNTH_TIMEOUT }, () => {
  describe('tables', () => {
    it('creates exactly the defined tables', () => {
      template.resourceCountIs('AWS::DynamoDB::Table', tableKeys.length);
    });

    it.each(tableKeys)('%s: on-demand, PITR, AWS-managed encryption, retained, keys as defined', (key) => {
      const def: TableDef = TABLES[key];
      const keySchema = [
        { AttributeName: def.partitionKey, KeyType: 'HASH' },
        ...(def.sortKey ? [{ AttributeName: def.sortKey, KeyType: 'RANGE' }] : []),
      ];
      const id = logicalId(template, 'AWS::DynamoDB::Table', 'TableName', tableName(DEFAULT_PREFIX, def));
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          TableName: tableName(DEFAULT_PREFIX, def),
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          // SSEEnabled without a customer key: KMS with the AWS-managed key aws/dynamodb.
          SSESpecification: { SSEEnabled: true, KMSMasterKeyId: Match.absent() },
          KeySchema: keySchema,
          ProvisionedThroughput: Match.absent(),
        },
      });
      const props = resources(template, 'AWS::DynamoDB::Table')[id]!.Properties;
      const indexes = (props.GlobalSecondaryIndexes ?? []) as { IndexName: string; KeySchema: unknown }[];
      expect(indexes.map((i) => [i.IndexName, i.KeySchema])).toEqual(
        (def.indexes ?? []).map((i) => [
          i.name,
          [
            { AttributeName: i.partitionKey, KeyType: 'HASH' },
            ...(i.sortKey ? [{ AttributeName: i.sortKey, KeyType: 'RANGE' }] : []),
          ],
        ]),
      );
      expect(props.TimeToLiveSpecification).toEqual(
        def.ttlAttribute ? { AttributeName: def.ttlAttribute, Enabled: true } : undefined,
      );
    });

    it('protects retained tables from deletion; tables the stack may delete are not protected', () => {
      for (const r of Object.values(resources(template, 'AWS::DynamoDB::Table'))) {
        expect(r.Properties.DeletionProtectionEnabled).toBe(true);
      }
      for (const r of Object.values(resources(custom, 'AWS::DynamoDB::Table'))) {
        expect(r.Properties.DeletionProtectionEnabled).not.toBe(true);
      }
    });

    it('lets DynamoDB delete task records (and their environments) once purgeAt has passed', () => {
      const id = logicalId(
        template,
        'AWS::DynamoDB::Table',
        'TableName',
        tableName(DEFAULT_PREFIX, TABLES.tasks),
      );
      expect(resources(template, 'AWS::DynamoDB::Table')[id]!.Properties.TimeToLiveSpecification).toEqual({
        AttributeName: 'purgeAt',
        Enabled: true,
      });
    });
  });

  describe('queues', () => {
    it('creates each defined queue and one dead-letter queue per queue', () => {
      template.resourceCountIs('AWS::SQS::Queue', 2 * queueKeys.length);
    });

    it('are named <prefix>-cp-*, outside the framework and agent namespaces', () => {
      for (const r of Object.values(resources(template, 'AWS::SQS::Queue'))) {
        expect(r.Properties.QueueName).toMatch(/^meso-cp-/);
      }
    });

    it('refuse every request not made over TLS, dead-letter queues included', () => {
      const policies = Object.values(resources(template, 'AWS::SQS::QueuePolicy'));
      const covered = new Set<string>();
      for (const p of policies) {
        const statements = (p.Properties.PolicyDocument as { Statement: Record<string, unknown>[] })
          .Statement;
        const deny = statements.find(
          (st) =>
            st.Effect === 'Deny' &&
            JSON.stringify(st.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
        );
        if (!deny) continue;
        expect(deny.Action).toBe('sqs:*');
        for (const q of p.Properties.Queues as { Ref: string }[]) covered.add(q.Ref);
      }
      expect([...covered].sort()).toEqual(Object.keys(resources(template, 'AWS::SQS::Queue')).sort());
    });

    it.each(queueKeys)('%s: SSE, FIFO-ness, timeouts, redrive to its own DLQ', (key) => {
      const def: QueueDef = QUEUES[key];
      const dlqId = logicalId(template, 'AWS::SQS::Queue', 'QueueName', dlqName(DEFAULT_PREFIX, def));
      const fifo = def.fifo
        ? { FifoQueue: true, FifoThroughputLimit: 'perMessageGroupId', DeduplicationScope: 'messageGroup' }
        : { FifoQueue: Match.absent(), FifoThroughputLimit: Match.absent() };
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: queueName(DEFAULT_PREFIX, def),
        SqsManagedSseEnabled: true,
        KmsMasterKeyId: Match.absent(),
        VisibilityTimeout: def.visibilityTimeoutSeconds,
        MessageRetentionPeriod: def.retentionSeconds,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
          maxReceiveCount: def.maxReceiveCount,
        },
        ...fifo,
      });
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: dlqName(DEFAULT_PREFIX, def),
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 86400,
        FifoQueue: def.fifo ? true : Match.absent(),
        RedrivePolicy: Match.absent(),
      });
      const props = resources(template, 'AWS::SQS::Queue')[
        logicalId(template, 'AWS::SQS::Queue', 'QueueName', queueName(DEFAULT_PREFIX, def))
      ]!.Properties;
      // Senders set deduplication ids; content-based deduplication stays off.
      expect(props.ContentBasedDeduplication ?? false).toBe(false);
      expect(queueName(DEFAULT_PREFIX, def).endsWith('.fifo')).toBe(def.fifo);
    });

    it('has one alarm per dead-letter queue, at one visible message or more', () => {
      // The operator API's alarms on the functions' own metrics are tested in operator-api.test.ts.
      const alarms = Object.values(resources(template, 'AWS::CloudWatch::Alarm')).filter(
        (a) => a.Properties.Namespace === 'AWS/SQS',
      );
      expect(alarms).toHaveLength(queueKeys.length);
      const alarmed = alarms.map((a) => {
        expect(a.Properties).toMatchObject({
          Namespace: 'AWS/SQS',
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        });
        const [dimension] = a.Properties.Dimensions as { Name: string; Value: { 'Fn::GetAtt': string[] } }[];
        expect(dimension?.Name).toBe('QueueName');
        return dimension!.Value['Fn::GetAtt'][0];
      });
      const dlqIds = queueKeys.map((k) =>
        logicalId(template, 'AWS::SQS::Queue', 'QueueName', dlqName(DEFAULT_PREFIX, QUEUES[k])),
      );
      expect(new Set(alarmed)).toEqual(new Set(dlqIds));
      // No topic given: no actions.
      for (const a of alarms) expect(a.Properties.AlarmActions).toBeUndefined();
    });
  });

  describe('functions', () => {
    it('are the four handlers on nodejs22.x, arm64, bundled as ESM', () => {
      const fns = Object.values(resources(template, 'AWS::Lambda::Function')).filter(
        (f) => !String(f.Properties.FunctionName).endsWith('-operator-api'),
      );
      expect(fns).toHaveLength(functionNames.length);
      for (const fn of fns) {
        expect(fn.Properties).toMatchObject({
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          Handler: 'index.handler',
        });
      }
      for (const name of functionNames) functionId(template, name);
    });

    it('have reserved concurrency: a flood of calls cannot take the account, the sweep runs alone', () => {
      const reserved = Object.fromEntries(
        functionNames.map((name) => [
          name,
          resources(template, 'AWS::Lambda::Function')[functionId(template, name)]!.Properties
            .ReservedConcurrentExecutions,
        ]),
      );
      expect(reserved).toEqual({ registry: 20, allocator: 10, timers: 5, sweep: 1 });
    });

    it('get memory 512 MB, the allocator 1024 MB', () => {
      for (const name of functionNames) {
        template.hasResourceProperties('AWS::Lambda::Function', {
          FunctionName: `${DEFAULT_PREFIX}-${name}`,
          MemorySize: name === 'allocator' ? 1024 : 512,
        });
      }
    });

    it('learn every table, queue and setting from the environment', () => {
      const expected: Record<string, unknown> = {
        [ENV.prefix]: DEFAULT_PREFIX,
        MESO_OFFER_TIMEOUT_SECONDS: '60',
        MESO_HEARTBEAT_INTERVAL_SECONDS: '15',
        // A deployed stack is closed but for what its deployer grants: here nothing.
        MESO_ACL_PERMISSIVE: 'false',
        MESO_ACL: Match.absent(),
        POWERTOOLS_METRICS_NAMESPACE: 'Meso',
        POWERTOOLS_SERVICE_NAME: Match.stringLikeRegexp('.+'),
      };
      for (const key of tableKeys) {
        expected[ENV.tables(key)] = {
          Ref: logicalId(
            template,
            'AWS::DynamoDB::Table',
            'TableName',
            tableName(DEFAULT_PREFIX, TABLES[key]),
          ),
        };
      }
      for (const key of queueKeys) {
        expected[ENV.queues(key)] = {
          Ref: logicalId(template, 'AWS::SQS::Queue', 'QueueName', queueName(DEFAULT_PREFIX, QUEUES[key])),
        };
      }
      for (const name of functionNames) {
        template.hasResourceProperties('AWS::Lambda::Function', {
          FunctionName: `${DEFAULT_PREFIX}-${name}`,
          Environment: { Variables: expected },
        });
      }
    });

    it("pass the deployer's ACL grants and default from the context", () => {
      for (const name of functionNames) {
        custom.hasResourceProperties('AWS::Lambda::Function', {
          FunctionName: `meso-test-${name}`,
          Environment: { Variables: Match.objectLike({ MESO_ACL: GRANTS, MESO_ACL_PERMISSIVE: 'true' }) },
        });
      }
    });

    it('time out well within the visibility timeout of every queue they consume', () => {
      const fns = resources(template, 'AWS::Lambda::Function');
      for (const key of queueKeys) {
        const def: QueueDef = QUEUES[key];
        const timeout = fns[functionId(template, def.consumer)]!.Properties.Timeout as number;
        expect(timeout).toBe(functionTimeout(def.consumer).toSeconds());
        expect(timeout * 6).toBeLessThanOrEqual(def.visibilityTimeoutSeconds);
      }
    });
  });

  describe('event sources', () => {
    it('one mapping per queue, to its consumer, with partial batch failures and the defined batch size', () => {
      const mappings = Object.values(resources(template, 'AWS::Lambda::EventSourceMapping'));
      expect(mappings).toHaveLength(queueKeys.length);
      for (const key of queueKeys) {
        const def: QueueDef = QUEUES[key];
        const queueId = logicalId(template, 'AWS::SQS::Queue', 'QueueName', queueName(DEFAULT_PREFIX, def));
        template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
          FunctionName: { Ref: functionId(template, def.consumer) },
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          BatchSize: def.batchSize,
          MaximumBatchingWindowInSeconds: def.fifo ? Match.absent() : 1,
          // Each queue may take at most this many of its consumer's instances.
          ScalingConfig: { MaximumConcurrency: CONCURRENCY[def.consumer].perQueue },
        });
      }
    });

    it('runs the sweep on a one-minute schedule', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 minute)',
        State: 'ENABLED',
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId(template, 'sweep'), 'Arn'] } })],
      });
    });
  });

  describe('IAM', () => {
    it('uses no wildcard action anywhere', () => {
      const docs = [
        ...Object.values(resources(template, 'AWS::IAM::Policy')),
        ...Object.values(resources(template, 'AWS::IAM::ManagedPolicy')),
      ].map((p) => p.Properties.PolicyDocument as { Statement: Statement[] });
      const roles = Object.values(resources(template, 'AWS::IAM::Role'));
      expect(docs.length).toBeGreaterThanOrEqual(functionNames.length + 2);
      const actions = docs.flatMap((d) => d.Statement.flatMap(actionsOf));
      expect(actions.length).toBeGreaterThan(0);
      for (const action of actions) expect(action).not.toContain('*');
      // Roles carry only the basic execution managed policy, no inline wildcards.
      for (const role of roles) expect(role.Properties.Policies).toBeUndefined();
    });

    it('the construct declares the expected access', () => {
      expect(FUNCTION_ACCESS).toEqual(EXPECTED_ACCESS);
    });

    it.each(functionNames)('%s: reaches only the tables and queues it needs', (name) => {
      const access = EXPECTED_ACCESS[name];
      const statements = roleStatements(template, functionId(template, name));
      for (const table of tableKeys) {
        const id = logicalId(
          template,
          'AWS::DynamoDB::Table',
          'TableName',
          tableName(DEFAULT_PREFIX, TABLES[table]),
        );
        const allowed = allowedOn(statements, id);
        const writes = access.readWrite.includes(table);
        const reads = writes || access.read.includes(table);
        expect(allowed.has('dynamodb:GetItem'), `${name} reads ${table}`).toBe(reads);
        expect(allowed.has('dynamodb:PutItem'), `${name} writes ${table}`).toBe(writes);
        expect(allowed.has('dynamodb:UpdateItem'), `${name} updates ${table}`).toBe(writes);
      }
      for (const key of queueKeys) {
        const def: QueueDef = QUEUES[key];
        const id = logicalId(template, 'AWS::SQS::Queue', 'QueueName', queueName(DEFAULT_PREFIX, def));
        const allowed = allowedOn(statements, id);
        expect(allowed.has('sqs:SendMessage'), `${name} sends to ${key}`).toBe(access.send.includes(key));
        expect(allowed.has('sqs:ReceiveMessage'), `${name} consumes ${key}`).toBe(def.consumer === name);
      }
      // The framework and agent queues, known only at run time, by name prefix; nothing else by prefix.
      const prefixed = statements.filter((s) => JSON.stringify(s.Resource).includes(`:${DEFAULT_PREFIX}-`));
      expect(prefixed).toHaveLength(1);
      expect(actionsOf(prefixed[0]!)).toEqual(['sqs:SendMessage']);
      const text = JSON.stringify(prefixed[0]!.Resource);
      expect(text).toContain(`:${DEFAULT_PREFIX}-fw-*"`);
      expect(text).toContain(`:${DEFAULT_PREFIX}-agent-*"`);
      expect(text).toContain(`:${DEFAULT_PREFIX}-logs-*"`);
      expect(text).not.toContain(`:${DEFAULT_PREFIX}-*"`);
    });

    it('exports a framework policy that sends scheduler calls and owns no queue', () => {
      const callsId = logicalId(
        template,
        'AWS::SQS::Queue',
        'QueueName',
        queueName(DEFAULT_PREFIX, QUEUES.schedulerCalls),
      );
      const policy = findManagedPolicy(template, 'MesoFrameworkPolicy');
      expect(allowedOn(policy, callsId)).toContain('sqs:SendMessage');
      expect(allowedOn(policy, callsId)).not.toContain('sqs:ReceiveMessage');
      expect(policy.filter((s) => s.Effect === 'Allow')).toHaveLength(1);
    });

    it("exports the fleet's agent policy: send calls, own <prefix>-agent-i-* (instance id) queues", () => {
      const callsId = logicalId(
        template,
        'AWS::SQS::Queue',
        'QueueName',
        queueName(DEFAULT_PREFIX, QUEUES.agentCalls),
      );
      const policy = findManagedPolicy(template, 'MesoAgentPolicy');
      expect(allowedOn(policy, callsId)).toContain('sqs:SendMessage');
      expect(allowedOn(policy, callsId)).not.toContain('sqs:ReceiveMessage');
      const own = policy.filter((s) => JSON.stringify(s.Resource).includes(`:${DEFAULT_PREFIX}-agent-i-*"`));
      expect(own.flatMap(actionsOf)).toEqual(
        expect.arrayContaining(['sqs:CreateQueue', 'sqs:ReceiveMessage', 'sqs:DeleteMessage']),
      );
      // Each only on the queues tagged with the caller's own instance ARN (fleet-identity.ts;
      // evaluated in test/infra/queue-ownership.test.ts).
      for (const s of own) expect(JSON.stringify(s)).toContain('{ec2:SourceInstanceARN}');
    });
  });

  describe('outputs', () => {
    it('name every queue URL, table name and both policy ARNs', () => {
      const outputs = template.findOutputs('*') as Record<string, { Value: unknown }>;
      const values = Object.values(outputs).map((o) => JSON.stringify(o.Value));
      for (const key of queueKeys) {
        for (const name of [queueName(DEFAULT_PREFIX, QUEUES[key]), dlqName(DEFAULT_PREFIX, QUEUES[key])]) {
          const id = logicalId(template, 'AWS::SQS::Queue', 'QueueName', name);
          expect(values, `URL of ${name}`).toContain(JSON.stringify({ Ref: id }));
        }
      }
      for (const key of tableKeys) {
        const id = logicalId(
          template,
          'AWS::DynamoDB::Table',
          'TableName',
          tableName(DEFAULT_PREFIX, TABLES[key]),
        );
        expect(values, `name of ${key}`).toContain(JSON.stringify({ Ref: id }));
      }
      for (const id of Object.keys(resources(template, 'AWS::IAM::ManagedPolicy'))) {
        expect(values).toContain(JSON.stringify({ Ref: id }));
      }
      expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['FrameworkPolicyArn', 'AgentPolicyArn']));
    });
  });

  describe('props', () => {
    it('prefix every physical name and pass the settings through', () => {
      for (const key of tableKeys) {
        custom.hasResourceProperties('AWS::DynamoDB::Table', {
          TableName: tableName('meso-test', TABLES[key]),
        });
      }
      for (const key of queueKeys) {
        custom.hasResourceProperties('AWS::SQS::Queue', { QueueName: queueName('meso-test', QUEUES[key]) });
        custom.hasResourceProperties('AWS::SQS::Queue', { QueueName: dlqName('meso-test', QUEUES[key]) });
      }
      custom.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: 'meso-test-registry',
        Environment: {
          Variables: Match.objectLike({
            MESO_PREFIX: 'meso-test',
            MESO_OFFER_TIMEOUT_SECONDS: '30',
            MESO_HEARTBEAT_INTERVAL_SECONDS: '20',
          }),
        },
      });
      custom.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
      custom.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
      const prefixed = roleStatements(custom, functionId(custom, 'registry', 'meso-test')).filter((s) =>
        JSON.stringify(s.Resource).includes(':meso-test-fw-*"'),
      );
      expect(prefixed).toHaveLength(1);
    });

    it('send dead-letter alarms (and their end) to the alarm topic', () => {
      const alarms = Object.values(resources(custom, 'AWS::CloudWatch::Alarm'));
      expect(alarms).toHaveLength(queueKeys.length);
      for (const a of alarms) {
        expect(a.Properties.AlarmActions).toEqual([ALARM_TOPIC_ARN]);
        expect(a.Properties.OKActions).toEqual([ALARM_TOPIC_ARN]);
      }
    });

    it('apply the removal policy to tables and log groups', () => {
      for (const type of ['AWS::DynamoDB::Table', 'AWS::Logs::LogGroup']) {
        const all = Object.values(resources(custom, type));
        expect(all.length).toBeGreaterThan(0);
        for (const r of all) expect(r.DeletionPolicy, type).toBe('Delete');
      }
      for (const r of Object.values(resources(template, 'AWS::Logs::LogGroup'))) {
        expect(r.DeletionPolicy).toBe('Retain');
      }
    });

    it('reserve no concurrency when told not to (accounts with a small quota)', () => {
      const stack = new Stack(new App(), 'Small');
      const meso = new MesoControlPlane(stack, 'ControlPlane', { reservedConcurrency: false });
      for (const fn of Object.values(meso.functions)) {
        expect(
          stack.resolve(
            (fn.node.defaultChild as { reservedConcurrentExecutions?: number }).reservedConcurrentExecutions,
          ),
        ).toBeUndefined();
      }
    });

    it('reject a prefix that would make invalid or ambiguous names', () => {
      const app = new App();
      expect(() => new MesoStack(app, 'Bad1', { prefix: 'has space' })).toThrow(/prefix/);
      expect(() => new MesoStack(app, 'Bad2', { prefix: 'x'.repeat(33) })).toThrow(/prefix/);
      expect(() => new MesoStack(app, 'Bad3', { prefix: '-leading' })).toThrow(/prefix/);
      // Inside another deployment's tenant namespaces (`meso-fw-*`, `meso-agent-*` of prefix `meso`).
      expect(() => new MesoStack(app, 'Bad6', { prefix: 'meso-fw' })).toThrow(/prefix/);
      expect(() => new MesoStack(app, 'Bad7', { prefix: 'meso-agent-x' })).toThrow(/prefix/);
      expect(() => new MesoStack(app, 'Bad8', { prefix: 'meso-logs' })).toThrow(/prefix/);
      expect(() => new MesoStack(app, 'Good', { prefix: 'meso-staging' })).not.toThrow();
      expect(() => new MesoStack(app, 'Bad4', { offerTimeoutSeconds: 0 })).toThrow(/offerTimeoutSeconds/);
      expect(() => new MesoStack(app, 'Bad5', { heartbeatIntervalSeconds: 1.5 })).toThrow(
        /heartbeatIntervalSeconds/,
      );
    });
  });
});

function findManagedPolicy(t: Template, constructId: string): Statement[] {
  const found = Object.entries(resources(t, 'AWS::IAM::ManagedPolicy')).filter(([id]) =>
    id.includes(constructId),
  );
  expect(found, constructId).toHaveLength(1);
  return (found[0]![1].Properties.PolicyDocument as { Statement: Statement[] }).Statement;
}
