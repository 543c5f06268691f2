/**
 * Authorization as Mesos's ACLs (`--acls`): which principals may register frameworks in which
 * roles, reserve and unreserve in which roles, run tasks as which users, tear down whose
 * frameworks, register agents, and use the operator calls. A principal is the SQS SenderId of the
 * call (the IAM identity SQS vouches for) or the operator's identity.
 *
 * The document is Mesos's ACL JSON: for each action a list of rules, each a `principals` entity
 * and an object entity (`roles`, `users`, ...), where an entity is `{"type":"ANY"}`,
 * `{"type":"NONE"}` or `{"values":[...]}`. The first rule whose principal and object both match
 * decides (NONE matches everything); it allows unless either entity is NONE. No matching rule:
 * `permissive` decides. Two additions, both optional: a rule with `"deny": true` refuses what it
 * matches (Mesos can say "no role" but not "not this role"), and a principal value ending in `*`
 * matches by prefix (an IAM role's SenderId is `<role id>:<session>`, one session per node).
 * A role value `eng/*` matches every role below `eng`, as in Mesos.
 *
 * Pure: no I/O. The store keeps the document in the meta table (lib/control/acl-store.ts).
 */

export type AclEntity =
  | { readonly type: 'ANY' }
  | { readonly type: 'NONE' }
  | { readonly values: readonly string[] };

/** Each action, and the name of its object entity in the JSON (Mesos's names where Mesos has the action). */
export const ACL_ACTIONS = {
  /** SUBSCRIBE in a role (object: the role). */
  register_frameworks: 'roles',
  /** RESERVE in a role (object: the role). */
  reserve_resources: 'roles',
  /** UNRESERVE in a role (object: the role; Mesos keys this on the reserver principal). */
  unreserve_resources: 'roles',
  /** LAUNCH a task as a user (object: the task's user). */
  run_tasks: 'users',
  /** TEARDOWN (or KILL through the operator) a framework (object: the principal that owns it). */
  teardown_frameworks: 'framework_principals',
  /** REGISTER an agent (object: the agent id). */
  register_agents: 'agents',
  /** An operator call (object: its name, e.g. MARK_AGENT_GONE, ACL_SET). */
  operator_calls: 'calls',
  /**
   * Read the output of another principal's tasks (object: the principal that owns the framework).
   * Only a rule that matches allows it: `permissive` does not (output may hold secrets), and a
   * framework's own principal needs no rule.
   */
  access_sandboxes: 'framework_principals',
} as const;

export type AclAction = keyof typeof ACL_ACTIONS;

export interface AclRule {
  readonly principals: AclEntity;
  /** The object entity, under the action's own name in the JSON (see {@link ACL_ACTIONS}). */
  readonly object: AclEntity;
  readonly deny?: boolean;
}

export interface Acls {
  /** What happens when no rule matches: true allows (Mesos's default), false refuses. */
  readonly permissive: boolean;
  readonly rules: { readonly [A in AclAction]?: readonly AclRule[] };
}

export interface AclRequest {
  readonly action: AclAction;
  readonly principal: string;
  readonly object: string;
}

export type AclDecision =
  | { readonly allowed: true; readonly rule: string }
  | { readonly allowed: false; readonly rule: string; readonly message: string };

export const OPEN_ACLS: Acls = { permissive: true, rules: {} };
export const CLOSED_ACLS: Acls = { permissive: false, rules: {} };

/** Limits on a stored document: it is read on every call that is authorized. */
export const ACL_LIMITS = { rulesPerAction: 256, valuesPerEntity: 256, valueChars: 512 } as const;

const isNone = (e: AclEntity) => 'type' in e && e.type === 'NONE';

function principalMatches(e: AclEntity, principal: string): boolean {
  if ('type' in e) return true; // ANY, and NONE (which then refuses)
  return e.values.some((v) => (v.endsWith('*') ? principal.startsWith(v.slice(0, -1)) : v === principal));
}

function objectMatches(action: AclAction, e: AclEntity, object: string): boolean {
  if ('type' in e) return true;
  const roles = ACL_ACTIONS[action] === 'roles';
  return e.values.some((v) =>
    roles && v.endsWith('/*')
      ? object.startsWith(v.slice(0, -1)) && object.length > v.length - 1
      : v === object,
  );
}

const OBJECT_NOUN: Record<AclAction, string> = {
  register_frameworks: 'register a framework in role',
  reserve_resources: 'reserve resources for role',
  unreserve_resources: 'unreserve resources of role',
  run_tasks: 'run tasks as user',
  teardown_frameworks: 'tear down a framework of principal',
  register_agents: 'register agent',
  operator_calls: 'use the operator call',
  access_sandboxes: 'read the task output of frameworks of principal',
};

/** The rule's name in messages and in `meso acl show`: `register_frameworks[2]`. */
export const ruleName = (action: AclAction, index: number): string => `${action}[${index}]`;

