/**
 * The MySQL/MariaDB native change feed (`PoisonDriver.watch`, contract `DriverWatch` in
 * src/core/watch.ts): a change log table written by triggers in the same transaction as each
 * change, read by polling its AUTO_INCREMENT ids.
 *
 * **Writing.** Three triggers on the keys table append one row per changed key: `put` after an
 * INSERT, `poisoned` or `touched` after an UPDATE that changed a column, `deleted` or
 * `force-deleted` after a DELETE (the remove procedure sets the session variable
 * `@poison_store_change` around an operator's force-delete). A trigger runs inside the statement that fired it, so the
 * log row commits or rolls back with the change, on every path (single-key procedures, batches,
 * updates, and older library versions writing the same table), and costs the write one more row
 * insert, no extra statement or round trip. Each row carries the record after the change (the
 * removed one for deletes) in the keys table's columns.
 *
 * **Order.** Changes of one key are serialized by its row lock, and each log id is allocated
 * after that lock is taken, so one key's ids grow in its commit order: when a change is visible,
 * every earlier change of its key is too. Reading `ORDER BY id` in one statement (one snapshot)
 * therefore yields each key's changes in commit order.
 *
 * **Ids that become visible late.** Ids are allocated at insert time, not at commit: a
 * transaction that allocated id 7 may commit after another committed id 8. A poller that moved
 * past 8 would lose 7. So the feed keeps the ids below its high-water mark that it has not seen
 * (gaps) and asks for them again in every poll (`WHERE id > high OR id IN (gaps)`). A gap is
 * either a transaction still in flight or an id that will never appear (rolled back, a deadlock
 * victim, a burned AUTO_INCREMENT value). It is resolved without any clock assumption on the
 * writers: once a gap has been seen for {@link PROBE_AGE_MS}, a locking read
 * (`SELECT … FOR UPDATE`, READ COMMITTED so it takes no gap locks that would block writers)
 * waits for the row's inserting transaction, if any, to end, and then returns the row if it
 * committed; an id with no row after that is dead and dropped. (The probe age only covers the
 * microseconds between an id's allocation and its row's insertion, inside one statement.) Gaps
 * are part of the position, so a resumed watch keeps waiting for them.
 *
 * **Trimming.** Every {@link TRIM_EVERY_WRITES} writes, a driver deletes the entries older than
 * the newest `retention` ones, oldest first, always keeping the entry it trimmed up to; so every
 * id below the table's smallest id may be gone and none above it is. A `from` whose unseen ids
 * reach below that smallest id cannot be resumed: the feed answers `resync`.
 */

import { RECORD_COLUMN_NAMES } from "../../core/codec.js";
import { sleep } from "../../core/retry.js";
import type { DriverChange, DriverWatchEvent, DriverWatchQuery } from "../../core/watch.js";
import { KEY_TYPE, RECORD_COLUMN_DDL } from "./statements.js";

/** Default polling interval of the feed. */
export const DEFAULT_CHANGE_POLL_MS = 500;
/** Default number of log entries kept for resuming. */
export const DEFAULT_CHANGE_RETENTION = 10_000;
/** Log rows read per poll at most (a busy log is read again at once). */
export const CHANGE_BATCH = 500;
/** A gap this old is probed with a locking read. */
export const PROBE_AGE_MS = 1000;
/** How long a probe waits for an in-flight transaction's row lock, in seconds (then it probes
 *  again at the next poll). */
export const PROBE_LOCK_WAIT_S = 1;
/** Gaps tracked at most; past it the oldest are probed at once. */
export const MAX_GAPS = 1000;
/** How far below the newest id a new watch looks for ids still in flight. */
export const START_WINDOW = 1000;
/** A driver trims the log once per this many of its writes. */
export const TRIM_EVERY_WRITES = 1000;
/** Rows deleted per trimming statement, and statements per trim at most. */
const TRIM_CHUNK = 5000;
const TRIM_STATEMENTS = 10;

export const CHANGE_TYPES = ["put", "poisoned", "touched", "deleted", "force-deleted"] as const;

