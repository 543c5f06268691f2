import { afterEach, describe, expect, it } from 'vitest';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import type { Offer, SchedulerEvent } from '../../lib/protocol/scheduler.ts';
import {
  MalformedEventError,
  type MesoSdkError,
  SchedulerErrorEvent,
  SubscribeError,
} from '../../lib/sdk/errors.ts';
import { MesoScheduler } from '../../lib/sdk/scheduler.ts';
import type { MesoSchedulerOptions } from '../../lib/sdk/types.ts';
import { CALLS_URL, FakeTransport, subscribed } from './fake-transport.ts';

const FW = 'fw-1';
const open: MesoScheduler[] = [];

function setup(over: Partial<MesoSchedulerOptions> = {}): { fake: FakeTransport; scheduler: MesoScheduler } {
  const fake = new FakeTransport();
  const scheduler = new MesoScheduler({
    transport: fake,
    schedulerCallsQueueUrl: CALLS_URL,
    prefix: 'meso',
    name: 'test',
    frameworkId: FW,
    subscribeRetry: { initialMs: 20, maxMs: 40 },
    // Each receive's acknowledgements go before the next receive: `drained()` then sees them.
    // The window is tested on its own below.
    acknowledgeWindowMs: 0,
    ...over,
  } as MesoSchedulerOptions);
  open.push(scheduler);
  return { fake, scheduler };
}

/** Answers the first SUBSCRIBE. */
function answerSubscribe(fake: FakeTransport): void {
  fake.onCall = (call) => {
    if (call.type === 'SUBSCRIBE') fake.deliver(subscribed(call.framework.frameworkId));
  };
}

const update = (uuid: string | undefined, state: TaskStatus['state'] = 'TASK_RUNNING'): SchedulerEvent => ({
  v: 1,
  type: 'UPDATE',
  status: {
    taskId: 't1',
    frameworkId: FW,
    agentId: 'a1',
    state,
    source: uuid ? 'SOURCE_AGENT' : 'SOURCE_MASTER',
    timestamp: 1,
    ...(uuid ? { uuid } : {}),
  },
});

