/** Lambda entry: the registry handler. The logic lives in lib/control; see createHandlers. */
import { lambdaDeps } from '../lib/lambda/from-env.ts';
import { createHandlers } from '../lib/lambda/handlers.ts';

export const handler = createHandlers(lambdaDeps, () => lambdaDeps().flush()).registry;
