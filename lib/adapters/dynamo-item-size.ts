/**
 * An item's size as DynamoDB bills it (its "Item sizes and formats" rules): each attribute's
 * name in UTF-8 bytes plus its value — a string its UTF-8 bytes, a number about one byte per two
 * significant digits plus one, a boolean or null one byte, a list or map 3 bytes plus its
 * elements, each element one byte more (and a map element its key's bytes). A write costs a
 * write unit per started KB of the larger of the item before and after it (twice that in a
 * transaction), a strongly consistent read a read unit per started 4 KB.
 *
 * An estimate within a few bytes of DynamoDB's own accounting, for tests that keep a hot item
 * under a unit and for sizing: the bill itself is what `ReturnConsumedCapacity` reports.
 */

/** The size of one attribute value. */
export function valueSize(v: unknown): number {
  if (v === null || v === undefined || typeof v === 'boolean') return 1;
  if (typeof v === 'number') return numberSize(v);
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return 3 + v.reduce((n: number, e) => n + valueSize(e) + 1, 0);
  if (v instanceof Set) return [...v].reduce((n: number, e) => n + valueSize(e), 0);
  if (typeof v === 'object')
    return (
      3 +
      Object.entries(v)
        .filter(([, e]) => e !== undefined)
        .reduce((n, [k, e]) => n + Buffer.byteLength(k, 'utf8') + valueSize(e) + 1, 0)
    );
  throw new TypeError(`no DynamoDB size for a ${typeof v}`);
}

/** An item's size: its attributes' names and values (attributes set to undefined are not stored). */
export const itemSize = (item: Readonly<Record<string, unknown>>): number =>
  Object.entries(item)
    .filter(([, v]) => v !== undefined)
    .reduce((n, [k, v]) => n + Buffer.byteLength(k, 'utf8') + valueSize(v), 0);

/** Write units of a write whose item is `bytes` large (before or after, the larger). */
export const writeUnits = (bytes: number, transactional = false): number =>
  Math.max(1, Math.ceil(bytes / 1024)) * (transactional ? 2 : 1);

/** Significant decimal digits, leading and trailing zeros trimmed: a byte per two, plus one. */
function numberSize(n: number): number {
  if (!Number.isFinite(n)) throw new TypeError(`DynamoDB stores no ${n}`);
  const [mantissa = '0'] = Math.abs(n).toExponential().split('e');
  const digits = mantissa.replace('.', '').replace(/0+$/, '') || '0';
  return Math.ceil(digits.length / 2) + 1;
}
