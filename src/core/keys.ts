/**
 * Key order and page cursors. Every backend orders keys by their UTF-8 bytes (SQL `C`/binary
 * collations, etcd, Redis lex ranges), which is Unicode code point order; JavaScript's `<`
 * compares UTF-16 code units instead, which differs once astral characters meet U+E000..U+FFFF.
 */
import { InvalidArgumentError } from "./errors.js";

/** Code point (= UTF-8 byte) order for well-formed strings. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

// Surrogates (U+D800..U+DFFF) start astral code points, which sort after U+E000..U+FFFF.
function rank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** The smallest byte string greater than every string starting with `prefix`, or null when there
 *  is none (empty prefix). UTF-8 never contains the byte 0xFF, so incrementing the last byte works. */
export function prefixUpperBound(prefix: Uint8Array): Uint8Array | null {
  if (prefix.length === 0) return null;
  const bound = Uint8Array.from(prefix);
  const last = bound.length - 1;
  bound[last] = (bound[last] ?? 0) + 1;
  return bound;
}

const CURSOR_VERSION = "k1";

/** An opaque page cursor: the last key of a page (without namespace). */
export function encodeCursor(lastKey: string): string {
  return `${CURSOR_VERSION}.${Buffer.from(lastKey, "utf8").toString("base64url")}`;
}

export function decodeCursor(cursor: unknown, argument = "cursor"): string | null {
  if (cursor === undefined || cursor === null) return null;
  if (typeof cursor !== "string" || !cursor.startsWith(`${CURSOR_VERSION}.`)) {
    throw new InvalidArgumentError(argument, "must be a cursor returned by a previous page");
  }
  const key = Buffer.from(cursor.slice(CURSOR_VERSION.length + 1), "base64url").toString("utf8");
  if (key.length === 0)
    throw new InvalidArgumentError(argument, "must be a cursor returned by a previous page");
  return key;
}
