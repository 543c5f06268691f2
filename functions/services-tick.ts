/** Lambda entry: the services framework's tick, run by a scheduled rule. The logic lives in lib/frameworks/services. */
import { createServicesHandlers, servicesLambdaDeps } from '../lib/lambda/services.ts';

export const handler = createServicesHandlers(servicesLambdaDeps).tick;
