/**
 * Key order and page cursors. Every backend orders keys by their UTF-8 bytes (SQL `C`/binary
 * collations, etcd, Redis lex ranges), which is Unicode code point order; JavaScript's `<`
 * compares UTF-16 code units instead, which differs once astral characters meet U+E000..U+FFFF.
 */
import { createHash } from "node:crypto";
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

const CURSOR_VERSION = "k2";
const AUDIT_CURSOR_VERSION = "a2";
const MISMATCH = "must be a cursor returned by a previous page of the same listing";

/** A short digest that makes a cursor self-checking: a cursor mangled by hand, cut short or
 *  taken from another listing is refused instead of silently listing the wrong range. It is not
 *  a secret: a forged cursor can only start a page later inside the same prefix. */
function digest(text: string): string {
  return createHash("sha256")
    .update(`poison-store cursor\0${text}`)
    .digest("base64url")
    .slice(0, 16);
}

function seal(version: string, fields: readonly string[]): string {
  const body = Buffer.from(JSON.stringify(fields), "utf8").toString("base64url");
  return `${version}.${body}.${digest(`${version}.${body}`)}`;
}

function unseal(version: string, cursor: unknown, argument: string, count: number): string[] {
  if (typeof cursor !== "string") throw new InvalidArgumentError(argument, MISMATCH);
  const parts = cursor.split(".");
  if (parts.length !== 3 || parts[0] !== version || parts[2] !== digest(`${version}.${parts[1]}`))
    throw new InvalidArgumentError(argument, MISMATCH);
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(parts[1] as string, "base64url").toString("utf8"));
  } catch {
    throw new InvalidArgumentError(argument, MISMATCH);
  }
  if (
    !Array.isArray(fields) ||
    fields.length !== count ||
    !fields.every((f) => typeof f === "string" && f.isWellFormed() && !f.includes("\u0000"))
  )
    throw new InvalidArgumentError(argument, MISMATCH);
  return fields as string[];
}

/** An opaque page cursor of `listPoisons`: the listing's prefix and the last key it covered
 *  (both without namespace). */
export function encodeCursor(prefix: string, lastKey: string): string {
  return seal(CURSOR_VERSION, [prefix, lastKey]);
}

/** The last key covered by `cursor`, checked to come from a listing of `prefix` (a cursor of
 *  another prefix would widen the listing on range-scanning backends). */
export function decodeCursor(cursor: unknown, prefix: string, argument = "cursor"): string | null {
  if (cursor === undefined || cursor === null) return null;
  const [from, lastKey] = unseal(CURSOR_VERSION, cursor, argument, 2) as [string, string];
  if (from !== prefix || !lastKey.startsWith(prefix) || lastKey.length === 0)
    throw new InvalidArgumentError(argument, `${MISMATCH} (it belongs to another prefix)`);
  return lastKey;
}

/** An opaque cursor of `auditLog`: the driver's id of the last entry shown, and the key filter. */
export function encodeAuditCursor(key: string, lastId: string): string {
  return seal(AUDIT_CURSOR_VERSION, [key, lastId]);
}

export function decodeAuditCursor(
  cursor: unknown,
  key: string,
  argument = "cursor",
): string | null {
  if (cursor === undefined || cursor === null) return null;
  const [from, lastId] = unseal(AUDIT_CURSOR_VERSION, cursor, argument, 2) as [string, string];
  if (from !== key || lastId.length === 0)
    throw new InvalidArgumentError(argument, `${MISMATCH} (it belongs to another key)`);
  return lastId;
}