const offer = (id: string): Offer => ({
  offerId: id,
  frameworkId: FW,
  agentId: 'a1',
  hostname: 'h1',
  resources: { cpus: 1, mem: 128 },
  attributes: {},
  expiresAt: 0,
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

describe('MesoScheduler.subscribe', () => {
  it('creates its FIFO queue, sends SUBSCRIBE on the framework group and resolves on SUBSCRIBED', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const seen: string[] = [];
    scheduler.on('subscribed', (e) => {
      seen.push(e.frameworkId);
    });
    const event = await scheduler.subscribe();
    expect(event).toMatchObject({ type: 'SUBSCRIBED', frameworkId: FW });
    expect(fake.created).toEqual([
      { name: `meso-fw-${FW}.fifo`, attributes: { FifoQueue: 'true', VisibilityTimeout: '30' } },
    ]);
    expect(scheduler.queueUrl).toBe(`https://sqs.fake/000000000000/meso-fw-${FW}.fifo`);
    const [sent] = fake.sent;
    expect(sent?.queueUrl).toBe(CALLS_URL);
    expect(sent?.message.groupId).toBe(FW);
    expect(sent?.call).toMatchObject({
      type: 'SUBSCRIBE',
      framework: { frameworkId: FW, name: 'test', roles: ['*'], queueUrl: scheduler.queueUrl },
    });
    await fake.drained();
    expect(seen).toEqual([FW]);
    expect(scheduler.subscription?.heartbeatIntervalSeconds).toBe(15);
  });

  it('uses a given queue and creates none; a random framework id by default', async () => {
    const { fake, scheduler } = setup({ queueUrl: 'https://sqs.fake/0/mine.fifo', frameworkId: undefined });
    answerSubscribe(fake);
    await scheduler.subscribe();
    expect(fake.created).toEqual([]);
    expect(scheduler.frameworkId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fake.callsOf('SUBSCRIBE')[0]?.framework.queueUrl).toBe('https://sqs.fake/0/mine.fifo');
  });

  it('sends SUBSCRIBE again, as a new call, until Meso answers', async () => {
    const { fake, scheduler } = setup();
    fake.onCall = (call) => {
      if (call.type === 'SUBSCRIBE' && fake.callsOf('SUBSCRIBE').length === 3) fake.deliver(subscribed(FW));
    };
    await scheduler.subscribe();
    const dedupIds = fake.sent.map((s) => s.message.dedupId);
    expect(dedupIds).toHaveLength(3);
    expect(new Set(dedupIds).size).toBe(3);
  });

  it('rejects on an ERROR event for SUBSCRIBE, and reports it on error too', async () => {
    const { fake, scheduler } = setup();
    const errors: MesoSdkError[] = [];
    scheduler.on('error', (e) => {
      errors.push(e);
    });
    fake.onCall = (call) => {
      if (call.type === 'SUBSCRIBE') {
        fake.deliver({
          v: 1,
          type: 'ERROR',
          message: 'framework id is taken',
          call: 'SUBSCRIBE',
          code: 'FORBIDDEN',
        });
      }
    };
    await expect(scheduler.subscribe()).rejects.toThrow(/SUBSCRIBE was rejected: framework id is taken/);
    await fake.drained();
    expect(errors[0]).toBeInstanceOf(SchedulerErrorEvent);
    expect(errors[0]).toMatchObject({ code: 'FORBIDDEN', call: 'SUBSCRIBE' });
  });

  it('gives up after timeoutMs, on abort and on close', async () => {
    const a = setup();
    await expect(a.scheduler.subscribe({ timeoutMs: 50 })).rejects.toMatchObject({
      code: 'SUBSCRIBE_TIMEOUT',
    });

    const b = setup();
    const controller = new AbortController();
    const pending = b.scheduler.subscribe({ signal: controller.signal });
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });

    const c = setup();
    const closing = c.scheduler.subscribe();
    setTimeout(() => void c.scheduler.close(), 10);
    await expect(closing).rejects.toBeInstanceOf(SubscribeError);
  });

  it('retries a failed send with the same deduplication id, then fails', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    fake.failSends = 2;
    await scheduler.subscribe();
    const ids = [...fake.failedSendAttempts.map((m) => m[0]?.dedupId), fake.sent[0]?.message.dedupId];
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(1);

    fake.failSends = 3;
    await expect(scheduler.revive()).rejects.toThrow('fake send failure');
  });
});

describe('MesoScheduler with its own heartbeat interval', () => {
  it('asks for it in SUBSCRIBE and then sends HEARTBEAT calls unprompted, at the interval SUBSCRIBED grants', async () => {
    const { fake, scheduler } = setup({ heartbeatIntervalSeconds: 2 });
    let beat!: () => void;
    const heartbeat = new Promise<void>((resolve) => {
      beat = resolve;
    });
    fake.onCall = (call) => {
      if (call.type === 'SUBSCRIBE')
        fake.deliver({ v: 1, type: 'SUBSCRIBED', frameworkId: FW, heartbeatIntervalSeconds: 2 });
      if (call.type === 'HEARTBEAT') beat();
    };
    await scheduler.subscribe();
    expect(fake.callsOf('SUBSCRIBE')[0]?.framework.heartbeatIntervalSeconds).toBe(2);
    // No HEARTBEAT event is delivered: the call comes from the SDK's own timer.
    await heartbeat;
    expect(fake.callsOf('HEARTBEAT')[0]).toMatchObject({ frameworkId: FW });
    await scheduler.close();
  });

  it('a framework that does not ask sends no heartbeatIntervalSeconds', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    await scheduler.subscribe();
    expect(fake.callsOf('SUBSCRIBE')[0]?.framework).not.toHaveProperty('heartbeatIntervalSeconds');
  });
});

