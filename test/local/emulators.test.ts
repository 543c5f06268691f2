/**
 * The embedded emulators. The global setup already starts one pair for the whole run; this file
 * starts its own to check what the rest of the suite cannot: `stop()`, persistence, a missing Java.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/aws-config.ts';
import { JAVA_MISSING, startEmulators } from '../../lib/local/emulators.ts';
import { readStackPorts, recordStackPorts } from '../../lib/local/persist-ports.ts';

const credentials = { accessKeyId: 'mesotest', secretAccessKey: 'mesotest' };

/**
 * Against LocalStack (`AWS_ENDPOINT_URL`) a machine need not have Java, which the embedded
 * DynamoDB Local needs: there a check that starts the emulators says in the output that it was
 * not made, and why, instead of failing.
 */
function cannotStartEmulators(what: string): boolean {
  if (inject('emulators')?.embedded !== false) return false;
  if (!spawnSync('java', ['-version']).error) return false;
  console.warn(
    `LocalStack mode without Java: not checked here: ${what} (the embedded DynamoDB Local needs Java)`,
  );
  return true;
}

describe('emulators', () => {
  it('the run’s emulators answer on loopback', async () => {
    const endpoints = inject('emulators');
    if (!endpoints?.embedded) {
      console.warn('LocalStack mode: the run started no embedded emulators; nothing of theirs to check here');
      return;
    }
    expect(endpoints.dynamoEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(endpoints.sqsEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('persists to dataDir across a restart, and stop() ends both processes', async () => {
    if (cannotStartEmulators('persistence, restart on the same ports and stop() of the embedded emulators'))
      return;
    const dataDir = await mkdtemp(join(tmpdir(), 'meso-emulators-'));
    try {
      // As `npm start -- --persist` runs them: SQS behind the identity gateway, ports recorded.
      const first = await startEmulators({ dataDir, identityGateway: true });
      expect(first.sqsEmulatorEndpoint).toBeDefined();
      expect(recordStackPorts(dataDir, {}, first)).toEqual([]);
      const db1 = new DynamoDBClient({ region: first.region, endpoint: first.dynamoEndpoint, credentials });
      const mq1 = new SQSClient({
        region: first.region,
        endpoint: first.sqsEndpoint,
        credentials: LOCAL_CREDENTIALS,
      });
      await db1.send(
        new CreateTableCommand({
          TableName: 'kept',
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }],
        }),
      );
      await mq1.send(new CreateQueueCommand({ QueueName: 'kept' }));
      await first.stop();
      const once = { maxAttempts: 1 };
      await expect(
        new DynamoDBClient({
          region: first.region,
          endpoint: first.dynamoEndpoint,
          credentials,
          ...once,
        }).send(new ListTablesCommand({})),
      ).rejects.toThrow();
      await expect(
        new SQSClient({
          region: first.region,
          endpoint: first.sqsEndpoint,
          credentials: LOCAL_CREDENTIALS,
          ...once,
        }).send(new ListQueuesCommand({})),
      ).rejects.toThrow();
      db1.destroy();
      mq1.destroy();

      // Restarted where it was (a `--persist` stack after a crash), so connected clients reconnect.
      // The gateway's port, not the emulator's behind it, is the one clients know.
      const second = await startEmulators({
        dataDir,
        identityGateway: true,
        preferPorts: readStackPorts(dataDir),
      });
      try {
        expect(second.dynamoEndpoint).toBe(first.dynamoEndpoint);
        expect(second.sqsEndpoint).toBe(first.sqsEndpoint);
        expect(second.sqsEmulatorEndpoint).toBe(first.sqsEmulatorEndpoint);
        const db2 = new DynamoDBClient({
          region: second.region,
          endpoint: second.dynamoEndpoint,
          credentials,
        });
        const mq2 = new SQSClient({
          region: second.region,
          endpoint: second.sqsEndpoint,
          credentials: LOCAL_CREDENTIALS,
        });
        expect((await db2.send(new ListTablesCommand({}))).TableNames).toContain('kept');
        expect((await mq2.send(new ListQueuesCommand({}))).QueueUrls?.some((u) => u.endsWith('/kept'))).toBe(
          true,
        );
        db2.destroy();
        mq2.destroy();
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('fails at once with the install command when java is missing', async () => {
    const path = process.env.PATH;
    const empty = await mkdtemp(join(tmpdir(), 'meso-no-java-'));
    process.env.PATH = empty;
    try {
      await expect(startEmulators()).rejects.toThrow(JAVA_MISSING);
    } finally {
      process.env.PATH = path;
      await rm(empty, { recursive: true, force: true });
    }
  });
});
