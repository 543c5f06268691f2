/**
 * Whatever lands on a built-in framework's queue is an attacker's until parsed: bodies that are
 * not a scheduler event nor the CLI's notice are dropped and counted, touch no state, send
 * nothing and are never retried (the handler returns normally).
 */
import { describe, expect, it } from 'vitest';
import { handleJobsMessage, type JobsDeps } from '../../../lib/frameworks/jobs/framework.ts';
import { handleServicesMessage, type ServicesDeps } from '../../../lib/frameworks/services/framework.ts';

const HOSTILE = [
  '',
  'not json',
  '[]',
  'null',
  '{"v":1}',
  '{"v":2,"type":"OFFERS","offers":[]}',
  '{"v":1,"type":"APPS_CHANGED","appId":"web","extra":true}',
  '{"v":1,"type":"JOBS_CHANGED","jobId":{"$ne":1}}',
  '{"v":1,"type":"UPDATE","status":{"taskId":"../../etc","state":"TASK_RUNNING"}}',
  '{"v":1,"type":"OFFERS","offers":[{"offerId":"o","__proto__":{"x":1}}]}',
  `{"v":1,"type":"HEARTBEAT","a":${'['.repeat(5000)}${']'.repeat(5000)}}`,
];

function deps<T>() {
  const counted: string[] = [];
  const touched: string[] = [];
  const store = new Proxy(
    {},
    {
      get: (_t, name) => () => {
        touched.push(String(name));
        throw new Error(`store.${String(name)} called`);
      },
    },
  );
  const d = {
    store,
    bus: {
      send: async () => {
        touched.push('bus.send');
      },
    },
    clock: { now: () => 0 },
    ids: { next: () => 'id' },
    log: { info: () => {}, warn: () => {}, error: () => {} },
    metrics: { count: (name: string) => counted.push(name) },
    config: {
      frameworkId: 'f',
      name: 'f',
      schedulerCallsQueueUrl: 'http://q/1/calls.fifo',
      queueUrl: 'http://q/1/fw.fifo',
    },
  } as unknown as T;
  return { d, counted, touched };
}

describe('built-in frameworks under hostile input', () => {
  it.each(HOSTILE.map((b) => [b.slice(0, 60), b]))('services drops %s', async (_label, body) => {
    const { d, counted, touched } = deps<ServicesDeps>();
    await handleServicesMessage(d, 'm1', body);
    expect(touched).toEqual([]);
    expect(counted).toEqual(['ServicesBadMessage']);
  });

  it.each(HOSTILE.map((b) => [b.slice(0, 60), b]))('jobs drops %s', async (_label, body) => {
    const { d, counted, touched } = deps<JobsDeps>();
    await handleJobsMessage(d, 'm1', body);
    expect(touched).toEqual([]);
    expect(counted).toEqual(['JobsBadMessage']);
  });
});
