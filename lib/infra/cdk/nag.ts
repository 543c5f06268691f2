/**
 * cdk-nag on the CDK app: the AWS Solutions and Serverless rule packs run at synthesis, so
 * `cdk synth` fails on any error not acknowledged with a written reason. Acknowledgements sit next
 * to the resource they are about (`acknowledge` below), each naming one rule or one finding.
 */
import { type App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** The packs the app runs. */
export function nagPacks(app: App): (AwsSolutionsChecks | ServerlessChecks)[] {
  return [new AwsSolutionsChecks(app), new ServerlessChecks(app)];
}

/** Runs the packs when `app` synthesizes: an unacknowledged error fails the synthesis. */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(...nagPacks(app));
}

/** Acknowledges rule `id` (`AwsSolutions-IAM4`, or one finding `AwsSolutions-IAM5[…]`) on `scope` and below. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * The finding id AwsSolutions-IAM5 reports for a wildcard resource, as cdk-nag spells it:
 * `{Ref: X}` becomes `<X>`, `{Fn::GetAtt: [X, Y]}` becomes `<X.Y>`.
 */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(resource))}]`;
}

function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const o = value as Record<string, unknown>;
  if (o && 'Ref' in o) return `<${String(o.Ref)}>`;
  if (o && 'Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
  if (o && 'Fn::Join' in o) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(flatten).join(sep);
  }
  throw new Error(`wildcardResourceFinding: cannot spell ${JSON.stringify(value)}`);
}
