/**
 * The etcd driver's wire codec: the JSON gateway's shapes (base64 keys and values, revisions as
 * decimal strings), the request builders of a transaction, and how the stored values read back
 * as records, tokens and audit entries. No I/O here.
 *
 * The builders are named for what they build (`rangeOp`, `putOp`, `deleteOp`, `unchangedSince`),
 * never for a driver method: `put` is only the driver's.
 */
import { decodeRecord } from "../../core/codec.js";
import type { AuditIntent, RecordPatch } from "../../core/driver.js";
import { prefixUpperBound } from "../../core/keys.js";
import type { AuditEntry, PoisonRecord } from "../../core/records.js";

/** What a key written without a record (by GreptimeDB) reads as: the time is unknown. */
export const UNKNOWN_TIME = "1970-01-01T00:00:00.000Z";

/** One key-value as read, its key and value decoded from base64. */
export interface Kv {
  key: Buffer;
  value: Buffer;
  createRevision: string;
  modRevision: string;
}

/** A key-value as the gateway sends it. */
export interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
}

export type Compare = Record<string, string>;
export type RequestOp = Record<string, Record<string, string | boolean>>;

/** A transaction to send: compares, and the operations of either branch. */
export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResult {
  succeeded: boolean;
  /** One entry per op: the kvs of a range, or the prev_kvs of a delete. */
  responses: Kv[][];
  revision: string;
}

/** One key's state as read: its poison key and its record key. */
export interface Slot {
  poison: Kv | null;
  record: Kv | null;
}

/** The state of a call's keys, in the call's order. */
export interface Snapshot {
  slots: Slot[];
}

export const utf8 = (text: string): Buffer => Buffer.from(text, "utf8");
export const b64 = (bytes: Buffer): string => bytes.toString("base64");

/** prefixUpperBound as a Buffer (it returns a plain Uint8Array), or null for an empty prefix. */
export function upperBound(prefix: Buffer): Buffer | null {
  const bound = prefixUpperBound(prefix);
  return bound ? Buffer.from(bound) : null;
}

export function fromRawKv(raw: RawKv): Kv {
  return {
    key: Buffer.from(raw.key ?? "", "base64"),
    value: Buffer.from(raw.value ?? "", "base64"),
    createRevision: raw.create_revision ?? "0",
    modRevision: raw.mod_revision ?? "0",
  };
}

/** A `/v3/kv/txn` answer, its responses decoded. */
export function parseTxnReply(reply: Record<string, unknown>): TxnResult {
  const responses = (
    (reply.responses as Record<string, Record<string, unknown>>[] | undefined) ?? []
  ).map((op) => {
    const inner = op.response_range ?? op.response_delete_range ?? op.response_put ?? {};
    const kvs = (inner.kvs ?? inner.prev_kvs ?? []) as RawKv[];
    return kvs.map(fromRawKv);
  });
  return {
    succeeded: reply.succeeded === true,
    responses,
    revision: String((reply.header as { revision?: string } | undefined)?.revision ?? "0"),
  };
}

/** The slots of `count` keys from the answers of {@link readOps} (two ranges per key). */
export function snapshotOf(responses: Kv[][], count: number): Snapshot {
  const slots: Slot[] = [];
  for (let i = 0; i < count; i++) {
    slots.push({
      poison: responses[2 * i]?.[0] ?? null,
      record: responses[2 * i + 1]?.[0] ?? null,
    });
  }
  return { slots };
}

/** A snapshot of keys all absent: a put's first guess. */
export function absentSnapshot(count: number): Snapshot {
  return { slots: Array.from({ length: count }, () => ({ poison: null, record: null })) };
}

export function rangeOp(key: Buffer, end?: Buffer, limit?: number): RequestOp {
  const request: Record<string, string> = { key: b64(key) };
  if (end) request.range_end = b64(end);
  if (limit !== undefined) request.limit = String(limit);
  return { request_range: request };
}

export function putOp(key: Buffer, value: Buffer): RequestOp {
  return { request_put: { key: b64(key), value: b64(value) } };
}

export function deleteOp(key: Buffer): RequestOp {
  return { request_delete_range: { key: b64(key), prev_kv: true } };
}

