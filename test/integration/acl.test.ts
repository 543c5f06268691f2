/**
 * Mesos-style ACLs enforced in the calls, through the real handlers over the emulators: a call the
 * ACLs refuse is answered FORBIDDEN naming the rule that refused it, is counted, is not retried,
 * and changes nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../lib/cli/io.ts';
import { runProgram } from '../../lib/cli/program.ts';
import { loadAcls, saveAcls } from '../../lib/control/acl-store.ts';
import { rejectedCounterKey } from '../../lib/control/reject.ts';
import { aclsFromJson } from '../../lib/core/acl.ts';
import type { Item } from '../../lib/ports/store.ts';
import { SchedulerErrorEvent } from '../../lib/sdk/errors.ts';
import { registerCall, sendRawCall } from '../setup/raw-calls.ts';
import { eventually, type Harness, type Recorder, startHarness } from './harness.ts';

describe('ACLs in the calls', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 1 });
  });
  afterAll(async () => h?.stop());

  /** Replaces the stored ACLs (the dev stack's default is open). */
  async function setAcls(json: unknown) {
    const { version } = await loadAcls(h.controlPlane.deps.store, aclsFromJson({}));
    await saveAcls(h.controlPlane.deps.store, aclsFromJson(json), version, Date.now());
  }
  beforeEach(async () => setAcls({}));

  const forbiddenCount = async () =>
    Number(
      (
        await h.controlPlane.deps.store.get<Item>('meta', {
          key: rejectedCounterKey('scheduler-calls', 'FORBIDDEN'),
        })
      )?.count ?? 0,
    );

  async function snapshot() {
    const store = h.controlPlane.deps.store;
    const strip = (items: Item[]) =>
      items
        .map(({ lastSeenAt: _l, ...rest }) => rest)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    return {
      agents: strip(await store.scan('agents')),
      frameworks: strip(await store.scan('frameworks')),
      tasks: strip(await store.scan('tasks')),
    };
  }

  const forbiddenError = (r: Recorder, rule: RegExp) =>
    r.until(() =>
      r.errors.some(
        (e) => e instanceof SchedulerErrorEvent && e.code === 'FORBIDDEN' && rule.test(e.message),
      ),
    );

  it('SUBSCRIBE in a role the principal may not register in: FORBIDDEN naming the rule, no framework stored', async () => {
    await setAcls({
      register_frameworks: [{ principals: { type: 'ANY' }, roles: { values: ['payments'] }, deny: true }],
    });
    const n = await forbiddenCount();
    const s = h.scheduler({ name: 'claims-payments', roles: ['payments'] });
    await expect(s.subscribe({ timeoutMs: 20_000 })).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringMatching(/register a framework in role "payments".*register_frameworks\[0\]/),
    });
    expect(await forbiddenCount()).toBe(n + 1);
    expect(await h.controlPlane.deps.store.get('frameworks', { frameworkId: s.frameworkId })).toBeUndefined();
    await s.close();
  });

  it('ACCEPT launching a task as a user the principal may not run as: FORBIDDEN, nothing launched or spent', async () => {
    const { s, r } = await h.framework({ name: 'wants-root' });
    const offer = await r.takeOffer();
    await setAcls({ run_tasks: [{ principals: { type: 'ANY' }, users: { values: ['root'] }, deny: true }] });
    const before = await snapshot();
    const n = await forbiddenCount();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'as-root',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 16 },
          command: { value: 'id', user: 'root' },
        },
      ],
    );
    await forbiddenError(r, /run tasks as user "root".*run_tasks\[0\]/);
    expect(await forbiddenCount()).toBe(n + 1);
    expect(await snapshot()).toEqual(before);
    expect(h.agents[0]!.runningTasks().some((t) => t.taskId === 'as-root')).toBe(false);
    await s.teardown();
  });

  it('ACCEPT reserving for a role the principal may not reserve in: FORBIDDEN, nothing reserved', async () => {
    const { s, r } = await h.framework({ name: 'reserver', roles: ['eng'] });
    const offer = await r.takeOffer();
    await setAcls({
      reserve_resources: [{ principals: { type: 'ANY' }, roles: { values: ['eng'] }, deny: true }],
    });
    const before = await snapshot();
    await sendRawCall(h.sqs, h.cluster.queues.schedulerCalls, {
      type: 'ACCEPT',
      frameworkId: s.frameworkId,
      offerIds: [offer.offerId],
      operations: [{ type: 'RESERVE', resources: { reserved: { eng: { cpus: 1 } } } }],
    });
    await forbiddenError(r, /reserve resources for role "eng".*reserve_resources\[0\]/);
    expect(await snapshot()).toEqual(before);
    await s.teardown();
  });

  it('TEARDOWN the principal may not make: FORBIDDEN, the framework and its task stay', async () => {
    const { s, r } = await h.framework({ name: 'kept' });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'stays',
          agentId: offer.agentId,
          resources: { cpus: 0.1, mem: 16 },
          command: { value: 'sleep 300' },
        },
      ],
    );
    await r.update('stays', 'TASK_RUNNING');
    await setAcls({
      teardown_frameworks: [
        { principals: { type: 'ANY' }, framework_principals: { type: 'ANY' }, deny: true },
      ],
    });
    const n = await forbiddenCount();
    await s.teardown();
    await forbiddenError(r, /tear down a framework of principal .*teardown_frameworks\[0\]/);
    expect(await forbiddenCount()).toBe(n + 1);
    expect(
      await h.controlPlane.deps.store.get<Item>('frameworks', { frameworkId: s.frameworkId }),
    ).toMatchObject({
      status: 'ACTIVE',
    });
    expect(h.agents[0]!.runningTasks().map((t) => t.taskId)).toContain('stays');
    await setAcls({});
    await s.teardown();
    await eventually(async () => h.agents[0]!.runningTasks().length === 0, 'the teardown once allowed');
  });

  it('REGISTER of an agent id the principal may not register: FORBIDDEN, no agent stored', async () => {
    await setAcls({
      register_agents: [{ principals: { type: 'ANY' }, agents: { values: ['rogue'] }, deny: true }],
    });
    const count = async () =>
      Number(
        (
          await h.controlPlane.deps.store.get<Item>('meta', {
            key: rejectedCounterKey('agent-calls', 'FORBIDDEN'),
          })
        )?.count ?? 0,
      );
    const n = await count();
    await sendRawCall(h.sqs, h.cluster.queues.agentCalls, registerCall(h.controlPlane.deps.config, 'rogue'));
    await eventually(async () => (await count()) === n + 1, 'the REGISTER to be refused');
    expect(await h.controlPlane.deps.store.get('agents', { agentId: 'rogue' })).toBeUndefined();
  });

  it('an operator call the ACLs refuse to the operator fails with FORBIDDEN naming the rule, and changes nothing', async () => {
    await setAcls({
      operator_calls: [
        { principals: { values: ['ops-ci'] }, calls: { values: ['DRAIN_AGENT'] }, deny: true },
      ],
    });
    const agentId = h.agents[0]!.agentId;
    const before = await h.controlPlane.deps.store.get<Item>('agents', { agentId });
    let err = '';
    const io: CliIo = {
      stdout: { write: () => true },
      stderr: {
        write: (t: string) => {
          err += t;
          return true;
        },
      },
      onInterrupt: () => () => {},
      exit: (c) => {
        throw new Error(`exit ${c}`);
      },
    };
    const code = await runProgram(['agent', 'drain', agentId], {
      io,
      operator: {
        connect: () => ({ deps: h.controlPlane.deps, close: () => {}, principal: async () => 'ops-ci' }),
      },
    });
    expect(code).not.toBe(0);
    expect(err).toMatch(
      /FORBIDDEN: principal "ops-ci" may not use the operator call "DRAIN_AGENT".*operator_calls\[0\]/,
    );
    const after = await h.controlPlane.deps.store.get<Item>('agents', { agentId });
    expect(after?.operatorStatus ?? null).toBe(before?.operatorStatus ?? null);
    // Another operator, whom no rule refuses, may.
    const other = await runProgram(['agent', 'drain', agentId], {
      io,
      operator: {
        connect: () => ({ deps: h.controlPlane.deps, close: () => {}, principal: async () => 'ops-admin' }),
      },
    });
    expect(other).toBe(0);
    expect((await h.controlPlane.deps.store.get<Item>('agents', { agentId }))?.operatorStatus).toBe(
      'DRAINING',
    );
    await runProgram(['agent', 'reactivate', agentId], {
      io,
      operator: {
        connect: () => ({ deps: h.controlPlane.deps, close: () => {}, principal: async () => 'ops-admin' }),
      },
    });
  });
});
