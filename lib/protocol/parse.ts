/** Turns a raw message body into a typed message, or a reason it was rejected. */
import type { z } from 'zod';

export type Parsed<T> =
  | { ok: true; message: T }
  | {
      ok: false;
      code: 'MALFORMED_JSON' | 'UNKNOWN_TYPE' | 'INVALID' | 'UNSUPPORTED_VERSION';
      error: string;
      raw?: unknown;
    };

export function parseMessage<S extends z.ZodType>(
  schema: S,
  body: string,
  knownTypes: readonly string[],
): Parsed<z.infer<S>> {
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
      error: `unsupported protocol version ${JSON.stringify(obj.v)} (expected 1)`,
      raw,
    };
  if (typeof obj.type !== 'string' || !knownTypes.includes(obj.type)) {
    return {
      ok: false,
      code: 'UNKNOWN_TYPE',
      error: `unknown message type ${JSON.stringify(obj.type)}`,
      raw,
    };
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { ok: false, code: 'INVALID', error: `invalid ${obj.type}: ${issues.join('; ')}`, raw };
  }
  return { ok: true, message: r.data };
}
