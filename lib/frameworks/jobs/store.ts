/**
 * Where the jobs framework keeps its state: one DynamoDB table, `<prefix>-jobs` (partition `pk`,
 * sort `sk`): jobs are `pk=job, sk=<id>`, runs `pk=run#<jobId>, sk=<runId>` (sortable by due
 * time: the history, newest first), the framework's own state `pk=meta, sk=framework`.
 */
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { FrameworkMeta } from '../host/meta.ts';
import { FrameworkTable, frameworkTable, isConditionFailed } from '../host/table.ts';
import type { JobDefinition, JobRecord } from './job.ts';
import type { Run } from './run.ts';

export const JOBS_TABLE = frameworkTable('jobs');

/** Runs kept per job; older ones are deleted as new ones start. */
export const HISTORY_LIMIT = 50;

export interface JobsStore {
  listJobs(): Promise<JobRecord[]>;
  getJob(id: string): Promise<JobRecord | undefined>;
  /** Creates or replaces a job's definition; a new job's schedule starts at `scheduledUntil`. */
  putJob(def: JobDefinition, scheduledUntil: number): Promise<void>;
  deleteJob(id: string): Promise<void>;
  /** Moves a job's schedule mark forward, only from `from` (two ticks at once make one run). */
  advanceSchedule(id: string, from: number, to: number): Promise<boolean>;
  /** A job's runs, newest first. */
  listRuns(jobId: string, limit?: number): Promise<Run[]>;
  getRun(jobId: string, runId: string): Promise<Run | undefined>;
  putRun(run: Run): Promise<void>;
  deleteRun(jobId: string, runId: string): Promise<void>;
  getMeta(): Promise<FrameworkMeta>;
  updateMeta(change: Partial<FrameworkMeta>): Promise<void>;
}

export class DynamoJobsStore extends FrameworkTable implements JobsStore {
  async listJobs(): Promise<JobRecord[]> {
    return (await this.query('job')).map(toJob);
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const item = await this.item('job', id);
    return item ? toJob(item) : undefined;
  }

  async putJob(def: JobDefinition, scheduledUntil: number): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: 'job', sk: def.id },
        UpdateExpression: 'SET #def = :def, #until = if_not_exists(#until, :until)',
        ExpressionAttributeNames: { '#def': 'def', '#until': 'scheduledUntil' },
        ExpressionAttributeValues: { ':def': def, ':until': scheduledUntil },
      }),
    );
  }

  async deleteJob(id: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: 'job', sk: id } }));
  }

  async advanceSchedule(id: string, from: number, to: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: 'job', sk: id },
          UpdateExpression: 'SET #until = :to',
          ConditionExpression: '#until = :from',
          ExpressionAttributeNames: { '#until': 'scheduledUntil' },
          ExpressionAttributeValues: { ':from': from, ':to': to },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
  }

  async listRuns(jobId: string, limit = HISTORY_LIMIT): Promise<Run[]> {
    return (await this.query(`run#${jobId}`, { newestFirst: true, limit })).map((i) => i.run as Run);
  }

  async getRun(jobId: string, runId: string): Promise<Run | undefined> {
    return (await this.item(`run#${jobId}`, runId))?.run as Run | undefined;
  }

  async putRun(run: Run): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { pk: `run#${run.jobId}`, sk: run.runId, run } }),
    );
  }

  async deleteRun(jobId: string, runId: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: `run#${jobId}`, sk: runId } }));
  }
}

function toJob(item: Record<string, unknown>): JobRecord {
  return { def: item.def as JobDefinition, scheduledUntil: Number(item.scheduledUntil ?? 0) };
}
