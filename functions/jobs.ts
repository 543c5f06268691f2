/**
 * Lambda entry: the jobs framework, its event queue and its scheduled tick in one function.
 * The logic lives in lib/frameworks/jobs; the wiring in lib/lambda/framework-host.ts.
 */
import { JOBS } from '../lib/frameworks/jobs/built-in.ts';
import { builtInLambda } from '../lib/lambda/framework-host.ts';

export const handler = builtInLambda(JOBS);
