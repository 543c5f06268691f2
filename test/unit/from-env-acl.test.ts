/** The functions' ACL default and id cap come from the environment the stack sets. */
import { describe, expect, it } from 'vitest';
import { authorize, CLOSED_ACLS } from '../../lib/core/acl.ts';
import { ENV } from '../../lib/definition/env.ts';
import { QUEUES, type QueueName, TABLES, type TableName } from '../../lib/definition/tables-queues.ts';
import { depsFromEnv } from '../../lib/lambda/from-env.ts';

const base: NodeJS.ProcessEnv = {
  AWS_REGION: 'us-east-1',
  ...Object.fromEntries(Object.keys(TABLES).map((t) => [ENV.tables(t as TableName), `meso-${t}`])),
  ...Object.fromEntries(
    Object.keys(QUEUES).map((q) => [
      ENV.queues(q as QueueName),
      `https://sqs.us-east-1.amazonaws.com/1/meso-cp-${q}`,
    ]),
  ),
};

describe('depsFromEnv', () => {
  it('is closed when the environment grants nothing: a deployed stack', () => {
    const { config } = depsFromEnv(base);
    expect(config.acls).toEqual(CLOSED_ACLS);
    expect(
      authorize(config.acls!, { action: 'register_frameworks', principal: 'p', object: '*' }).allowed,
    ).toBe(false);
    expect(config.maxIdsPerIdentity).toBeUndefined(); // the default cap, 100
  });

  it('allows what MESO_ACL grants, opens with MESO_ACL_PERMISSIVE=true, and reads the id cap', () => {
    const granted = depsFromEnv({
      ...base,
      [ENV.acl]: JSON.stringify({
        register_frameworks: [{ principals: { values: ['AROAX:*'] }, roles: { type: 'ANY' } }],
      }),
      [ENV.maxIdsPerIdentity]: '7',
    }).config;
    expect(
      authorize(granted.acls!, { action: 'register_frameworks', principal: 'AROAX:s', object: 'eng' })
        .allowed,
    ).toBe(true);
    expect(
      authorize(granted.acls!, { action: 'register_frameworks', principal: 'other', object: 'eng' }).allowed,
    ).toBe(false);
    expect(granted.maxIdsPerIdentity).toBe(7);
    expect(depsFromEnv({ ...base, [ENV.aclPermissive]: 'true' }).config.acls?.permissive).toBe(true);
  });
});
