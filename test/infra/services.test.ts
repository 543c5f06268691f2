/**
 * The built-in services and jobs frameworks in the stack, each: its table, its event queue in the framework namespace, one
 * function with reserved concurrency 1 fed by the queue and a one-minute schedule, and a role that
 * reaches its own table and queue and the scheduler-calls queue — not the control plane's tables.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { MesoStack } from '../../lib/infra/cdk/stack.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };
let template: Template;

beforeAll(() => {
  const app = new App();
  template = Template.fromStack(new MesoStack(app, 'WithServices'));
}, 120_000);

const byType = (type: string) => Object.entries(template.findResources(type) as Record<string, Resource>);

describe.each([
  ['Services', 'services'],
  ['Jobs', 'jobs'],
])('the built-in %s framework in MesoStack', { timeout: 120_000 }, (Id, name) => {
  it('has its table and a FIFO event queue named as any framework queue, with a dead-letter queue', () => {
    const tables = byType('AWS::DynamoDB::Table').filter(([id]) => id.startsWith(Id));
    expect(tables).toHaveLength(1);
    expect(tables[0]![1].Properties.TableName).toBe(`meso-${name}`);
    const queues = byType('AWS::SQS::Queue')
      .filter(([id]) => id.startsWith(Id))
      .map(([, q]) => q.Properties.QueueName);
    expect(queues.sort()).toEqual([`meso-fw-meso-${name}-dlq.fifo`, `meso-fw-meso-${name}.fifo`]);
  });

  it('runs one function, one at a time, on its queue and on a one-minute schedule', () => {
    const fns = byType('AWS::Lambda::Function').filter(([id]) => id.startsWith(Id));
    expect(fns).toHaveLength(1);
    const [fnId, fn] = fns[0]!;
    expect(fn.Properties.FunctionName).toBe(`meso-${name}`);
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(1);
    const mappings = byType('AWS::Lambda::EventSourceMapping').filter(([, m]) =>
      JSON.stringify(m.Properties.FunctionName).includes(fnId),
    );
    expect(mappings).toHaveLength(1);
    expect(mappings[0]![1].Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    const rules = byType('AWS::Events::Rule').filter(([id]) => id.startsWith(Id));
    expect(rules.map(([, r]) => r.Properties.ScheduleExpression)).toEqual(['rate(1 minute)']);
  });

  it('its role reaches its own table and the scheduler-calls queue, and no control-plane table', () => {
    const policies = byType('AWS::IAM::Policy').filter(([id]) => id.startsWith(`${Id}Role`));
    const text = JSON.stringify(policies.map(([, p]) => p.Properties.PolicyDocument));
    expect(text).toContain(`${Id}Table`);
    expect(text).toContain('SchedulerCallsQueue');
    for (const cp of ['AgentsTable', 'FrameworksTable', 'TasksTable', 'MetaTable'])
      expect(text).not.toContain(cp);
  });
});
