/** The jobs framework in the local stack (lib/local/framework-host.ts): a tick every 15 s (cron has minutes). */
import { JOBS } from '../frameworks/jobs/built-in.ts';
import type { JobsStore } from '../frameworks/jobs/store.ts';
import { type LocalFramework, type LocalFrameworkOptions, startLocalFramework } from './framework-host.ts';

export type LocalJobsOptions = LocalFrameworkOptions;
export type LocalJobs = LocalFramework<JobsStore>;

export const startLocalJobs = (opts: LocalJobsOptions): Promise<LocalJobs> =>
  startLocalFramework(JOBS, { defaultTickMs: 15_000, ...opts });
