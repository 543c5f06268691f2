/**
 * Roles, quotas, reservations and operator commands against the emulators, with real agents:
 * dynamic RESERVE / UNRESERVE through ACCEPT, reserved resources only for their role, a quota
 * limit holding, draining and reactivating an agent, and the CLI's roles report and explain.
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../lib/cli/io.ts';
import { runProgram } from '../../lib/cli/program.ts';
import { setRoleSettings, showRoles } from '../../lib/control/operator.ts';
import type { AgentRecord, TaskRecord } from '../../lib/core/model.ts';
import { flatten, fromWire, parse } from '../../lib/core/resources.ts';
import { parseQuantities } from '../../lib/core/roles.ts';
import type { Item } from '../../lib/ports/store.ts';
import type { Offer, SchedulerCallInput } from '../../lib/protocol/index.ts';
import { eventually, type Harness, sleep, startHarness } from './harness.ts';

describe('roles, reservations and operators', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 2, agentResources: 'cpus:2;mem:1024;disk:1024;ports:[31000-31100]' });
  });
  afterAll(async () => h?.stop());

  /** Sends a scheduler call as any framework would, straight to the queue. */
  const send = async (call: SchedulerCallInput & { frameworkId: string }) => {
    await h.sqs.send(
      new SendMessageCommand({
        QueueUrl: h.cluster.queues.schedulerCalls,
        MessageBody: JSON.stringify(call),
        MessageGroupId: call.frameworkId,
        MessageDeduplicationId: randomUUID(),
      }),
    );
  };
  const agentRecord = (id: string) =>
    h.controlPlane.deps.store.get<AgentRecord & Item>('agents', { agentId: id });
  const io = () => {
    let out = '';
    let err = '';
    const cli: CliIo = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      onInterrupt: () => () => {},
      exit: (c) => {
        throw new Error(`exit ${c}`);
      },
    };
    return { cli, out: () => out, err: () => err };
  };
  const cli = async (args: string[]) => {
    const o = io();
    const code = await runProgram(args, {
      io: o.cli,
      operator: { connect: () => ({ deps: h.controlPlane.deps, close: () => {} }) },
    });
    return { code, out: o.out(), err: o.err() };
  };

  it('RESERVE carves a dynamic reservation out of an agent; it is offered only to its role; UNRESERVE gives it back', async () => {
    const eng = await h.framework({ name: 'eng-fw', roles: ['eng'] });
    const offer = await eng.r.takeOffer();
    expect(offer.role).toBe('eng');
    const agentId = offer.agentId;
    for (const o of eng.r.offers.splice(0)) await eng.s.decline([o.offerId], 0);
    await send({
      v: 1,
      type: 'ACCEPT',
      frameworkId: eng.s.frameworkId,
      offerIds: [offer.offerId],
      operations: [{ type: 'RESERVE', resources: { reserved: { eng: { cpus: 1, mem: 256 } } } }],
      filters: { refuseSeconds: 0 },
    });
    const reserved = await eventually(async () => {
      const a = await agentRecord(agentId);
      return a?.total.reserved?.eng ? a : undefined;
    }, 'the reservation on the agent');
    expect(reserved.total).toEqual(
      parse('cpus:1;mem:768;disk:1024;ports:[31000-31100];cpus(eng):1;mem(eng):256'),
    );
    expect(reserved.dynamicReservations).toEqual(parse('cpus(eng):1;mem(eng):256'));

    // Another role's framework arrives: it may take that agent's unreserved half, never the reservation.
    const ads = await h.framework({ name: 'ads-fw', roles: ['ads'] });
    const seenByAds: Offer[] = [];
    ads.s.on('offers', async (offers) => {
      seenByAds.push(...offers);
      await ads.s.decline(
        offers.map((o) => o.offerId),
        1,
      );
    });
    // eng gets the reserved part back (it declined with no filter); launch a plain task on it.
    const withReservation = await eventually(async () => {
      const i = eng.r.offers.findIndex((o) => o.agentId === agentId && o.resources.reserved?.eng);
      return i >= 0 ? eng.r.offers.splice(i, 1)[0] : undefined;
    }, 'an offer holding the reservation');
    await eng.s.accept(
      [withReservation.offerId],
      [{ taskId: 'on-reserved', agentId, resources: { cpus: 0.5, mem: 64 }, command: { value: 'sleep 1' } }],
      { refuseSeconds: 0 },
    );
    const task = await eventually(
      () =>
        h.controlPlane.deps.store.get<TaskRecord & Item>('tasks', {
          frameworkId: eng.s.frameworkId,
          taskId: 'on-reserved',
        }),
      'the task record',
    );
    // The plain request ran on the reservation (reservations are used first).
    expect(task.resources).toEqual(parse('cpus(eng):0.5;mem(eng):64'));
    expect(task.role).toBe('eng');
    await eng.r.terminal('on-reserved');
    await sleep(1_000);
    for (const o of seenByAds) expect(o.resources.reserved).toBeUndefined();

    // The roles report shows the reservation under eng.
    const rows = await showRoles(h.controlPlane.deps);
    expect(rows.find((r) => r.role === 'eng')!.reserved).toEqual(parse('cpus(eng):1;mem(eng):256'));

    // UNRESERVE through offers that hold it: offers fragment (the task's part came back as an
    // offer of its own), so accept every live offer on the agent together, as Mesos allows.
    const live = () =>
      eng.r.offers.filter((o) => o.agentId === agentId && !eng.r.rescinds.includes(o.offerId));
    const holding = await eventually(async () => {
      const cpus = live().reduce((n, o) => n + (o.resources.reserved?.eng?.cpus ?? 0), 0);
      return cpus === 1 ? live() : undefined;
    }, 'offers holding the whole reservation');
    await send({
      v: 1,
      type: 'ACCEPT',
      frameworkId: eng.s.frameworkId,
      offerIds: holding.map((o) => o.offerId),
      operations: [{ type: 'UNRESERVE', resources: { reserved: { eng: { cpus: 1, mem: 256 } } } }],
      filters: { refuseSeconds: 0 },
    });
    await eventually(async () => !(await agentRecord(agentId))?.total.reserved, 'the reservation to be gone');
    expect((await agentRecord(agentId))!.total).toEqual(
      parse('cpus:2;mem:1024;disk:1024;ports:[31000-31100]'),
    );
    await eng.s.teardown();
    await ads.s.teardown();
    expect(h.violations).toEqual([]);
  });

  it('a RESERVE for another role is dropped with an ERROR, changing nothing', async () => {
    const f = await h.framework({ name: 'bad-reserver', roles: ['web'] });
    const offer = await f.r.takeOffer();
    const before = await agentRecord(offer.agentId);
    await send({
      v: 1,
      type: 'ACCEPT',
      frameworkId: f.s.frameworkId,
      offerIds: [offer.offerId],
      operations: [{ type: 'RESERVE', resources: { reserved: { ops: { cpus: 1 } } } }],
    });
    await f.r.until(() => f.r.errors.some((e) => /role ops is not allowed/.test(e.message)));
    expect((await agentRecord(offer.agentId))!.total).toEqual(before!.total);
    await f.s.teardown();
  });

  it('a quota limit caps what a role is offered, counting what it holds', async () => {
    await setRoleSettings(h.controlPlane.deps, 'capped', { limit: parseQuantities('cpus:1;mem:256') });
    const f = await h.framework({ name: 'capped-fw', roles: ['capped'] });
    await f.r.until(() => f.r.offers.length > 0);
    await sleep(1_500); // every agent had its chance
    const total = f.r.offers.reduce((acc, o) => acc + (fromWire(o.resources).cpus ?? 0), 0);
    expect(total).toBeLessThanOrEqual(1_000);
    expect(f.r.offers.reduce((acc, o) => acc + flatten(fromWire(o.resources)).mem, 0)).toBeLessThanOrEqual(
      256_000,
    );
    const report = await cli(['roles']);
    expect(report.code).toBe(0);
    expect(report.out).toMatch(/ROLE\s+WEIGHT\s+SHARE/);
    expect(report.out).toMatch(/capped\s+1\s+\S+\s+1\s+.*cpus:1;mem:256/);
    await f.s.teardown();
    await setRoleSettings(h.controlPlane.deps, 'capped', { limit: null });
  });

  it('drain rescinds outstanding offers and stops new ones; reactivate brings them back', async () => {
    const f = await h.framework({ name: 'drain-watcher', roles: ['*'] });
    const offer = await f.r.takeOffer();
    const agentId = offer.agentId;
    const drained = await cli(['agent', 'drain', agentId]);
    expect(drained.code).toBe(0);
    expect(drained.out).toMatch(/: DRAINING; \d+ outstanding offers? rescinded; 0 tasks still running/);
    await f.r.until(() => f.r.rescinds.includes(offer.offerId));
    f.r.offers.splice(0);
    const explained = await cli(['explain', f.s.frameworkId]);
    expect(explained.out).toMatch(/1 agents are unreachable, draining or deactivated/);
    await sleep(1_500);
    expect(f.r.offers.filter((o) => o.agentId === agentId)).toEqual([]);
    const back = await cli(['agent', 'reactivate', agentId]);
    expect(back.out).toMatch(`agent ${agentId}: ACTIVE`);
    await f.r.takeOffer(agentId);
    expect((await agentRecord(agentId))!.operatorStatus).toBeNull();
    expect((await cli(['agent', 'drain', 'no-such-agent'])).err).toMatch(/not registered/);
    await f.s.teardown();
  });

  it('meso roles set validates quotas and weights', async () => {
    const ok = await cli(['roles', 'set', 'team', '--weight', '2', '--guarantee', 'cpus:1;mem:128']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch('role team: weight 2, guarantee cpus:1;mem:128, limit {}');
    const bad = await cli(['roles', 'set', 'team/child', '--guarantee', 'cpus:5', '--limit', 'cpus:1']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/guarantee 5 is above its limit 1/);
    const cleared = await cli(['roles', 'set', 'team', '--clear-weight', '--clear-guarantee']);
    expect(cleared.out).toMatch('role team: back to the defaults');
    expect((await cli(['roles', 'set', 'team'])).err).toMatch(/nothing to set/);
  });

  it('an agent started with static reservations offers them only to their role, and UNRESERVE cannot undo them', async () => {
    const agent = await h.startAgent({
      resources: 'cpus(ops):1;mem(ops):256;cpus:1;mem:256;disk:64;ports:[31000-31001]',
    });
    const agentId = agent.agentId!;
    const row = await eventually(() => agentRecord(agentId), 'the agent record');
    expect(row.total).toEqual(parse('cpus:1;mem:256;disk:64;ports:[31000-31001];cpus(ops):1;mem(ops):256'));
    const other = await h.framework({ name: 'not-ops', roles: ['web'] });
    const ops = await h.framework({ name: 'ops-fw', roles: ['ops'] });
    const opsOffer = await eventually(
      async () => ops.r.offers.find((o) => o.agentId === agentId && o.resources.reserved?.ops),
      'the reserved offer',
    );
    expect(opsOffer.role).toBe('ops');
    await sleep(1_000);
    for (const o of other.r.offers) expect(o.resources.reserved).toBeUndefined();
    // Offers can be rescinded under us (a re-sent SUBSCRIBE counts as a failover): retry with a live one.
    const refused = () => ops.r.errors.some((e) => /only dynamic reservations/.test(e.message));
    for (let attempt = 0; attempt < 10 && !refused(); attempt++) {
      const live = ops.r.offers.filter(
        (o) => o.agentId === agentId && o.resources.reserved?.ops && !ops.r.rescinds.includes(o.offerId),
      );
      const target = live.at(-1) ?? opsOffer;
      await send({
        v: 1,
        type: 'ACCEPT',
        frameworkId: ops.s.frameworkId,
        offerIds: [target.offerId],
        operations: [{ type: 'UNRESERVE', resources: { reserved: { ops: { cpus: 1 } } } }],
      });
      await Promise.race([ops.r.until(refused), sleep(3_000)]);
    }
    expect(refused()).toBe(true);
    expect((await agentRecord(agentId))!.total.reserved?.ops).toBeDefined();
    await ops.s.teardown();
    await other.s.teardown();
  });
});
