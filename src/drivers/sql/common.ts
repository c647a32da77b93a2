/**
 * What the SQL drivers share below the SQL core's client (./client.ts): identifier checks, key
 * bytes and ordering, the bounded step on one connection, and the decisions of puts and removes
 * from the rows a statement answered (SQLite's driver uses the last ones too).
 */
import { auditDetail, toColumns } from "../../core/codec.js";
import { deadlinesOf } from "../../core/deadlines.js";
import {
  type AuditIntent,
  type ListFilter,
  type PutOutcome,
  type RemoveOutcome,
  sameVersion,
} from "../../core/driver.js";
import { BackendUnavailableError, InvalidArgumentError } from "../../core/errors.js";
import { prefixUpperBound } from "../../core/keys.js";
import type { PoisonRecord } from "../../core/records.js";
import { checkDuration } from "../../core/validation.js";

/** A table name: `name` or `schema.name`, each part a plain SQL identifier (quoted when used). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/;

export function checkTableName(argument: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !IDENTIFIER.test(value)) {
    throw new InvalidArgumentError(
      argument,
      "must be a table name of letters, digits and underscores (optionally schema.table), at most 63 characters per part",
    );
  }
  return value;
}

/** A driver's timeout option, in whole milliseconds. */
export function checkMillis(argument: string, value: unknown, fallback: number): number {
  return Math.ceil(checkDuration(argument, value, fallback));
}

/** Quote each part of a checked table name with `quote` (`"` for PostgreSQL, `` ` `` for MySQL). */
export function quoteTable(name: string, quote: Quote): string {
  return name
    .split(".")
    .map((part) => quoteIdentifier(part, quote))
    .join(".");
}

/** `"` for PostgreSQL identifiers, `` ` `` for MySQL's. */
export type Quote = '"' | "`";

/** One identifier, quoted, any `quote` inside doubled: always one identifier, whatever it holds. */
export function quoteIdentifier(name: string, quote: Quote): string {
  return `${quote}${name.replaceAll(quote, quote + quote)}${quote}`;
}

/** `schema.table` (or `table`) of names as given (not checked: GreptimeDB's), each quoted. */
export function quoteQualified(schema: string | null, table: string, quote: Quote): string {
  const quoted = quoteIdentifier(table, quote);
  return schema === null ? quoted : `${quoteIdentifier(schema, quote)}.${quoted}`;
}

export function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

/** Above every UTF-8 string: UTF-8 never contains the byte 0xFF. */
const TOP = Buffer.from([0xff]);

/** The exclusive upper bound of the byte range of keys starting with `prefix`. */
export function upperBound(prefix: string): Buffer {
  const bound = prefixUpperBound(keyBytes(prefix));
  return bound ? Buffer.from(bound) : TOP;
}

/** Keys in byte order: every transaction locks rows in this one order, so two batches over
 *  overlapping keys queue behind each other instead of deadlocking. */
export function sortedByBytes<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  return [...items].sort((a, b) => Buffer.compare(keyBytes(keyOf(a)), keyBytes(keyOf(b))));
}

/** An audit cursor is the decimal id of the last entry shown. */
export function auditIdBound(before: string | null): string | null {
  if (before === null) return "9223372036854775807";
  return /^\d{1,19}$/.test(before) ? before : null;
}

/**
 * Take a connection, run `body` on it and hand it back with `settle`: without an error it goes
 * back to the pool; with one (a failure, or no answer within `ms` for the whole step, taking the
 * connection included) it must be destroyed, so a broken or half-used connection never serves
 * another call. The runtime's own per-call bound already answers the caller; this one makes sure
 * the client itself keeps no hung connection around for the next call. Every rejection goes
 * through `classify` (here rather than in a `.catch` after: one promise less per statement).
 */
export function onConnection<C, T>(
  ms: number,
  what: string,
  acquire: () => Promise<C>,
  body: (connection: C) => Promise<T>,
  settle: (connection: C, error?: Error) => void,
  classify: (error: unknown) => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let connection: C | undefined;
    let finished = false;
    const deadlines = deadlinesOf(ms);
    // A classify that throws must still settle the call, with what it threw.
    const fail = (error: unknown): void => {
      let typed: unknown;
      try {
        typed = classify(error);
      } catch (thrown) {
        typed = thrown;
      }
      reject(typed);
    };
    const finish = (error?: Error): boolean => {
      if (finished) return false;
      finished = true;
      deadlines.settle(deadline);
      if (connection !== undefined) settle(connection, error);
      return true;
    };
    const deadline = deadlines.add(() => {
      const error = new Error(`${what}: no answer within ${ms} ms; connection discarded`);
      if (finish(error)) fail(error);
    });
    acquire().then(
      (acquired) => {
        if (finished) {
          settle(acquired, new Error(`${what}: connection arrived after the call gave up`));
          return;
        }
        connection = acquired;
        body(acquired).then(
          (value) => {
            if (finish()) resolve(value);
          },
          (error: unknown) => {
            if (finish(error instanceof Error ? error : new Error(String(error)))) fail(error);
          },
        );
      },
      (error: unknown) => {
        if (finish()) fail(error);
      },
    );
  });
}

