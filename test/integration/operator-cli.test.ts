/**
 * The operator's listings and actions against the emulators with a real agent: `meso state`,
 * `meso frameworks`, `meso tasks` with filters, `meso agents --json` in the table's units, and
 * `meso kill` / `meso teardown` of a framework's work, refused by the stored ACLs when they say so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../lib/cli/io.ts';
import { runProgram } from '../../lib/cli/program.ts';
import { saveAcls } from '../../lib/control/acl-store.ts';
import type { ClusterState, FrameworkView, TaskView } from '../../lib/control/operator-state.ts';
import { OPEN_ACLS, withRule } from '../../lib/core/acl.ts';
import type { FrameworkRecord } from '../../lib/core/model.ts';
import type { Item } from '../../lib/ports/store.ts';
import { eventually, type Harness, startHarness } from './harness.ts';

describe('operator CLI: state, frameworks, tasks, kill, teardown', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ agents: 1, agentResources: 'cpus:2;mem:1024;disk:1024;ports:[31000-31100]' });
  });
  afterAll(async () => h?.stop());

  const cli = async (args: string[], env: Record<string, string> = {}) => {
    let out = '';
    let err = '';
    const io: CliIo = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      onInterrupt: () => () => {},
      exit: (c) => {
        throw new Error(`exit ${c}`);
      },
    };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const code = await runProgram(args, {
        io,
        operator: { connect: () => ({ deps: h.controlPlane.deps, close: () => {} }) },
        store: { openStore: () => ({ store: h.controlPlane.deps.store, close: () => {} }) },
      });
      return { code, out, err };
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };

  it('lists and filters what runs, in the same units as the tables, and kills and tears down', async () => {
    const { s, r } = await h.framework({ name: 'web', roles: ['web'] });
    const offer = await r.takeOffer();
    await s.accept(
      [offer.offerId],
      [
        {
          taskId: 'long',
          agentId: offer.agentId,
          resources: { cpus: 0.5, mem: 128 },
          command: { value: 'sleep 300' },
        },
        {
          taskId: 'short',
          agentId: offer.agentId,
          resources: { cpus: 0.25, mem: 32 },
          command: { value: 'exit 3' },
        },
      ],
      { refuseSeconds: 0 },
    );
    await r.update('long', 'TASK_RUNNING');
    await r.terminal('short');

    // agents --json: the same units as the table (cpus:2;mem:1024), not thousandths.
    const agents = await cli(['agents', '--json']);
    expect(agents.code).toBe(0);
    const [agent] = JSON.parse(agents.out);
    expect(agent.total).toMatchObject({ cpus: 2, mem: 1024, disk: 1024 });
    expect(agent.used).toMatchObject({ cpus: 0.5, mem: 128 });

    const state = await cli(['state', '--json']);
    expect(state.code).toBe(0);
    const snap: ClusterState = JSON.parse(state.out);
    expect(snap.totals.total).toMatchObject({ cpus: 2, mem: 1024 });
    expect(snap.totals.used).toMatchObject({ cpus: 0.5, mem: 128 });
    // A resource at zero is left out of the wire form (no offers out at this moment: no `cpus`).
    expect((snap.totals.idle.cpus ?? 0) + (snap.totals.offered.cpus ?? 0)).toBeCloseTo(1.5);
    expect(snap.frameworks.map((f) => f.frameworkId)).toContain(s.frameworkId);
    expect(snap.roles.map((x) => x.role)).toContain('web');
    expect(snap.tasks.map((t) => t.taskId).sort()).toEqual(['long', 'short']);
    const text = await cli(['state']);
    expect(text.out).toMatch(/used\s+cpus:0\.5;mem:128/);

    const fws = await cli(['frameworks', '--json']);
    const web = (JSON.parse(fws.out) as FrameworkView[]).find((f) => f.frameworkId === s.frameworkId)!;
    expect(web).toMatchObject({ name: 'web', status: 'ACTIVE', roles: ['web'], activeTasks: 1 });
    expect(web.used).toMatchObject({ cpus: 0.5, mem: 128 });
    // Its dominant share counts what it holds and what it is offered, of the cluster's total —
    // disk too (an offer outstanding at this moment holds all of it).
    const held = (k: 'cpus' | 'mem' | 'disk') =>
      ((web.used[k] ?? 0) + (web.offered[k] ?? 0)) / (k === 'cpus' ? 2 : 1024);
    expect(web.share).toBeCloseTo(Math.max(held('cpus'), held('mem'), held('disk')));
    expect(web.share).toBeGreaterThanOrEqual(0.25);
    expect((await cli(['frameworks'])).out).toMatch(new RegExp(`${s.frameworkId}\\s+web\\s+ACTIVE`));

    const running = await cli(['tasks', '--state', 'running', '--json']);
    expect((JSON.parse(running.out) as TaskView[]).map((t) => t.taskId)).toEqual(['long']);
    const failed = JSON.parse((await cli(['tasks', '--state', 'TASK_FAILED', '--json'])).out) as TaskView[];
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ taskId: 'short', exitCode: 3, role: 'web' });
    expect(JSON.parse((await cli(['tasks', '--role', 'other', '--json'])).out)).toEqual([]);
    expect(
      JSON.parse((await cli(['tasks', '--agent', offer.agentId, '--since', '1h', '--json'])).out),
    ).toHaveLength(2);
    const table = await cli(['tasks', '--framework', s.frameworkId]);
    expect(table.out).toMatch(/short .* FAILED .* 3 /);
    const badSince = await cli(['tasks', '--since', 'yesterday']);
    expect(badSince.code).toBe(2);
    expect(badSince.err).toMatch(/--since wants a duration/);

    // An operator the stored ACLs refuse cannot kill it; nothing changes.
    await saveAcls(
      h.controlPlane.deps.store,
      withRule(OPEN_ACLS, 'operator_calls', {
        principals: { values: ['intern'] },
        object: { type: 'ANY' },
        deny: true,
      }),
      undefined,
      Date.now(),
    );
    const refused = await cli(['kill', 'long'], { MESO_PRINCIPAL: 'intern' });
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/operator_calls\[0\]/);
    const refusedTeardown = await cli(['teardown', s.frameworkId], { MESO_PRINCIPAL: 'intern' });
    expect(refusedTeardown.code).toBe(1);
    expect(
      (
        await h.controlPlane.deps.store.get<FrameworkRecord & Item>('frameworks', {
          frameworkId: s.frameworkId,
        })
      )?.status,
    ).toBe('ACTIVE');
    expect(JSON.parse((await cli(['tasks', '--state', 'RUNNING', '--json'])).out)).toHaveLength(1);

    const unknown = await cli(['kill', 'no-such-task']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/no task no-such-task/);

    const killed = await cli(['kill', 'long'], { MESO_PRINCIPAL: 'ops' });
    expect(killed.code).toBe(0);
    expect(killed.out).toMatch(/kill sent/);
    expect((await r.terminal('long')).state).toBe('TASK_KILLED');
    expect((await cli(['kill', 'long'])).out).toMatch(/already ended/);

    const down = await cli(['teardown', s.frameworkId], { MESO_PRINCIPAL: 'ops' });
    expect(down.code).toBe(0);
    await eventually(async () => {
      const f = await h.controlPlane.deps.store.get<FrameworkRecord & Item>('frameworks', {
        frameworkId: s.frameworkId,
      });
      return f?.status === 'TORN_DOWN';
    }, 'the framework torn down');
    expect((await cli(['teardown', s.frameworkId])).out).toMatch(/already torn down/);
    expect((await cli(['teardown', 'nope'])).code).toBe(1);
  });
});
