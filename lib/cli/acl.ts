/**
 * `meso acl show|set|allow|deny`: the cluster's ACLs (Mesos's ACL JSON, lib/core/acl.ts), kept in
 * the meta table (lib/control/acl-store.ts). Every change is a conditional write of the whole
 * document: two operators changing it at once cannot lose each other's rules silently.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadAcls, saveAcls } from '../control/acl-store.ts';
import {
  ACL_ACTIONS,
  type AclAction,
  type AclEntity,
  AclError,
  type Acls,
  aclsFromJson,
  aclsToJson,
  CLOSED_ACLS,
  withRule,
} from '../core/acl.ts';
import { ConditionFailedError } from '../ports/store.ts';
import type { ClusterStoreDeps } from './agents.ts';
import { EXIT, line, UsageError, withConnection } from './io.ts';

const isUsage = (e: unknown): e is Error => e instanceof AclError || e instanceof UsageError;

/** `ANY`, `NONE`, or one or more values. */
export function entityOf(values: readonly string[] | undefined): AclEntity {
  if (!values || values.length === 0 || (values.length === 1 && values[0] === 'ANY')) return { type: 'ANY' };
  if (values.length === 1 && values[0] === 'NONE') return { type: 'NONE' };
  if (values.includes('ANY') || values.includes('NONE')) throw new UsageError('ANY and NONE stand alone');
  return { values: [...values] };
}

function actionOf(name: string): AclAction {
  if (!Object.hasOwn(ACL_ACTIONS, name))
    throw new UsageError(
      `unknown action ${JSON.stringify(name)} (one of ${Object.keys(ACL_ACTIONS).join(', ')})`,
    );
  return name as AclAction;
}

export async function aclShow(deps: ClusterStoreDeps): Promise<number> {
  return withConnection(
    deps.io,
    deps.openStore,
    async ({ store }) => {
      const { acls, version } = await loadAcls(store, CLOSED_ACLS);
      if (version === undefined)
        deps.io.stderr.write(
          line(
            "no ACLs stored: the deployment's default applies (a dev stack is open, a deployed one closed but for its deployer's grants)",
          ),
        );
      else deps.io.stdout.write(`${JSON.stringify(aclsToJson(acls), null, 2)}\n`);
      return EXIT.OK;
    },
    isUsage,
  );
}

async function change(deps: ClusterStoreDeps, edit: (current: Acls, stored: boolean) => Acls, what: string) {
  return withConnection(
    deps.io,
    deps.openStore,
    async ({ store }) => {
      const { acls, version } = await loadAcls(store, CLOSED_ACLS);
      const next = edit(acls, version !== undefined);
      try {
        await saveAcls(store, next, version, (deps.now ?? Date.now)());
      } catch (e) {
        if (!(e instanceof ConditionFailedError)) throw e;
        deps.io.stderr.write(line('meso acl: the ACLs changed meanwhile; nothing was written, try again'));
        return EXIT.FAILED;
      }
      deps.io.stdout.write(line(what));
      return EXIT.OK;
    },
    isUsage,
  );
}

export function aclSet(text: string, deps: ClusterStoreDeps): Promise<number> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    deps.io.stderr.write(line(`meso acl set: not JSON: ${(e as Error).message}`));
    return Promise.resolve(EXIT.USAGE);
  }
  let acls: Acls;
  try {
    acls = aclsFromJson(json);
  } catch (e) {
    deps.io.stderr.write(line(`meso acl set: ${(e as Error).message}`));
    return Promise.resolve(EXIT.USAGE);
  }
  return change(deps, () => acls, 'ACLs stored');
}

export interface RuleOptions {
  principal?: string[];
  object?: string[];
  last?: boolean;
}

export function aclRule(
  effect: 'allow' | 'deny',
  actionName: string,
  opts: RuleOptions,
  deps: ClusterStoreDeps,
): Promise<number> {
  let action: AclAction;
  let principals: AclEntity;
  let object: AclEntity;
  try {
    action = actionOf(actionName);
    principals = entityOf(opts.principal);
    object = entityOf(opts.object);
  } catch (e) {
    deps.io.stderr.write(line(`meso acl ${effect}: ${(e as Error).message}`));
    return Promise.resolve(EXIT.USAGE);
  }
  const where = opts.last ? 'last' : 'first';
  return change(
    deps,
    (current, stored) => {
      if (!stored)
        deps.io.stderr.write(
          line('meso acl: no ACLs were stored; starting from a closed document (permissive: false)'),
        );
      return withRule(
        current,
        action,
        { principals, object, ...(effect === 'deny' ? { deny: true } : {}) },
        where,
      );
    },
    `${effect} ${action}: principals ${JSON.stringify(principals)}, ${ACL_ACTIONS[action]} ${JSON.stringify(object)} (${where === 'first' ? 'first rule' : 'last rule'})`,
  );
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerAclCommand(
  program: Command,
  deps: () => ClusterStoreDeps,
  done: (code: number) => void,
): Command {
  const acl = program
    .command('acl')
    .description(
      "The cluster's authorization rules, as Mesos's ACLs: who may register in which roles, reserve, unreserve, run tasks as which users, tear down frameworks, register agents, use operator calls.",
    );
  acl
    .command('show')
    .description('Print the stored ACLs (Mesos ACL JSON).')
    .action(async () => done(await aclShow(deps())));
  acl
    .command('set')
    .description('Replace the ACLs with a document (Mesos ACL JSON; - reads stdin).')
    .argument('<file>', 'a JSON file, or - for stdin')
    .action(async (file: string) =>
      done(await aclSet(readFileSync(file === '-' ? 0 : file, 'utf8'), deps())),
    );
  for (const effect of ['allow', 'deny'] as const)
    acl
      .command(effect)
      .description(
        `Add a rule that ${effect === 'allow' ? 'allows' : 'refuses'} an action, as the first rule of that action (the first match decides).`,
      )
      .argument('<action>', Object.keys(ACL_ACTIONS).join(' | '))
      .option(
        '-p, --principal <principal>',
        'a principal (SenderId; a trailing * matches by prefix), ANY or NONE; repeatable',
        collect,
      )
      .option(
        '-o, --object <object>',
        'the role, user, principal, agent id or call, ANY or NONE; repeatable',
        collect,
      )
      .option('--last', 'add it as the last rule instead')
      .action(async (action: string, opts: RuleOptions) => done(await aclRule(effect, action, opts, deps())));
  return acl;
}
