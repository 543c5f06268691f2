/**
 * The bounds on what one message may carry. Every message on every queue is an attacker's until
 * parsed, so nothing in it may make a parser recurse without bound, a handler loop without bound,
 * or a write grow past what one DynamoDB transaction holds. docs/protocol.md lists them all.
 */

export const LIMITS = {
  /** A message body, in UTF-16 code units: SQS's own ceiling (1 MiB), checked before parsing. */
  bodyChars: 1_048_576,
  /** Nesting of JSON objects and arrays in a body; the deepest valid message nests about 12. */
  depth: 32,
  /** `command.environment` entries, name and value lengths. */
  envEntries: 256,
  envNameChars: 256,
  envValueChars: 32_768,
  /** `command.arguments` entries. */
  arguments: 1024,
  /** An agent's attributes: entries, name and value lengths. */
  attributes: 64,
  attributeNameChars: 128,
  attributeValueChars: 1024,
  /** Roles: a framework's roles, the roles in `reserved`, `offerFilters`, REVIVE / SUPPRESS. */
  roles: 64,
  /** URIs fetched for one task. */
  uris: 64,
  /** Operations in one ACCEPT. */
  operationsPerAccept: 64,
  /**
   * Tasks in one ACCEPT, over all its LAUNCH operations: an ACCEPT is one DynamoDB transaction
   * (at most 100 items) of the agent, one item per task and the outbox's items.
   */
  tasksPerAccept: 64,
  /** Offers named by one ACCEPT or DECLINE. */
  offersPerCall: 100,
  /** Tasks an agent lists in REGISTER (each one is a read). */
  registerTasks: 1000,
  /** Tasks named by one explicit RECONCILE (each unknown one is an UPDATE sent back). */
  reconcileTasks: 100,
  /**
   * Acknowledgements in one ACKNOWLEDGE (`acks`): each is a cached route lookup, at worst a read,
   * and the agents they name get one message each.
   */
  acknowledgements: 100,
} as const;

/**
 * Why `body` may not be handed to `JSON.parse` and a schema: too long, or nested deeper than
 * `maxDepth`. One pass over the characters, without recursion; brackets inside strings do not
 * count. A body that passes may still be invalid JSON — `JSON.parse` says so.
 */
export function boundedJsonProblem(
  body: string,
  maxChars: number = LIMITS.bodyChars,
  maxDepth: number = LIMITS.depth,
): string | undefined {
  if (body.length > maxChars) return `body is ${body.length} characters, more than ${maxChars}`;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return `body nests deeper than ${maxDepth} levels`;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return undefined;
}
