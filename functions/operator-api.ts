/** Lambda entry: the operator HTTP API behind a function URL with IAM auth. The logic lives in lib/control. */
import { lambdaDeps } from '../lib/lambda/from-env.ts';
import { operatorApiHandler } from '../lib/lambda/operator-api.ts';

export const handler = operatorApiHandler(lambdaDeps, () => lambdaDeps().flush());
