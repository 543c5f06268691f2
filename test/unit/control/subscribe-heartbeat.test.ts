/**
 * FrameworkInfo.heartbeatIntervalSeconds from a hostile framework: every value outside whole
 * seconds from MIN_FRAMEWORK_HEARTBEAT_SECONDS to a day — zero, one, negative, fractional, huge,
 * Infinity, NaN (null in JSON), strings — is refused with an ERROR naming the field, counted, and
 * changes nothing: no framework record (or the old one as it was), no SUBSCRIBED, no timer.
 */
import { describe, expect, it } from 'vitest';
import { rejectedCounterKey } from '../../../lib/control/reject.ts';
import { handleSchedulerCall } from '../../../lib/control/scheduler-calls.ts';
import type { Item } from '../../../lib/ports/store.ts';
import { MIN_FRAMEWORK_HEARTBEAT_SECONDS } from '../../../lib/protocol/scheduler.ts';
import { framework, fwQueue, Q, type TestControl, testControl } from './helpers.ts';

const PRINCIPAL = 'fw-principal';
const FIELD = 'framework.heartbeatIntervalSeconds';

/** A SUBSCRIBE of framework `run`, its heartbeatIntervalSeconds written into the JSON as `raw`. */
const subscribeBody = (raw: string) =>
  JSON.stringify({
    v: 1,
    type: 'SUBSCRIBE',
    framework: { frameworkId: 'run', name: 'run', queueUrl: fwQueue('run'), heartbeatIntervalSeconds: 7 },
  }).replace('"heartbeatIntervalSeconds":7', `"heartbeatIntervalSeconds":${raw}`);

const subscribe = (t: TestControl, raw: string, messageId = `m-${raw}`) =>
  handleSchedulerCall(t.deps, {
    messageId,
    body: subscribeBody(raw),
    senderId: PRINCIPAL,
    receiveCount: 1,
    groupId: 'run',
  });

const invalidCount = async (t: TestControl) =>
  Number(
    (await t.store.get<Item>('meta', { key: rejectedCounterKey('scheduler-calls', 'INVALID') }))?.count ?? 0,
  );

/** Each as it appears in the body's JSON. */
const HOSTILE = [
  '0',
  '1',
  String(MIN_FRAMEWORK_HEARTBEAT_SECONDS - 1),
  '-1',
  '-0.5',
  '2.5',
  '86401',
  '1e308',
  '1e309', // Infinity once parsed
  '-1e309',
  String(2 ** 53 + 2),
  'null', // what JSON.stringify makes of NaN
  '"NaN"',
  '"5"',
  '"1e308"',
  'true',
  '[]',
  '{}',
];

describe('SUBSCRIBE with a hostile heartbeatIntervalSeconds', () => {
  it.each(HOSTILE)(
    '%s is refused for a new framework: an ERROR naming the field, counted, nothing written',
    async (raw) => {
      const t = testControl();
      await subscribe(t, raw);
      expect(await t.store.get('frameworks', { frameworkId: 'run' })).toBeUndefined();
      const sent = t.bus.to(fwQueue('run')).map((s) => s.body);
      expect(sent).toEqual([expect.objectContaining({ type: 'ERROR', code: 'INVALID', call: 'SUBSCRIBE' })]);
      expect(String(sent[0]!.message)).toContain(FIELD);
      expect(t.bus.to(Q.timers)).toEqual([]);
      expect(await invalidCount(t)).toBe(1);
      // Nothing but the counter: no id claimed against the sender's cap, no route, no row.
      const rows = [...t.store.tables.values()].flatMap((m) => [...m.keys()]);
      expect(rows).toEqual([expect.stringContaining('rejected#')]);
    },
  );

  it.each(HOSTILE)('%s is refused for a subscribed framework, whose record stays as it was', async (raw) => {
    const t = testControl();
    await subscribe(t, '3', 'first');
    const before = await framework(t, 'run');
    expect(before.heartbeatIntervalSeconds).toBe(3);
    t.bus.clear();
    t.now += 10_000;
    await subscribe(t, raw);
    expect(await framework(t, 'run')).toEqual(before);
    expect(t.bus.events(fwQueue('run')).map((e) => e.type)).toEqual(['ERROR']);
    expect(t.bus.to(Q.timers)).toEqual([]);
    expect(await invalidCount(t)).toBe(1);
  });

  it('a bare NaN is not JSON: refused as malformed and counted; with no framework to read from it, no ERROR can be addressed', async () => {
    const t = testControl();
    await subscribe(t, 'NaN');
    expect(await t.store.get('frameworks', { frameworkId: 'run' })).toBeUndefined();
    expect(t.bus.sent).toEqual([]);
    expect(
      Number(
        (await t.store.get<Item>('meta', { key: rejectedCounterKey('scheduler-calls', 'MALFORMED_JSON') }))
          ?.count,
      ),
    ).toBe(1);
  });

  it.each([String(MIN_FRAMEWORK_HEARTBEAT_SECONDS), '59'])('%s, in range, is granted', async (raw) => {
    const t = testControl();
    await subscribe(t, raw);
    expect((await framework(t, 'run')).heartbeatIntervalSeconds).toBe(Number(raw));
    expect(t.bus.events(fwQueue('run'))).toContainEqual(
      expect.objectContaining({ type: 'SUBSCRIBED', heartbeatIntervalSeconds: Number(raw) }),
    );
  });
});
