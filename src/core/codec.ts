/**
 * How records are laid out in storage, shared by every driver: SQL drivers store one column per
 * field ({@link toColumns} / {@link fromColumns}); key-value drivers store one JSON document
 * ({@link encodeRecord} / {@link decodeRecord}). Reading is forgiving on purpose: a stored value
 * that is malformed (written by hand, by another tool, or by a newer version) is still shown and
 * can still be cleared, and an unknown state reads as `poisoned`, so a doubt never frees a
 * resource.
 */
import type {
  AuditAction,
  AuditEntry,
  PoisonErrorInfo,
  PoisonRecord,
  PoisonState,
} from "./records.js";

/** One column per field; JSON text for `error` and `data`; null for absent fields. */
export interface RecordColumns {
  token: string;
  state: string;
  created_at: string;
  updated_at: string;
  heartbeat_at: string | null;
  /** Absent (undefined) in rows of a layout older than this column. */
  heartbeat_interval_ms?: number | string | null;
  operation: string | null;
  owner: string | null;
  error: string | null;
  data: string | null;
}

/** The columns of {@link RecordColumns} in their stored order (after the key), for drivers that
 *  spell them out: SQL column lists, Redis hash fields. */
export const RECORD_COLUMN_NAMES = [
  "token",
  "state",
  "created_at",
  "updated_at",
  "heartbeat_at",
  "heartbeat_interval_ms",
  "operation",
  "owner",
  "error",
  "data",
] as const satisfies readonly (keyof RecordColumns)[];

export function toColumns(record: PoisonRecord): RecordColumns {
  return {
    token: record.token,
    state: record.state,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    heartbeat_at: record.heartbeatAt ?? null,
    heartbeat_interval_ms: record.heartbeatIntervalMs ?? null,
    operation: record.operation ?? null,
    owner: record.owner ?? null,
    error: record.error ? JSON.stringify(record.error) : null,
    data: record.data === undefined ? null : JSON.stringify(record.data),
  };
}

export function fromColumns(key: string, row: RecordColumns): PoisonRecord {
  const record: PoisonRecord = {
    key,
    token: row.token,
    state: parseState(row.state),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.heartbeat_at !== null) record.heartbeatAt = row.heartbeat_at;
  const interval = parseInterval(row.heartbeat_interval_ms);
  if (interval !== undefined) record.heartbeatIntervalMs = interval;
  if (row.operation !== null) record.operation = row.operation;
  if (row.owner !== null) record.owner = row.owner;
  if (row.error !== null) record.error = parseErrorInfo(parseJson(row.error), row.updated_at);
  if (row.data !== null) record.data = parseJson(row.data);
  return record;
}

/** The record as one JSON document (the key is stored beside it, not inside). */
export function encodeRecord(record: PoisonRecord): string {
  const { key: _key, ...rest } = record;
  return JSON.stringify(rest);
}

/** Read a JSON document written by {@link encodeRecord}, or anything else, into a record. */
export function decodeRecord(
  key: string,
  text: string,
  fallback: { token: string; at: string },
): PoisonRecord {
  const value = parseJson(text);
  const doc = (value && typeof value === "object" ? value : {}) as Record<string, unknown>;
  const str = (field: string): string | undefined =>
    typeof doc[field] === "string" ? (doc[field] as string) : undefined;
  const record: PoisonRecord = {
    key,
    token: str("token") ?? fallback.token,
    state: parseState(doc.state),
    createdAt: str("createdAt") ?? fallback.at,
    updatedAt: str("updatedAt") ?? fallback.at,
  };
  const heartbeatAt = str("heartbeatAt");
  if (heartbeatAt !== undefined) record.heartbeatAt = heartbeatAt;
  const interval = parseInterval(doc.heartbeatIntervalMs);
  if (interval !== undefined) record.heartbeatIntervalMs = interval;
  const operation = str("operation");
  if (operation !== undefined) record.operation = operation;
  const owner = str("owner");
  if (owner !== undefined) record.owner = owner;
  if (doc.error !== undefined) record.error = parseErrorInfo(doc.error, record.updatedAt);
  if (doc.data !== undefined) record.data = doc.data;
  if (value === null || typeof value !== "object") record.data = { malformed: text };
  return record;
}

/** A stored heartbeat interval (a number, or its text from a text column); anything else is
 *  dropped, so a malformed value reads as "no promise of heartbeats" (not live). */
export function parseInterval(value: unknown): number | undefined {
  const n = typeof value === "string" && value !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** An unknown state is read as `poisoned`: when in doubt, keep the resource quarantined. */
export function parseState(value: unknown): PoisonState {
  return value === "in-progress" ? "in-progress" : "poisoned";
}

/** A stored value that is not valid JSON is kept visible, not dropped. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { malformed: text };
  }
}

export function parseErrorInfo(value: unknown, fallbackAt: string): PoisonErrorInfo {
  const doc = value as Partial<PoisonErrorInfo> | null;
  if (doc && typeof doc === "object" && typeof doc.message === "string") {
    const info: PoisonErrorInfo = {
      name: typeof doc.name === "string" ? doc.name : "Error",
      message: doc.message,
      at: typeof doc.at === "string" ? doc.at : fallbackAt,
    };
    if (typeof doc.stack === "string") info.stack = doc.stack;
    return info;
  }
  return { name: "MalformedError", message: JSON.stringify(value), at: fallbackAt };
}

/** Audit entries share one shape on every backend; `record` is stored as JSON text. */
export interface AuditColumns {
  at: string;
  action: string;
  actor: string;
  reason: string;
  token: string | null;
  record: string | null;
  /** JSON object of extra facts (`{"evenIfAlive":true}`); absent in older layouts. */
  detail?: string | null;
}

/** The `detail` column of an audit row for `intent`, or null when there is nothing to add. */
export function auditDetail(intent: { evenIfAlive?: true }): string | null {
  return intent.evenIfAlive ? JSON.stringify({ evenIfAlive: true }) : null;
}

export function fromAuditColumns(id: string, key: string, row: AuditColumns): AuditEntry {
  const entry: AuditEntry = {
    id,
    at: row.at,
    action: row.action as AuditAction,
    key,
    actor: row.actor,
    reason: row.reason,
  };
  if (row.token !== null) entry.token = row.token;
  if (typeof row.detail === "string") {
    const detail = parseJson(row.detail) as { evenIfAlive?: unknown } | null;
    if (detail && typeof detail === "object" && detail.evenIfAlive === true)
      entry.evenIfAlive = true;
  }
  if (row.record !== null) {
    const record = parseJson(row.record);
    if (record && typeof record === "object") entry.record = record as PoisonRecord;
  }
  return entry;
}
