/**
 * An item's size as DynamoDB bills it (the "Item sizes" rules of its developer guide): attribute
 * names and strings by their UTF-8 bytes, a number about one byte per two significant digits plus
 * one, booleans and nulls one byte, a map or list three bytes plus one per element and its
 * elements. A write costs one unit per started KB of it.
 */
const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

function valueSize(v: unknown): number {
  if (v === null || v === undefined || typeof v === 'boolean') return 1;
  if (typeof v === 'string') return utf8(v);
  if (typeof v === 'number') {
    const digits = String(Math.abs(v))
      .replace(/[.-]|e.*$/g, '')
      .replace(/^0+|0+$/g, '').length;
    return Math.ceil(Math.max(digits, 1) / 2) + 1;
  }
  if (Array.isArray(v)) return 3 + v.reduce((n: number, e) => n + 1 + valueSize(e), 0);
  if (typeof v === 'object')
    return 3 + Object.entries(v).reduce((n, [k, e]) => n + 1 + utf8(k) + valueSize(e), 0);
  throw new Error(`no DynamoDB size for ${typeof v}`);
}

/** The size of an item in bytes: each top-level attribute's name and value. */
export const itemSize = (item: Record<string, unknown>): number =>
  Object.entries(item).reduce((n, [k, v]) => n + utf8(k) + (v === undefined ? 0 : valueSize(v)), 0);

/** Write units for one non-transactional write of `item`. */
export const writeUnits = (item: Record<string, unknown>): number => Math.ceil(itemSize(item) / 1024);
