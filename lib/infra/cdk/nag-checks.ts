/**
 * cdk-nag on the CDK app: the AWS Solutions and Serverless rule packs run at synthesis, so
 * `cdk synth` fails on any finding not acknowledged with a written reason (`acknowledge` in
 * `nag.ts`).
 */
import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';

/** The packs the app runs. */
export function nagPacks(app: App): (AwsSolutionsChecks | ServerlessChecks)[] {
  return [new AwsSolutionsChecks(app), new ServerlessChecks(app)];
}

/** Runs the packs when `app` synthesizes: an unacknowledged finding fails the synthesis. */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(...nagPacks(app));
}