/** Decides a request: the first matching rule, else the default. A refusal names what refused it. */
export function authorize(acls: Acls, req: AclRequest): AclDecision {
  const rules = acls.rules[req.action] ?? [];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (!principalMatches(r.principals, req.principal) || !objectMatches(req.action, r.object, req.object))
      continue;
    const rule = ruleName(req.action, i);
    if (!r.deny && !isNone(r.principals) && !isNone(r.object)) return { allowed: true, rule };
    return {
      allowed: false,
      rule,
      message: refusal(req, `ACL rule ${rule} (${JSON.stringify(ruleToJson(req.action, r))})`),
    };
  }
  if (acls.permissive) return { allowed: true, rule: 'default' };
  return {
    allowed: false,
    rule: 'default',
    message: refusal(req, 'the ACL default (permissive: false): no rule allows it'),
  };
}

function refusal(req: AclRequest, by: string): string {
  return `principal ${JSON.stringify(req.principal)} may not ${OBJECT_NOUN[req.action]} ${JSON.stringify(req.object)}: refused by ${by}`;
}

// ------------------------------------------------------------------------------------------------
// The JSON form (Mesos's), validated by hand: the core takes no schema library.

export type AclJson = { permissive?: boolean } & { [A in AclAction]?: Record<string, unknown>[] };

function ruleToJson(action: AclAction, r: AclRule): Record<string, unknown> {
  return { principals: r.principals, [ACL_ACTIONS[action]]: r.object, ...(r.deny ? { deny: true } : {}) };
}

export function aclsToJson(acls: Acls): AclJson {
  const out: AclJson = { permissive: acls.permissive };
  for (const action of Object.keys(ACL_ACTIONS) as AclAction[]) {
    const rules = acls.rules[action];
    if (rules && rules.length > 0) out[action] = rules.map((r) => ruleToJson(action, r));
  }
  return out;
}

export class AclError extends Error {
  override name = 'AclError';
}

function entityFrom(v: unknown, where: string): AclEntity {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new AclError(`${where}: an entity is {"type":"ANY"}, {"type":"NONE"} or {"values":[...]}`);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && (o.type === 'ANY' || o.type === 'NONE')) return { type: o.type };
  if (keys.length === 1 && Array.isArray(o.values)) {
    const values = o.values;
    if (values.length === 0 || values.length > ACL_LIMITS.valuesPerEntity)
      throw new AclError(`${where}.values: 1 to ${ACL_LIMITS.valuesPerEntity} strings`);
    for (const s of values)
      if (typeof s !== 'string' || s.length === 0 || s.length > ACL_LIMITS.valueChars)
        throw new AclError(`${where}.values: each a string of 1 to ${ACL_LIMITS.valueChars} characters`);
    return { values: [...(values as string[])] };
  }
  throw new AclError(`${where}: an entity is {"type":"ANY"}, {"type":"NONE"} or {"values":[...]}`);
}

/** Reads Mesos's ACL JSON (plus `deny`); throws AclError naming what is wrong. */
export function aclsFromJson(json: unknown): Acls {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new AclError('an ACL document is a JSON object');
  const o = json as Record<string, unknown>;
  const rules: { [A in AclAction]?: AclRule[] } = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'permissive') {
      if (typeof v !== 'boolean') throw new AclError('permissive: true or false');
      continue;
    }
    if (!Object.hasOwn(ACL_ACTIONS, k))
      throw new AclError(
        `unknown ACL action ${JSON.stringify(k)} (known: ${Object.keys(ACL_ACTIONS).join(', ')})`,
      );
    const action = k as AclAction;
    const objectKey = ACL_ACTIONS[action];
    if (!Array.isArray(v) || v.length > ACL_LIMITS.rulesPerAction)
      throw new AclError(`${action}: a list of at most ${ACL_LIMITS.rulesPerAction} rules`);
    rules[action] = v.map((r, i): AclRule => {
      const where = ruleName(action, i);
      if (typeof r !== 'object' || r === null || Array.isArray(r))
        throw new AclError(`${where}: a rule is an object`);
      const rule = r as Record<string, unknown>;
      for (const key of Object.keys(rule))
        if (key !== 'principals' && key !== objectKey && key !== 'deny')
          throw new AclError(
            `${where}: unknown field ${JSON.stringify(key)} (a rule has principals, ${objectKey}, deny)`,
          );
      if (rule.deny !== undefined && typeof rule.deny !== 'boolean')
        throw new AclError(`${where}.deny: true or false`);
      return {
        principals: entityFrom(rule.principals ?? { type: 'ANY' }, `${where}.principals`),
        object: entityFrom(rule[objectKey] ?? { type: 'ANY' }, `${where}.${objectKey}`),
        ...(rule.deny ? { deny: true } : {}),
      };
    });
  }
  // Absent, Mesos's default: permissive.
  return { permissive: o.permissive === undefined ? true : (o.permissive as boolean), rules };
}

/** `acls` with `rule` added to `action`'s rules: first (the default: it then decides first) or last. */
export function withRule(
  acls: Acls,
  action: AclAction,
  rule: AclRule,
  where: 'first' | 'last' = 'first',
): Acls {
  const list = acls.rules[action] ?? [];
  if (list.length >= ACL_LIMITS.rulesPerAction)
    throw new AclError(`${action}: already ${ACL_LIMITS.rulesPerAction} rules`);
  return {
    ...acls,
    rules: { ...acls.rules, [action]: where === 'first' ? [rule, ...list] : [...list, rule] },
  };
}