describe('MesoScheduler calls', () => {
  it('sends each call on the framework group with a fresh deduplication id', async () => {
    const { fake, scheduler } = setup({ queueUrl: 'https://sqs.fake/0/q.fifo' });
    await scheduler.accept(
      ['o1'],
      [{ taskId: 't1', agentId: 'a1', resources: { cpus: 1 }, command: { value: 'true' } }],
      { refuseSeconds: 30 },
    );
    await scheduler.decline(['o2'], 5);
    await scheduler.kill('t1', 'a1');
    await scheduler.reconcile();
    await scheduler.revive();
    await scheduler.teardown();
    expect(fake.calls().map((c) => c.type)).toEqual([
      'ACCEPT',
      'DECLINE',
      'KILL',
      'RECONCILE',
      'REVIVE',
      'TEARDOWN',
    ]);
    expect(fake.sent.every((s) => s.message.groupId === FW && s.queueUrl === CALLS_URL)).toBe(true);
    expect(new Set(fake.sent.map((s) => s.message.dedupId)).size).toBe(6);
    expect(fake.calls().every((c) => 'frameworkId' in c && c.frameworkId === FW)).toBe(true);
  });

  it('refuses an invalid call without sending it', async () => {
    const { fake, scheduler } = setup({ queueUrl: 'https://sqs.fake/0/q.fifo' });
    await expect(scheduler.kill('no spaces allowed')).rejects.toMatchObject({ code: 'INVALID_CALL' });
    expect(fake.sent).toEqual([]);
  });

  it('refuses calls after close', async () => {
    const { scheduler } = setup({ queueUrl: 'https://sqs.fake/0/q.fifo' });
    await scheduler.close();
    await expect(scheduler.revive()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('MesoScheduler events', () => {
  it('hands events to typed handlers', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const got: string[] = [];
    scheduler
      .on('offers', (offers) => {
        got.push(`offers ${offers.map((o) => o.offerId).join(',')}`);
      })
      .on('rescind', (id) => {
        got.push(`rescind ${id}`);
      })
      .on('heartbeat', () => {
        got.push('heartbeat');
      })
      .on('failure', (e) => {
        got.push(`failure ${e.agentId}`);
      })
      .on('update', (s) => {
        got.push(`update ${s.state}`);
      });
    await scheduler.subscribe();
    fake.deliver({ v: 1, type: 'OFFERS', offers: [offer('o1'), offer('o2')] });
    fake.deliver({ v: 1, type: 'RESCIND', offerId: 'o1' });
    fake.deliver({ v: 1, type: 'HEARTBEAT' });
    fake.deliver({ v: 1, type: 'FAILURE', agentId: 'a9' });
    fake.deliver(update(undefined));
    await fake.drained();
    expect(got).toEqual(['offers o1,o2', 'rescind o1', 'heartbeat', 'failure a9', 'update TASK_RUNNING']);
  });

  it('acknowledges an update after its handler ran, and only updates with a uuid', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    scheduler.on('update', async (s) => {
      await new Promise((r) => setTimeout(r, 5));
      fake.log.push(`handled ${s.uuid ?? 'no-uuid'}`);
    });
    await scheduler.subscribe();
    fake.deliver(update('u1'));
    fake.deliver(update(undefined));
    await fake.drained();
    expect(fake.log.filter((l) => l.startsWith('handled') || l === 'send ACKNOWLEDGE')).toEqual([
      'handled u1',
      'handled no-uuid',
      'send ACKNOWLEDGE',
    ]);
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([
      { v: 1, type: 'ACKNOWLEDGE', frameworkId: FW, agentId: 'a1', taskId: 't1', uuid: 'u1' },
    ]);
  });

  it('puts the acknowledgements of one receive into one ACKNOWLEDGE call', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    await scheduler.subscribe();
    await fake.drained();
    let sends = 0;
    const send = fake.send.bind(fake);
    fake.send = async (url, messages) => {
      sends += 1;
      return send(url, messages);
    };
    fake.deliver(update('u1'));
    fake.deliver(update('u2', 'TASK_FINISHED'));
    await fake.drained();
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([
      {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: FW,
        acks: [
          { agentId: 'a1', taskId: 't1', uuid: 'u1' },
          { agentId: 'a1', taskId: 't1', uuid: 'u2' },
        ],
      },
    ]);
    // In the framework's acknowledgement group, apart from its other calls.
    expect(fake.sent.find((m) => m.call.type === 'ACKNOWLEDGE')?.message.groupId).toBe(`${FW}:ack`);
    expect(sends).toBe(1);
  });

  it('does not hand a redelivered update over twice, and acknowledges it again under a new deduplication id', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const states: string[] = [];
    scheduler.on('update', (s) => {
      states.push(`${s.uuid}`);
    });
    await scheduler.subscribe();
    fake.deliver(update('u1'));
    await fake.drained();
    fake.deliver(update('u1')); // the agent's retry: a new message, the same uuid
    fake.deliver(update('u2'));
    await fake.drained();
    expect(states).toEqual(['u1', 'u2']);
    expect(fake.acknowledged().map((a) => a.uuid)).toEqual(['u1', 'u1', 'u2']);
    const acks = fake.sent.filter((s) => s.call.type === 'ACKNOWLEDGE');
    // The agent resends only when the first acknowledgement did not reach it: the same
    // deduplication id would have SQS drop the second (and each later one) for five minutes.
    expect(acks[0]?.message.dedupId).not.toBe(acks[1]?.message.dedupId);
  });

  it('does not hand a redelivered SQS message over twice', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    let offers = 0;
    scheduler.on('offers', () => {
      offers += 1;
    });
    await scheduler.subscribe();
    fake.deliver({ v: 1, type: 'OFFERS', offers: [offer('o1')] }, 'same-message');
    await fake.drained();
    fake.deliver({ v: 1, type: 'OFFERS', offers: [offer('o1')] }, 'same-message');
    await fake.drained();
    expect(offers).toBe(1);
  });

  it('forgets beyond dedupCapacity', async () => {
    const { fake, scheduler } = setup({ dedupCapacity: 2 });
    answerSubscribe(fake);
    const seen: string[] = [];
    scheduler.on('update', (s) => {
      seen.push(s.uuid ?? '');
    });
    await scheduler.subscribe();
    for (const u of ['u1', 'u2', 'u3', 'u1']) fake.deliver(update(u));
    await fake.drained();
    expect(seen).toEqual(['u1', 'u2', 'u3', 'u1']);
  });

  it('without autoAcknowledge, acknowledges only when told', async () => {
    const { fake, scheduler } = setup({ autoAcknowledge: false });
    answerSubscribe(fake);
    const received: TaskStatus[] = [];
    scheduler.on('update', (s) => {
      received.push(s);
    });
    await scheduler.subscribe();
    fake.deliver(update('u1'));
    await fake.drained();
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([]);
    await scheduler.acknowledge(received[0]!);
    await scheduler.acknowledge({ ...received[0]!, uuid: undefined });
    expect(fake.callsOf('ACKNOWLEDGE').map((c) => c.uuid)).toEqual(['u1']);
    // A retry of an update the framework acknowledged is acknowledged again, not delivered.
    fake.deliver(update('u1'));
    await fake.drained();
    expect(received).toHaveLength(1);
    expect(fake.callsOf('ACKNOWLEDGE').map((c) => c.uuid)).toEqual(['u1', 'u1']);
  });

  it('reports malformed events on error and deletes them', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const errors: MesoSdkError[] = [];
    scheduler.on('error', (e) => {
      errors.push(e);
    });
    await scheduler.subscribe();
    const ids = [
      fake.deliver('not json'),
      fake.deliver(JSON.stringify({ v: 2, type: 'HEARTBEAT' })),
      fake.deliver(JSON.stringify({ v: 1, type: 'NOPE' })),
      fake.deliver(JSON.stringify({ v: 1, type: 'RESCIND' })),
    ];
    await fake.drained();
    expect(errors.map((e) => (e instanceof MalformedEventError ? e.reason : e.code))).toEqual([
      'MALFORMED_JSON',
      'UNSUPPORTED_VERSION',
      'UNKNOWN_TYPE',
      'INVALID',
    ]);
    expect(errors[3]?.message).toMatch(/offerId/);
    for (const id of ids) expect(fake.consumed).toContain(id);
  });

  it('drops events naming another framework: no handler sees them and nothing is acknowledged', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const errors: MesoSdkError[] = [];
    const seen: string[] = [];
    scheduler.on('error', (e) => {
      errors.push(e);
    });
    scheduler.on('offers', (offers) => {
      seen.push(...offers.map((o) => o.offerId));
    });
    scheduler.on('update', (s) => {
      seen.push(s.taskId);
    });
    await scheduler.subscribe();
    const foreignUpdate = update('u9');
    if (foreignUpdate.type === 'UPDATE') foreignUpdate.status.frameworkId = 'victim';
    const ids = [
      fake.deliver({
        v: 1,
        type: 'OFFERS',
        offers: [offer('o-mine'), { ...offer('o-theirs'), frameworkId: 'victim' }],
      }),
      fake.deliver(foreignUpdate),
      fake.deliver(subscribed('victim')),
    ];
    await fake.drained();
    expect(seen).toEqual([]);
    expect(errors.map((e) => (e instanceof MalformedEventError ? e.reason : e.code))).toEqual([
      'FOREIGN_FRAMEWORK',
      'FOREIGN_FRAMEWORK',
      'FOREIGN_FRAMEWORK',
    ]);
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([]);
    expect(scheduler.subscription?.frameworkId).toBe(FW);
    for (const id of ids) expect(fake.consumed).toContain(id);
  });

  it('a failing update handler is reported, and the update is neither acknowledged nor remembered', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const errors: MesoSdkError[] = [];
    let calls = 0;
    scheduler.on('error', (e) => {
      errors.push(e);
    });
    scheduler.on('update', () => {
      calls += 1;
      if (calls === 1) throw new Error('boom');
    });
    await scheduler.subscribe();
    fake.deliver(update('u1'));
    await fake.drained();
    expect(errors.map((e) => e.code)).toEqual(['HANDLER_FAILED']);
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([]);
    fake.deliver(update('u1')); // the agent re-sends it: delivered again, now acknowledged
    await fake.drained();
    expect(calls).toBe(2);
    expect(fake.callsOf('ACKNOWLEDGE')).toHaveLength(1);
  });

  it('ERROR events reach the error handlers as SchedulerErrorEvent', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const errors: MesoSdkError[] = [];
    scheduler.on('error', (e) => {
      errors.push(e);
    });
    await scheduler.subscribe();
    fake.deliver({
      v: 1,
      type: 'ERROR',
      message: 'unknown offer o9',
      call: 'ACCEPT',
      code: 'INVALID_OFFERS',
    });
    await fake.drained();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SchedulerErrorEvent);
    expect(errors[0]).toMatchObject({ message: 'unknown offer o9', code: 'INVALID_OFFERS', call: 'ACCEPT' });
  });

  it('once handlers run once; off removes a handler', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    let once = 0;
    let other = 0;
    const h = () => {
      other += 1;
    };
    scheduler.once('heartbeat', () => {
      once += 1;
    });
    scheduler.on('heartbeat', h);
    await scheduler.subscribe();
    fake.deliver({ v: 1, type: 'HEARTBEAT' });
    await fake.drained();
    scheduler.off('heartbeat', h);
    fake.deliver({ v: 1, type: 'HEARTBEAT' });
    await fake.drained();
    expect([once, other]).toEqual([1, 1]);
  });

  it('events() yields every event in order and ends on close', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    const events = scheduler.events();
    await scheduler.subscribe();
    fake.deliver({ v: 1, type: 'OFFERS', offers: [offer('o1')] });
    fake.deliver(update('u1'));
    fake.deliver(update('u1'));
    await fake.drained();
    await scheduler.close();
    const types: string[] = [];
    for await (const e of events) types.push(e.type);
    expect(types).toEqual(['SUBSCRIBED', 'OFFERS', 'UPDATE']);
  });
});

