/**
 * Lambda entry: the services framework, its event queue and its scheduled tick in one function.
 * The logic lives in lib/frameworks/services; the wiring in lib/lambda/framework-host.ts.
 */
import { SERVICES } from '../lib/frameworks/services/built-in.ts';
import { builtInLambda } from '../lib/lambda/framework-host.ts';

export const handler = builtInLambda(SERVICES);
