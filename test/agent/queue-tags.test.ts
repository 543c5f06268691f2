/**
 * A fleet instance's agent creates its command queue tagged with its own instance ARN — the tag
 * the fleet's role requires before it lets the instance use the queue (lib/infra/cdk/fleet-identity.ts,
 * evaluated in test/infra/queue-ownership.test.ts). Against the SQS emulator, through the agent's
 * own client, as `meso-agent run` sets it from MESO_AGENT_INSTANCE_ARN.
 */
import { ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_QUEUE_TAG } from '../../lib/definition/agent-runtime.ts';
import { type Harness, startHarness } from '../integration/harness.ts';

describe("the agent's command queue", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 0 });
  });
  afterAll(async () => h?.stop());

  it('is created with the tags it is given (a fleet instance: its own ARN), and without any otherwise', async () => {
    const arn = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0';
    const tagged = await h.startAgent({ queueTags: { [INSTANCE_QUEUE_TAG]: arn } });
    const plain = await h.startAgent();
    const tags = async (queueUrl: string) =>
      (await h.sqs.send(new ListQueueTagsCommand({ QueueUrl: queueUrl }))).Tags;
    expect(await tags(tagged.queueUrl)).toEqual({ [INSTANCE_QUEUE_TAG]: arn });
    expect((await tags(plain.queueUrl)) ?? {}).toEqual({});
  });
});
