/** Authorization as Mesos's ACLs: the pure decision, its storage, and `meso acl`. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory-store.ts';
import { runProgram } from '../../lib/cli/program.ts';
import { aclDefaultFromEnv, authorized, loadAcls, saveAcls } from '../../lib/control/acl-store.ts';
import { ForbiddenError, operatorKill, operatorTeardown } from '../../lib/control/operator-actions.ts';
import {
  ACL_ACTIONS,
  type AclAction,
  type AclEntity,
  AclError,
  type Acls,
  aclsFromJson,
  aclsToJson,
  authorize,
  CLOSED_ACLS,
  OPEN_ACLS,
} from '../../lib/core/acl.ts';
import { ConditionFailedError, type Item } from '../../lib/ports/store.ts';
import { putAgent, putFramework, putTask, testControl } from './control/helpers.ts';

const doc = (json: unknown) => aclsFromJson(json);

describe('authorize: first match wins, NONE refuses, permissive decides the rest', () => {
  const acls = doc({
    permissive: false,
    register_frameworks: [
      { principals: { values: ['ops'] }, roles: { type: 'ANY' } },
      { principals: { values: ['intern'] }, roles: { type: 'NONE' } },
      { principals: { values: ['web-team'] }, roles: { values: ['web', 'eng/*'] } },
      { principals: { type: 'ANY' }, roles: { values: ['*'] } },
    ],
    run_tasks: [
      { principals: { type: 'ANY' }, users: { values: ['root', 'ec2-user'] }, deny: true },
      { principals: { type: 'ANY' }, users: { type: 'ANY' } },
    ],
    register_agents: [{ principals: { values: ['AROAAGENT:*'] }, agents: { type: 'ANY' } }],
  });
  const reg = (principal: string, object: string) =>
    authorize(acls, { action: 'register_frameworks', principal, object });

  it('allows by the first rule that matches principal and object', () => {
    expect(reg('ops', 'anything')).toEqual({ allowed: true, rule: 'register_frameworks[0]' });
    expect(reg('web-team', 'web')).toEqual({ allowed: true, rule: 'register_frameworks[2]' });
    expect(reg('web-team', 'eng/api')).toMatchObject({ allowed: true });
    expect(reg('someone', '*')).toEqual({ allowed: true, rule: 'register_frameworks[3]' });
  });

  it('refuses with the rule that refused it, for a FORBIDDEN error', () => {
    const d = reg('intern', '*');
    expect(d).toMatchObject({ allowed: false, rule: 'register_frameworks[1]' });
    expect(d.allowed || d.message).toMatch(
      /principal "intern" may not register a framework in role "\*": refused by ACL rule register_frameworks\[1\]/,
    );
    expect(reg('web-team', 'eng')).toMatchObject({ allowed: false, rule: 'default' }); // eng/* is below eng, not eng
    expect(reg('web-team', 'db')).toMatchObject({ allowed: false, rule: 'default' });
    const d2 = reg('web-team', 'db');
    expect(d2.allowed || d2.message).toMatch(/the ACL default \(permissive: false\)/);
  });

  it('deny rules refuse one object and leave the rest to later rules', () => {
    expect(authorize(acls, { action: 'run_tasks', principal: 'p', object: 'root' })).toMatchObject({
      allowed: false,
      rule: 'run_tasks[0]',
    });
    expect(authorize(acls, { action: 'run_tasks', principal: 'p', object: 'nobody' })).toMatchObject({
      allowed: true,
      rule: 'run_tasks[1]',
    });
  });

  it('a principal value ending in * matches every session of an IAM role', () => {
    expect(
      authorize(acls, { action: 'register_agents', principal: 'AROAAGENT:i-0abc', object: 'a1' }),
    ).toMatchObject({ allowed: true });
    expect(
      authorize(acls, { action: 'register_agents', principal: 'AROAOTHER:i-0abc', object: 'a1' }),
    ).toMatchObject({ allowed: false });
  });

  it('tear down: only the principal that owns the framework, or one granted it', () => {
    const t = doc({
      teardown_frameworks: [{ principals: { values: ['ops'] }, framework_principals: { type: 'ANY' } }],
      permissive: false,
    });
    expect(authorize(t, { action: 'teardown_frameworks', principal: 'ops', object: 'alice' }).allowed).toBe(
      true,
    );
    expect(authorize(t, { action: 'teardown_frameworks', principal: 'bob', object: 'alice' }).allowed).toBe(
      false,
    );
  });
});

const entity: fc.Arbitrary<AclEntity> = fc.oneof(
  fc.constant({ type: 'ANY' as const }),
  fc.constant({ type: 'NONE' as const }),
  fc
    .uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 3 })
    .map((values) => ({ values })),
);
const action = fc.constantFrom(...(Object.keys(ACL_ACTIONS) as AclAction[]));
const acls: fc.Arbitrary<Acls> = fc.record({
  permissive: fc.boolean(),
  rules: fc.dictionary(
    action,
    fc.array(fc.record({ principals: entity, object: entity, deny: fc.boolean() }), { maxLength: 5 }),
  ),
});
const req = fc.record({
  action,
  principal: fc.constantFrom('a', 'b', 'c', 'x'),
  object: fc.constantFrom('a', 'b', 'c', 'x'),
});

describe('authorize (properties)', () => {
  it('with no rules, permissive alone decides', () => {
    fc.assert(
      fc.property(req, (r) => {
        expect(authorize(OPEN_ACLS, r).allowed).toBe(true);
        expect(authorize(CLOSED_ACLS, r).allowed).toBe(false);
      }),
    );
  });
  it('a rule put first decides every request it matches; rules after a catch-all never matter', () => {
    fc.assert(
      fc.property(acls, req, fc.boolean(), (a, r, deny) => {
        const first = { principals: { type: 'ANY' as const }, object: { type: 'ANY' as const }, deny };
        const withFirst: Acls = {
          ...a,
          rules: { ...a.rules, [r.action]: [first, ...(a.rules[r.action] ?? [])] },
        };
        expect(authorize(withFirst, r)).toMatchObject({ allowed: !deny, rule: `${r.action}[0]` });
      }),
    );
  });
  it('an allow needs a rule that names neither NONE nor deny; a NONE principal never allows', () => {
    fc.assert(
      fc.property(acls, req, (a, r) => {
        const d = authorize(a, r);
        if (d.rule === 'default') expect(d.allowed).toBe(a.permissive);
        else {
          const rule = a.rules[r.action]![Number(/\[(\d+)\]/.exec(d.rule)![1])]!;
          expect(d.allowed).toBe(
            !rule.deny &&
              !('type' in rule.principals && rule.principals.type === 'NONE') &&
              !('type' in rule.object && rule.object.type === 'NONE'),
          );
        }
      }),
    );
  });
  it('the JSON form round-trips and decides the same', () => {
    fc.assert(
      fc.property(acls, req, (a, r) => {
        const back = aclsFromJson(JSON.parse(JSON.stringify(aclsToJson(a))));
        expect(authorize(back, r)).toEqual(authorize(a, r));
      }),
    );
  });
});

describe('the ACL document is validated', () => {
  it.each([
    [[], /a JSON object/],
    [{ permissive: 'yes' }, /permissive/],
    [{ launch_rockets: [] }, /unknown ACL action/],
    [{ run_tasks: [{ principals: { type: 'SOME' } }] }, /run_tasks\[0\]\.principals/],
    [{ run_tasks: [{ principals: { type: 'ANY' }, roles: { type: 'ANY' } }] }, /unknown field "roles"/],
    [{ run_tasks: [{ users: { values: [] } }] }, /values/],
    [{ run_tasks: Array(300).fill({}) }, /at most 256 rules/],
  ])('%j is refused', (json, message) => {
    expect(() => aclsFromJson(json)).toThrow(AclError);
    expect(() => aclsFromJson(json)).toThrow(message);
  });
  it("a missing permissive is Mesos's default, true", () => {
    expect(aclsFromJson({}).permissive).toBe(true);
  });
});

describe('storage and the deployment default', () => {
  it("a dev stack is open, a deployed stack closed but for its deployer's grants", () => {
    expect(aclDefaultFromEnv({ MESO_ACL_PERMISSIVE: 'true' }).permissive).toBe(true);
    expect(aclDefaultFromEnv({})).toEqual(CLOSED_ACLS);
    const granted = aclDefaultFromEnv({
      MESO_ACL: JSON.stringify({ register_agents: [{ principals: { values: ['AROAX:*'] } }] }),
    });
    expect(granted.permissive).toBe(false);
    expect(
      authorize(granted, { action: 'register_agents', principal: 'AROAX:i-1', object: 'a' }).allowed,
    ).toBe(true);
    expect(
      authorize(granted, { action: 'register_frameworks', principal: 'AROAX:i-1', object: '*' }).allowed,
    ).toBe(false);
  });

  it('stored ACLs replace the default; a concurrent change is refused', async () => {
    const store = new MemoryStore();
    expect(await loadAcls(store, OPEN_ACLS)).toEqual({ acls: OPEN_ACLS, version: undefined });
    expect((await authorized(store, OPEN_ACLS, 'run_tasks', 'p', 'root')).allowed).toBe(true);
    await saveAcls(store, CLOSED_ACLS, undefined, 1);
    expect((await authorized(store, OPEN_ACLS, 'run_tasks', 'p', 'root')).allowed).toBe(false);
    await expect(saveAcls(store, OPEN_ACLS, undefined, 2)).rejects.toBeInstanceOf(ConditionFailedError);
    const { version } = await loadAcls(store, OPEN_ACLS);
    await saveAcls(store, OPEN_ACLS, version, 3);
    await expect(saveAcls(store, CLOSED_ACLS, version, 4)).rejects.toBeInstanceOf(ConditionFailedError);
  });
});

describe('meso acl', () => {
  const cli = async (store: MemoryStore, ...argv: string[]) => {
    let out = '';
    let err = '';
    const io = {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      onInterrupt: () => () => {},
      exit: (c: number): never => {
        throw new Error(`exit ${c}`);
      },
    };
    const code = await runProgram(argv, { io, store: { openStore: () => ({ store, close: () => {} }) } });
    return { code, out, err };
  };

  it('allow and deny add first rules that the decision then follows; show prints the JSON', async () => {
    const store = new MemoryStore();
    expect((await cli(store, 'acl', 'show')).err).toMatch(/no ACLs stored/);
    expect(
      (await cli(store, 'acl', 'allow', 'register_frameworks', '-p', 'alice', '-o', 'eng', '-o', 'web')).code,
    ).toBe(0);
    expect((await cli(store, 'acl', 'deny', 'register_frameworks', '-p', 'alice', '-o', 'web')).code).toBe(0);
    const shown = await cli(store, 'acl', 'show');
    expect(JSON.parse(shown.out)).toEqual({
      permissive: false,
      register_frameworks: [
        { principals: { values: ['alice'] }, roles: { values: ['web'] }, deny: true },
        { principals: { values: ['alice'] }, roles: { values: ['eng', 'web'] } },
      ],
    });
    const { acls } = await loadAcls(store, OPEN_ACLS);
    expect(
      authorize(acls, { action: 'register_frameworks', principal: 'alice', object: 'eng' }).allowed,
    ).toBe(true);
    expect(
      authorize(acls, { action: 'register_frameworks', principal: 'alice', object: 'web' }),
    ).toMatchObject({ allowed: false, rule: 'register_frameworks[0]' });
    expect(authorize(acls, { action: 'register_frameworks', principal: 'bob', object: 'eng' }).allowed).toBe(
      false,
    );
  });

  it('set replaces the document with a file; an invalid one is refused and changes nothing', async () => {
    const store = new MemoryStore();
    const dir = mkdtempSync(join(tmpdir(), 'meso-acl-'));
    const good = join(dir, 'acl.json');
    const doc = {
      permissive: false,
      run_tasks: [{ principals: { type: 'ANY' }, users: { values: ['nobody'] } }],
    };
    writeFileSync(good, JSON.stringify(doc));
    expect((await cli(store, 'acl', 'set', good)).code).toBe(0);
    expect(JSON.parse((await cli(store, 'acl', 'show')).out)).toEqual(doc);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ run_tasks: [{ users: { type: 'SOME' } }] }));
    const refused = await cli(store, 'acl', 'set', bad);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/run_tasks\[0\]\.users/);
    expect(JSON.parse((await cli(store, 'acl', 'show')).out)).toEqual(doc);
    rmSync(dir, { recursive: true });
  });

  it('bad input is a usage error that writes nothing', async () => {
    const store = new MemoryStore();
    expect((await cli(store, 'acl', 'allow', 'launch_rockets')).code).toBe(2);
    expect((await cli(store, 'acl', 'allow', 'run_tasks', '-o', 'ANY', '-o', 'root')).code).toBe(2);
    expect(await store.scan('meta')).toEqual([]);
  });
});

describe('operator actions with no ACLs stored', () => {
  it("follow the deployment's default: closed refuses a KILL and a TEARDOWN, open allows them", async () => {
    const closed = testControl({ acls: CLOSED_ACLS });
    await putAgent(closed, 'a1');
    await putFramework(closed, 'fw1');
    await putTask(closed, 'fw1', 't1', 'a1');
    await expect(operatorKill(closed.deps, { principal: 'stranger' }, 't1')).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    await expect(operatorTeardown(closed.deps, { principal: 'stranger' }, 'fw1')).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    expect((await closed.deps.store.get<Item>('frameworks', { frameworkId: 'fw1' }))?.status).toBe('ACTIVE');
    expect(closed.counters.get('OperatorCallsRejected')).toBe(2);

    const open = testControl({ acls: OPEN_ACLS });
    await putFramework(open, 'fw1');
    await expect(operatorTeardown(open.deps, { principal: 'operator' }, 'fw1')).resolves.toMatchObject({
      outcome: 'removed',
    });
  });
});
