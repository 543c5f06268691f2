import { startEmulators } from '/work/main/lib/local/emulators.ts';
import { provision } from '/work/main/lib/local/provision.ts';
import { createSqsClient } from '/work/main/lib/adapters/sqs.ts';
import { ReceiveMessageCommand, SendMessageCommand, GetQueueAttributesCommand, ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
process.env.AWS_ACCESS_KEY_ID='mesolocal'; process.env.AWS_SECRET_ACCESS_KEY='mesolocal';
const emu = await startEmulators();
try {
  const aws = { region: emu.region, dynamoEndpoint: emu.dynamoEndpoint, sqsEndpoint: emu.sqsEndpoint };
  let t = Date.now();
  const p = await provision({ aws, prefix: 'probe' });
  console.log('provision ms', Date.now()-t, JSON.stringify(p, null, 1));
  t = Date.now();
  const p2 = await provision({ aws, prefix: 'probe' });
  console.log('again ms', Date.now()-t, JSON.stringify(p2) === JSON.stringify(p));
  const sqs = createSqsClient(aws);
  const q = p.queues.schedulerCalls;
  console.log(await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q, AttributeNames: ['All'] })).then(r => r.Attributes));
  await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'd1' }));
  for (let i = 0; i < 7; i++) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }));
    const m = r.Messages?.[0];
    console.log('receive', i, m?.Attributes?.ApproximateReceiveCount, m?.Body);
    if (m) await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: q, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
  }
  const d = await sqs.send(new ReceiveMessageCommand({ QueueUrl: p.dlqs.schedulerCalls, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }));
  console.log('dlq', d.Messages?.map(m => [m.Body, m.Attributes]));
  // visibility timeout honoured? standard queue, receive with VisibilityTimeout 1
  const tq = p.queues.timers;
  await sqs.send(new SendMessageCommand({ QueueUrl: tq, MessageBody: 'v' }));
  const a = await sqs.send(new ReceiveMessageCommand({ QueueUrl: tq, VisibilityTimeout: 1, WaitTimeSeconds: 1 }));
  t = Date.now();
  const b = await sqs.send(new ReceiveMessageCommand({ QueueUrl: tq, WaitTimeSeconds: 5, MessageSystemAttributeNames: ['All'] }));
  console.log('visibility reappeared after', Date.now()-t, b.Messages?.[0]?.Attributes?.ApproximateReceiveCount);
} finally { await emu.stop(); }
