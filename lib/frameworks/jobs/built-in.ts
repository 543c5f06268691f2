/** The jobs framework as its hosts run it (lib/frameworks/host/built-in.ts). */
import type { BuiltInFramework } from '../host/built-in.ts';
import {
  handleJobsMessage,
  JOBS_FRAMEWORK_ID,
  jobsChangedMessage,
  jobsQueueName,
  jobsTick,
} from './framework.ts';
import { DynamoJobsStore, JOBS_TABLE, type JobsStore } from './store.ts';

export const JOBS: BuiltInFramework<JobsStore> = {
  frameworkId: JOBS_FRAMEWORK_ID,
  name: 'jobs',
  table: JOBS_TABLE,
  queueName: jobsQueueName,
  openStore: (doc, table) => new DynamoJobsStore(doc, table),
  handle: handleJobsMessage,
  tick: jobsTick,
  changedMessage: jobsChangedMessage,
};