/** The columns of the keys table a log row copies, after `key`. */
const RECORD_FIELDS = RECORD_COLUMN_NAMES;

/** The change log's table and triggers. `keysTable`/`logTable` are quoted names; `trigger(verb)`
 *  names a trigger. */
export function changeLogDdl(
  keysTable: string,
  logTable: string,
  trigger: (verb: string) => string,
): { table: string; triggers: string[] } {
  const columns = `type, \`key\`, at, ${RECORD_FIELDS.join(", ")}`;
  const values = (row: "NEW" | "OLD", type: string, at: string) =>
    `(${type}, ${row}.\`key\`, ${at}, ${RECORD_FIELDS.map((c) => `${row}.${c}`).join(", ")})`;
  // The server's UTC time as an ISO string with milliseconds (the runtime's own format).
  const serverNow = "CONCAT(LEFT(DATE_FORMAT(UTC_TIMESTAMP(3), '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z')";
  const unchanged = RECORD_FIELDS.map((c) => `NEW.${c} <=> OLD.${c}`).join(" AND ");
  return {
    table: `CREATE TABLE IF NOT EXISTS ${logTable} (
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
      type VARBINARY(16) NOT NULL,
      \`key\` ${KEY_TYPE} NOT NULL,
      at VARBINARY(64) NOT NULL,
      ${RECORD_COLUMN_DDL},
      PRIMARY KEY (id)
    ) ENGINE = InnoDB`,
    triggers: [
      `CREATE TRIGGER ${trigger("insert")} AFTER INSERT ON ${keysTable} FOR EACH ROW
        INSERT INTO ${logTable} (${columns}) VALUES ${values("NEW", "'put'", "NEW.updated_at")}`,
      // An UPDATE that changed no column is no change (an older library's
      // ON DUPLICATE KEY UPDATE on a held key fires this trigger too).
      `CREATE TRIGGER ${trigger("update")} AFTER UPDATE ON ${keysTable} FOR EACH ROW
        BEGIN
          IF NOT (${unchanged} AND NEW.\`key\` = OLD.\`key\`) THEN
            INSERT INTO ${logTable} (${columns}) VALUES ${values(
              "NEW",
              "IF(NEW.state = 'poisoned' AND NOT (OLD.state <=> 'poisoned'), 'poisoned', 'touched')",
              "NEW.updated_at",
            )};
          END IF;
        END`,
      `CREATE TRIGGER ${trigger("delete")} AFTER DELETE ON ${keysTable} FOR EACH ROW
        INSERT INTO ${logTable} (${columns}) VALUES ${values(
          "OLD",
          "IF(@poison_store_change = 'force-deleted', 'force-deleted', 'deleted')",
          `COALESCE(@poison_store_change_at, ${serverNow})`,
        )}`,
    ],
  };
}

/** A row of the change log, as mysql2 returns binary columns. */
export interface ChangeRow {
  id: number | string;
  type: Buffer;
  key: Buffer;
  at: Buffer;
  token: Buffer;
  state: Buffer;
  created_at: Buffer;
  updated_at: Buffer;
  heartbeat_at: Buffer | null;
  heartbeat_interval_ms: number | string | null;
  operation: Buffer | null;
  owner: Buffer | null;
  error: Buffer | null;
  data: Buffer | null;
}

/** What the feed needs of the driver. */
export interface ChangeLogAccess {
  logTable: string;
  /** Rows of one statement on a pooled connection (numbers and bytes only). */
  rows<R>(sql: string, values: unknown[]): Promise<R[]>;
  /** Statements run in order on one pooled connection; the rows of the one that returned
   *  rows (the SELECT). */
  onOneConnection<R>(statements: [string, unknown[]][]): Promise<R[]>;
  /** A change log row → the change (record included). */
  change(row: ChangeRow, position: string): DriverChange;
  /** Whether an error means the log table does not exist (yet). */
  missingTable(error: unknown): boolean;
  /** Whether an error is a lock wait that timed out (a probe that waits again later). */
  lockTimeout(error: unknown): boolean;
  intervalMs: number;
  clock?: () => number;
}