describe('MesoScheduler.close', () => {
  it('stops polling after the batch in hand, then sends TEARDOWN, then deletes the queue', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    await scheduler.subscribe();
    fake.deliver(update('u9', 'TASK_FINISHED'));
    await fake.drained();
    await scheduler.close({ teardown: true, deleteQueue: true });
    const tail = fake.log.slice(fake.log.indexOf('send ACKNOWLEDGE'));
    expect(tail).toEqual(['send ACKNOWLEDGE', 'poll stopped', 'send TEARDOWN', 'delete queue']);
    expect(fake.deletedQueues).toEqual([scheduler.queueUrl]);
    expect(scheduler.closed).toBe(true);
    await scheduler.close(); // idempotent
    expect(fake.callsOf('TEARDOWN')).toHaveLength(1);
  });

  it('can be called from inside a handler without waiting for itself', async () => {
    const { fake, scheduler } = setup();
    answerSubscribe(fake);
    let closed: Promise<void> | undefined;
    scheduler.on('update', async () => {
      closed = scheduler.close({ deleteQueue: true });
      await closed;
    });
    await scheduler.subscribe();
    fake.deliver(update('u1', 'TASK_FINISHED'));
    await fake.drained();
    await closed;
    expect(fake.deletedQueues).toHaveLength(1);
  });
});

