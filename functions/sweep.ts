/** Lambda entry: the minute-level sweep, run by a scheduled rule. The logic lives in lib/control. */
import { lambdaDeps } from '../lib/lambda/from-env.ts';
import { createHandlers } from '../lib/lambda/handlers.ts';

export const handler = createHandlers(lambdaDeps, () => lambdaDeps().flush()).sweep;