/** The put statement's answer for one record: the row as it stands, and whether it inserted it. */
export interface PutRow {
  record: PoisonRecord;
  inserted: boolean;
}

/** Rows as returned by the put statement, one per record (same order) → the driver outcome. */
export function putOutcome(
  backend: string,
  records: readonly PoisonRecord[],
  found: readonly (PutRow | undefined)[],
): PutOutcome {
  const rows = found.map((row) => {
    if (!row) throw new BackendUnavailableError(backend, "the put statement returned no row");
    return row;
  });
  const conflicts = rows
    .filter((row, i) => row.record.token !== records[i]?.token)
    .map((row) => row.record);
  if (conflicts.length > 0) return { ok: false, conflicts };
  return {
    ok: true,
    records: rows.map((row) => row.record),
    created: rows.map((row) => row.inserted),
  };
}

/** A record's parameters, in the order both SQL drivers bind them: the key's bytes, then the
 *  record's ten columns. */
export function recordParameters(record: PoisonRecord): unknown[] {
  const c = toColumns(record);
  return [
    keyBytes(record.key),
    c.token,
    c.state,
    c.created_at,
    c.updated_at,
    c.heartbeat_at,
    c.heartbeat_interval_ms,
    c.operation,
    c.owner,
    c.error,
    c.data,
  ];
}

/** The audit entry a put writes when it really inserts: when, what, who, why and the token
 *  asked for, all null without an entry. */
export function putAuditParameters(audit: AuditIntent | undefined): unknown[] {
  return [
    audit?.at ?? null,
    audit?.action ?? null,
    audit?.actor ?? null,
    audit?.reason ?? null,
    audit?.token ?? null,
  ];
}

/** The put statement's parameters: {@link recordParameters}, {@link putAuditParameters}, then
 *  the record as the audit entry keeps it (null without an entry). */
export function putParameters(record: PoisonRecord, audit: AuditIntent | undefined): unknown[] {
  return [
    ...recordParameters(record),
    ...putAuditParameters(audit),
    audit ? JSON.stringify(record) : null,
  ];
}

/** An audit row's values, in the order the SQL drivers' INSERT names the columns: when, what,
 *  the key's bytes, who, why, the token asked for, the record as it stood, and the detail. */
export function auditValues(intent: AuditIntent, record: PoisonRecord): unknown[] {
  return [
    intent.at,
    intent.action,
    keyBytes(record.key),
    intent.actor,
    intent.reason,
    intent.token ?? null,
    JSON.stringify(record),
    auditDetail(intent),
  ];
}

/**
 * The decision of a batch remove over rows read under lock: which present records conflict
 * (another token, or — with `expected` — not the version the caller read) and whether a key the
 * caller read as present has vanished. `held` holds the present rows, in any order.
 */
export function removeDecision(
  keys: readonly string[],
  held: readonly PoisonRecord[],
  token: string | null,
  expected: readonly (PoisonRecord | null)[] | undefined,
): RemoveOutcome {
  const byKey = new Map(held.map((record) => [record.key, record]));
  const conflicts: PoisonRecord[] = [];
  let changed = false;
  keys.forEach((key, i) => {
    const now = byKey.get(key);
    const seen = expected?.[i] ?? null;
    if (now && token !== null && now.token !== token) conflicts.push(now);
    else if (expected && (now ? !seen || !sameVersion(now, seen) : seen)) {
      changed = true;
      if (now) conflicts.push(now);
    }
  });
  if (conflicts.length > 0 || changed) return { ok: false, conflicts };
  return { ok: true, removed: inCallerOrder([...held], keys) };
}

/** `value` for a filter parameter (NULL matches every row). */
export function filterValues(filter: ListFilter | undefined): (string | null)[] {
  return [filter?.token ?? null, filter?.state ?? null, filter?.operation ?? null];
}

/** The outcome of a single-key delete-if-token-matches from the row it found and locked (none:
 *  the key was absent). `token` null is the operator's force-delete: any holder goes. */
export function removeOutcome(held: PoisonRecord | undefined, token: string | null): RemoveOutcome {
  if (!held) return { ok: true, removed: [] };
  if (token !== null && held.token !== token) return { ok: false, conflicts: [held] };
  return { ok: true, removed: [held] };
}

/** `records` in the order of the caller's `keys` (they were read in key byte order, to lock). */
export function inCallerOrder(records: PoisonRecord[], keys: readonly string[]): PoisonRecord[] {
  const order = new Map(keys.map((k, i) => [k, i]));
  return records.sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
}

/** A transaction body's way to say "roll back, and answer this". */
export class Rollback<T> {
  constructor(readonly value: T) {}
}
