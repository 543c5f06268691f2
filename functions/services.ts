/** Lambda entry: the services framework's event queue. The logic lives in lib/frameworks/services. */
import { createServicesHandlers, servicesLambdaDeps } from '../lib/lambda/services.ts';

export const handler = createServicesHandlers(servicesLambdaDeps).events;