describe('MesoScheduler acknowledgement window', () => {
  const updateOf = (taskId: string, uuid: string): SchedulerEvent => {
    const u = update(uuid);
    if (u.type === 'UPDATE') u.status.taskId = taskId;
    return u;
  };

  it('gathers the acknowledgements of several receives into one call, sent when the window closes (or on close)', async () => {
    // A window far longer than the test: what is sent, close() sent.
    const { fake, scheduler } = setup({ acknowledgeWindowMs: 600_000 });
    answerSubscribe(fake);
    await scheduler.subscribe();
    fake.deliver(updateOf('t1', 'u1'));
    await fake.drained();
    fake.deliver(updateOf('t2', 'u2'));
    await fake.drained();
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([]);
    await scheduler.close();
    expect(fake.callsOf('ACKNOWLEDGE')).toEqual([
      {
        v: 1,
        type: 'ACKNOWLEDGE',
        frameworkId: FW,
        acks: [
          { agentId: 'a1', taskId: 't1', uuid: 'u1' },
          { agentId: 'a1', taskId: 't2', uuid: 'u2' },
        ],
      },
    ]);
  });

  it('does not wait for the window once a call is full: 100 acknowledgements a call, the rest later', async () => {
    const { fake, scheduler } = setup({ acknowledgeWindowMs: 600_000 });
    answerSubscribe(fake);
    await scheduler.subscribe();
    for (let i = 0; i < 101; i++) fake.deliver(updateOf(`t${i}`, `u${i}`));
    await fake.drained();
    const first = fake.callsOf('ACKNOWLEDGE');
    expect(first).toHaveLength(1);
    expect(first[0]?.acks?.map((a) => a.uuid)).toEqual(Array.from({ length: 100 }, (_, i) => `u${i}`));
    await scheduler.close();
    // The one left goes alone, in the single form and its task's group.
    const last = fake.sent.filter((m) => m.call.type === 'ACKNOWLEDGE').at(-1);
    expect(last?.call).toEqual({
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: FW,
      agentId: 'a1',
      taskId: 't100',
      uuid: 'u100',
    });
    expect(last?.message.groupId).toBe(`${FW}:ack:t100`);
  });

  it('acknowledge() calls made together travel in one call, and each resolves once it is sent', async () => {
    const { fake, scheduler } = setup({ autoAcknowledge: false, acknowledgeWindowMs: 20 });
    answerSubscribe(fake);
    const received: TaskStatus[] = [];
    scheduler.on('update', (s) => {
      received.push(s);
    });
    await scheduler.subscribe();
    fake.deliver(updateOf('t1', 'u1'));
    fake.deliver(updateOf('t2', 'u2'));
    await fake.drained();
    await Promise.all(received.map((s) => scheduler.acknowledge(s)));
    expect(fake.callsOf('ACKNOWLEDGE')).toHaveLength(1);
    expect(fake.acknowledged().map((a) => a.uuid)).toEqual(['u1', 'u2']);
  });

  it('a failed send rejects acknowledge() and is reported for automatic acknowledgements', async () => {
    const { fake, scheduler } = setup({ acknowledgeWindowMs: 1 });
    answerSubscribe(fake);
    const errors: MesoSdkError[] = [];
    const reported = new Promise<void>((resolve) =>
      scheduler.on('error', (e) => {
        errors.push(e);
        resolve();
      }),
    );
    await scheduler.subscribe();
    await fake.drained();
    fake.failSends = 10;
    fake.deliver(updateOf('t1', 'u1'));
    await reported;
    expect(errors.map((e) => e.code)).toEqual(['ACK_FAILED']);
    await expect(
      scheduler.acknowledge({
        taskId: 't1',
        frameworkId: FW,
        agentId: 'a1',
        state: 'TASK_RUNNING',
        source: 'SOURCE_AGENT',
        timestamp: 1,
        uuid: 'u1',
      }),
    ).rejects.toThrow();
  });
});
