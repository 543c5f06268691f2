/**
 * Acknowledging cdk-nag findings, next to the resource they are about (`acknowledge` below), each
 * naming one rule or one finding with its reason. Only aws-cdk-lib here: the constructs use this,
 * and need no cdk-nag; the app runs the packs (`nag-checks.ts`, `bin/cdk.ts`).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

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
