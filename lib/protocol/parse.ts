/** Turns a raw message body into a typed message, or a reason it was rejected. */
import type { z } from 'zod';
import { boundedJsonProblem } from './limits.ts';

export type Parsed<T> =
  | { ok: true; message: T }
  | {
      ok: false;
      code: 'MALFORMED_JSON' | 'UNKNOWN_TYPE' | 'INVALID' | 'UNSUPPORTED_VERSION';
      error: string;
      raw?: unknown;
    };

/** A value from a message, in an error message: at most 64 characters of it. */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}

export function parseMessage<S extends z.ZodType>(
  schema: S,
  body: string,
  knownTypes: readonly string[],
): Parsed<z.infer<S>> {
  // Before JSON.parse and the schema recurse into it: a body nested thousands deep would
  // overflow the stack of whatever walks it next, and the message would be retried into the DLQ.
  const unbounded = boundedJsonProblem(body);
  if (unbounded) return { ok: false, code: 'MALFORMED_JSON', error: unbounded };
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (e) {
    return { ok: false, code: 'MALFORMED_JSON', error: `body is not JSON: ${(e as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: 'INVALID', error: 'a message is a JSON object', raw };
  }
  const obj = raw as Record<string, unknown>;
  if (obj.v !== 1)
    return {
      ok: false,
      code: 'UNSUPPORTED_VERSION',
      error: `unsupported protocol version ${shown(obj.v)} (expected 1)`,
      raw,
    };
  if (typeof obj.type !== 'string' || !knownTypes.includes(obj.type)) {
    return {
      ok: false,
      code: 'UNKNOWN_TYPE',
      error: `unknown message type ${shown(obj.type)}`,
      raw,
    };
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    return { ok: false, code: 'INVALID', error: `invalid ${obj.type}: ${schemaProblems(r.error)}`, raw };
  }
  return { ok: true, message: r.data };
}

/** The first five problems zod found, each as `path: message` (`root` names the whole value). */
export function schemaProblems(error: z.ZodError, root = '(root)'): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || root}: ${i.message}`)
    .join('; ');
}