/** Where a feed stands: every id up to `high` seen, except `gaps` (id → when first missed). */
interface Cursor {
  high: number;
  gaps: Map<number, number>;
}

/** `high`, or `high:gap,gap,…` with the unseen ids below it. */
export function encodePosition(cursor: Cursor): string {
  return cursor.gaps.size === 0
    ? String(cursor.high)
    : `${cursor.high}:${[...cursor.gaps.keys()].sort((a, b) => a - b).join(",")}`;
}

export function decodePosition(position: string, now: number): Cursor | null {
  const match = /^(\d{1,16})(?::(\d{1,16}(?:,\d{1,16})*))?$/.exec(position);
  if (!match) return null;
  const high = Number(match[1]);
  const gaps = new Map<number, number>();
  for (const gap of match[2]?.split(",") ?? []) {
    const id = Number(gap);
    if (!Number.isSafeInteger(id) || id >= high) return null;
    gaps.set(id, now);
  }
  return Number.isSafeInteger(high) ? { high, gaps } : null;
}

/** The feed: see the module comment. */
export async function* changeFeed(
  access: ChangeLogAccess,
  { prefix, from, signal }: DriverWatchQuery,
): AsyncGenerator<DriverWatchEvent> {
  const now = access.clock ?? Date.now;
  const log = access.logTable;
  const rowsOrEmpty = async <R>(sql: string, values: unknown[]): Promise<R[]> => {
    try {
      return await access.rows<R>(sql, values);
    } catch (error) {
      // No log yet (a store no write has initialized with this version): nothing to read; the
      // first write creates it, with ids from 1.
      if (access.missingTable(error)) return [];
      throw error;
    }
  };

  /** A cursor at the newest id, waiting for the ids near it that may still be in flight. */
  const current = async (): Promise<Cursor> => {
    const [top] = await rowsOrEmpty<{ high: number | string | null }>(
      `SELECT MAX(id) AS high FROM ${log}`,
      [],
    );
    const high = Number(top?.high ?? 0);
    const gaps = new Map<number, number>();
    if (high > 1) {
      const low = Math.max(0, high - START_WINDOW);
      const seen = await rowsOrEmpty<{ id: number | string }>(
        `SELECT id FROM ${log} WHERE id > ? AND id < ? ORDER BY id`,
        [low, high],
      );
      const present = new Set(seen.map((row) => Number(row.id)));
      for (let id = low + 1; id < high; id++) if (!present.has(id)) gaps.set(id, now());
    }
    return { high, gaps };
  };

  /** Whether every id the cursor has not seen is still in the log (none trimmed). */
  const resumable = async (cursor: Cursor): Promise<boolean> => {
    const [bounds] = await rowsOrEmpty<{
      low: number | string | null;
      high: number | string | null;
    }>(`SELECT MIN(id) AS low, MAX(id) AS high FROM ${log}`, []);
    if (bounds?.high === null || bounds?.high === undefined) return cursor.high === 0;
    const lowest = Math.min(cursor.high + 1, ...cursor.gaps.keys());
    // Trimming keeps the entry it trimmed up to: ids below MIN(id) may be gone, none above.
    return lowest >= Number(bounds.low) && cursor.high <= Number(bounds.high);
  };

  let cursor: Cursor | null = from === null ? null : decodePosition(from, now());
  if (cursor && !(await resumable(cursor))) cursor = null;
  if (cursor) {
    yield { type: "ready", position: from as string };
  } else {
    cursor = await current();
    yield { type: from === null ? "ready" : "resync", position: encodePosition(cursor) };
  }
  const state = cursor;

  /** Apply one row to the cursor; the change to yield, if under the prefix. */
  const take = (row: ChangeRow): DriverChange | null => {
    const id = Number(row.id);
    if (state.gaps.has(id)) {
      state.gaps.delete(id);
    } else if (id > state.high) {
      for (let missing = state.high + 1; missing < id; missing++) state.gaps.set(missing, now());
      state.high = id;
    } else {
      return null; // seen already (a probe and a poll both found it)
    }
    if (!row.key.toString("utf8").startsWith(prefix)) return null;
    return access.change(row, encodePosition(state));
  };

  const columns = `id, type, \`key\`, at, ${RECORD_FIELDS.join(", ")}`;
  while (!signal.aborted) {
    // Gaps past the cap are probed now, oldest first, so the position stays bounded.
    const gapIds = [...state.gaps.keys()].sort((a, b) => a - b);
    const ripe = gapIds.filter(
      (id, i) => i < gapIds.length - MAX_GAPS || now() - (state.gaps.get(id) ?? 0) >= PROBE_AGE_MS,
    );
    const polled = gapIds.slice(-MAX_GAPS);
    const found = await rowsOrEmpty<ChangeRow>(
      `SELECT ${columns} FROM ${log} WHERE id > ?${
        polled.length > 0 ? ` OR id IN (${polled.map(() => "?").join(", ")})` : ""
      } ORDER BY id LIMIT ${CHANGE_BATCH}`,
      [state.high, ...polled],
    );
    for (const row of found) {
      const change = take(row);
      if (signal.aborted) return;
      if (change) yield change;
    }
    const stillMissing = ripe.filter((id) => state.gaps.has(id));
    if (stillMissing.length > 0) {
      let probed: ChangeRow[] | null = null;
      try {
        probed = await access.onOneConnection<ChangeRow>([
          // A short lock wait (the feed delivers nothing else while it waits), restored after.
          [
            `SET @poison_store_lock_wait = @@SESSION.innodb_lock_wait_timeout, SESSION innodb_lock_wait_timeout = ${PROBE_LOCK_WAIT_S}`,
            [],
          ],
          // The next statement only: READ COMMITTED takes no gap locks, so the probe never
          // blocks a writer's insert; it still waits for an uncommitted row's lock.
          ["SET TRANSACTION ISOLATION LEVEL READ COMMITTED", []],
          [
            `SELECT ${columns} FROM ${log} WHERE id IN (${stillMissing.map(() => "?").join(", ")}) ORDER BY id FOR UPDATE`,
            stillMissing,
          ],
          ["SET SESSION innodb_lock_wait_timeout = @poison_store_lock_wait", []],
        ]);
      } catch (error) {
        // A transaction still holds the row after a whole lock wait: probe again next time.
        if (!access.lockTimeout(error) && !access.missingTable(error)) throw error;
      }
      if (probed) {
        for (const row of probed) {
          const change = take(row);
          if (signal.aborted) return;
          if (change) yield change;
        }
        // Waited for, and no row: rolled back or never used.
        for (const id of stillMissing) state.gaps.delete(id);
      }
    }
    if (found.length >= CHANGE_BATCH) continue;
    if (!(await sleep(access.intervalMs, signal))) return;
  }
}

/**
 * Delete the log entries older than the newest `retention` ones, oldest first, keeping the entry
 * at the boundary (the resumability rule above relies on it). Bounded: at most
 * TRIM_STATEMENTS × TRIM_CHUNK rows per call.
 */
export async function trimChangeLog(
  access: Pick<ChangeLogAccess, "rows" | "logTable">,
  retention: number,
  deleted: (sql: string, values: unknown[]) => Promise<number>,
): Promise<void> {
  const log = access.logTable;
  const [top] = await access.rows<{ high: number | string | null }>(
    `SELECT MAX(id) AS high FROM ${log}`,
    [],
  );
  if (top?.high === null || top?.high === undefined) return;
  const [keep] = await access.rows<{ id: number | string }>(
    `SELECT id FROM ${log} WHERE id > ? ORDER BY id LIMIT 1`,
    [Math.max(0, Number(top.high) - retention)],
  );
  if (!keep) return;
  for (let i = 0; i < TRIM_STATEMENTS; i++) {
    const count = await deleted(`DELETE FROM ${log} WHERE id < ? ORDER BY id LIMIT ${TRIM_CHUNK}`, [
      Number(keep.id),
    ]);
    if (count < TRIM_CHUNK) return;
  }
}