/** Unchanged since read: same mod revision, or still absent. */
export function unchangedSince(key: Buffer, seen: Kv | null): Compare {
  return seen
    ? { key: b64(key), target: "MOD", result: "EQUAL", mod_revision: seen.modRevision }
    : { key: b64(key), target: "CREATE", result: "EQUAL", create_revision: "0" };
}

/** The key holds exactly `value`. */
export function valueEquals(key: Buffer, value: Buffer): Compare {
  return { key: b64(key), target: "VALUE", result: "EQUAL", value: b64(value) };
}

/** GreptimeDB's poison value, byte for byte (serde_json's compact form of `{token}`). */
export function poisonValue(token: string): string {
  return JSON.stringify({ token });
}

/** The token in a poison value; a value that is not `{"token": string}` is its own token, so it
 *  still conflicts and can still be cleared by force. */
export function tokenOf(value: Buffer): string {
  const text = value.toString("utf8");
  try {
    const doc = JSON.parse(text) as { token?: unknown } | null;
    if (doc && typeof doc === "object" && typeof doc.token === "string") return doc.token;
  } catch {
    // fall through
  }
  return text;
}

/** The record of a poison key: its own record key when that belongs to this poison key (written
 *  in the same or a later revision), else a conservative stand-in for a key written by another
 *  tool (GreptimeDB): state `poisoned`, times unknown. The poison key's token always wins. */
export function decodeSlot(storageKey: string, poison: Kv, record: Kv | null): PoisonRecord {
  const token = tokenOf(poison.value);
  if (record && BigInt(record.modRevision) >= BigInt(poison.createRevision)) {
    const decoded = decodeRecord(storageKey, record.value.toString("utf8"), {
      token,
      at: UNKNOWN_TIME,
    });
    return { ...decoded, token };
  }
  return standIn(storageKey, token);
}

/** A poison key without a record of this driver (written by GreptimeDB): poisoned, times
 *  unknown. */
export function standIn(storageKey: string, token: string): PoisonRecord {
  return {
    key: storageKey,
    token,
    state: "poisoned",
    createdAt: UNKNOWN_TIME,
    updatedAt: UNKNOWN_TIME,
  };
}

/** The audit entry `intent` writes for `record` (its id is given where it is stored). Shared with
 *  the greptimedb layout's SQL storage, which writes the same JSON. */
export function auditEntry(intent: AuditIntent, record: PoisonRecord): Omit<AuditEntry, "id"> {
  const entry: Omit<AuditEntry, "id"> = {
    at: intent.at,
    action: intent.action,
    key: record.key,
    actor: intent.actor,
    reason: intent.reason,
    record,
  };
  if (intent.token !== undefined) entry.token = intent.token;
  if (intent.evenIfAlive) entry.evenIfAlive = true;
  return entry;
}

/** A record with a token-checked update's fields applied. */
export function applyPatch(record: PoisonRecord, patch: RecordPatch): PoisonRecord {
  const out: PoisonRecord = { ...record, updatedAt: patch.updatedAt };
  if (patch.state !== undefined) out.state = patch.state;
  if (patch.error !== undefined) out.error = patch.error;
  if (patch.heartbeatAt !== undefined) out.heartbeatAt = patch.heartbeatAt;
  if (patch.heartbeatIntervalMs !== undefined) out.heartbeatIntervalMs = patch.heartbeatIntervalMs;
  return out;
}

/** An entry's id from where it is stored: its revision (20 digits) and its key's suffix. */
export function auditId(kv: Kv): string {
  const name = kv.key.toString("utf8");
  return `${kv.modRevision.padStart(20, "0")}-${name.slice(name.lastIndexOf("/") + 1)}`;
}

export function parseAuditId(id: string): { revision: bigint } | null {
  const match = /^(\d{20})-[^/]+$/.exec(id);
  return match ? { revision: BigInt(match[1] as string) } : null;
}

export function parseAuditEntry(id: string, text: string): AuditEntry | null {
  try {
    const entry = JSON.parse(text) as AuditEntry;
    if (!entry || typeof entry.key !== "string") return null;
    return { ...entry, id };
  } catch {
    return null;
  }
}
