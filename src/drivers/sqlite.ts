/**
 * `sqlite:PATH` — a SQLite file through better-sqlite3 12: the embedded default.
 *
 * Durable when the promise resolves: WAL journal with `synchronous = FULL`, so a committed
 * transaction is on disk before the call returns. Every write is one `BEGIN IMMEDIATE`
 * transaction, which takes the file's write lock before reading, so two processes on one file
 * serialize their read-check-write steps (exactly one put wins). Keys are stored as BLOBs of
 * their UTF-8 bytes so SQLite's memcmp order is the contract's key order and prefix ranges are
 * index scans that treat `%` and `_` as plain bytes.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Database, Statement } from "better-sqlite3";
import {
  type AuditColumns,
  auditDetail,
  decodeRecord,
  encodeRecord,
  fromAuditColumns,
  fromColumns,
  type RecordColumns,
  toColumns,
} from "../core/codec.js";
import type {
  AuditIntent,
  InitOptions,
  ListFilter,
  PoisonDriver,
  RecordPatch,
} from "../core/driver.js";
import { BackendUnavailableError } from "../core/errors.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { checkDuration } from "../core/validation.js";
import type { DriverChange, DriverWatchEvent, DriverWatchQuery } from "../core/watch.js";
import { removeDecision, upperBound } from "./sql/common.js";

export interface SqliteDriverOptions {
  /** File path, or `:memory:` for a private in-memory database. */
  path: string;
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** The layout this code writes. Bump it and add a step to MIGRATIONS to change the layout. */
export const SQLITE_SCHEMA_VERSION = 3;

/** MIGRATIONS[n] moves a file from version n to n + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE poison_keys (
     key BLOB PRIMARY KEY,
     token TEXT NOT NULL,
     state TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     heartbeat_at TEXT,
     operation TEXT,
     owner TEXT,
     error TEXT,
     data TEXT
   ) WITHOUT ROWID;
   CREATE TABLE poison_audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     action TEXT NOT NULL,
     key BLOB NOT NULL,
     actor TEXT NOT NULL,
     reason TEXT NOT NULL,
     token TEXT,
     record TEXT
   );
   CREATE INDEX poison_audit_by_key ON poison_audit (key, id);`,
  // 2: liveness (heartbeat_interval_ms) and facts of an audit entry such as evenIfAlive (detail).
  `ALTER TABLE poison_keys ADD COLUMN heartbeat_interval_ms INTEGER;
   ALTER TABLE poison_audit ADD COLUMN detail TEXT;`,
  // 3: the change log behind store.watch(), written in the transaction of each change. A plain
  // rowid (no AUTOINCREMENT, which would write sqlite_sequence on every change): ids grow by one
  // per change because trimming always keeps the newest row.
  `CREATE TABLE poison_changes (
     id INTEGER PRIMARY KEY,
     type TEXT NOT NULL,
     key BLOB NOT NULL,
     record TEXT,
     at TEXT NOT NULL
   );`,
];

/** Changes the log keeps (at least) for a watch to resume from; older positions get `resync`. */
export const SQLITE_CHANGE_LOG_KEEP = 10_000;
/** The log is trimmed back to SQLITE_CHANGE_LOG_KEEP rows once per this many changes, inside
 *  the write that reaches the multiple: one range delete amortized over many writes. */
const CHANGE_LOG_TRIM_EVERY = 500;
/** How often a watch asks SQLite whether another connection committed (`PRAGMA data_version`,
 *  a read of the WAL index: no I/O). This driver's own writes wake its watches at once. */
export const SQLITE_WATCH_POLL_MS = 100;
/** Change-log rows a watch reads per query. */
const CHANGE_PAGE = 500;

interface Writer {
  read: ReturnType<typeof prepareReads>;
  write: ReturnType<typeof prepareWrites>;
  /** Run `body` in one BEGIN IMMEDIATE transaction (takes the file's write lock first). */
  immediate<T>(body: () => T): T;
  /** Run `body` in one deferred transaction: reads only, one consistent snapshot. */
  snapshot<T>(body: () => T): T;
  /** Append a change to the log, inside the write's transaction. */
  log(type: DriverChange["type"], record: PoisonRecord, at: string): void;
}

interface ChangeRow {
  id: number;
  type: string;
  key: Buffer;
  record: string | null;
  at: string;
}

interface KeyRow extends RecordColumns {
  key: Buffer;
}

interface AuditRow extends AuditColumns {
  id: number;
  key: Buffer;
}

/** The record columns a point read returns, as an array (RECORD_COLUMNS order). */
type RawRecord = [
  token: string,
  state: string,
  created_at: string,
  updated_at: string,
  heartbeat_at: string | null,
  heartbeat_interval_ms: number | string | null,
  operation: string | null,
  owner: string | null,
  error: string | null,
  data: string | null,
];

const RECORD_COLUMNS =
  "token, state, created_at, updated_at, heartbeat_at, heartbeat_interval_ms, operation, owner, error, data";

// Listings select `*`: they also serve a file of an older layout, which only a write migrates.
function prepareReads(d: Database, layout: number) {
  return {
    // Point reads bind the key as text and cast it in SQL: the same UTF-8 bytes (keys are
    // well-formed and NUL-free), without allocating a Buffer per call; they return the named
    // columns as an array (not the key, which the caller has): better-sqlite3 builds an array
    // for half the cost of a row object, the most of a conflict's cost.
    // A file of layout 1 (read, not yet migrated) lacks a column: `*` row objects serve it,
    // and follow a migration made meanwhile by another process (`*` is expanded again).
    get:
      layout >= 2
        ? d.prepare(`SELECT ${RECORD_COLUMNS} FROM poison_keys WHERE key = CAST(? AS BLOB)`).raw()
        : d.prepare("SELECT * FROM poison_keys WHERE key = CAST(? AS BLOB)"),
    token: d.prepare("SELECT token FROM poison_keys WHERE key = CAST(? AS BLOB)").pluck(),
    listFirst: d.prepare(
      "SELECT * FROM poison_keys WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
    ),
    listAfter: d.prepare(
      "SELECT * FROM poison_keys WHERE key > ? AND key < ? ORDER BY key LIMIT ?",
    ),
    listFirstFiltered: d.prepare(filtered(">=")),
    listAfterFiltered: d.prepare(filtered(">")),
    auditByPrefix: d.prepare(
      "SELECT * FROM poison_audit WHERE key >= ? AND key < ? AND id < ? ORDER BY id DESC LIMIT ?",
    ),
    auditByKey: d.prepare(
      "SELECT * FROM poison_audit WHERE key = ? AND id < ? ORDER BY id DESC LIMIT ?",
    ),
  };
}

function prepareWrites(d: Database) {
  return {
    insert: d.prepare(
      `INSERT INTO poison_keys (key, token, state, created_at, updated_at, heartbeat_at,
       heartbeat_interval_ms, operation, owner, error, data)
     VALUES (@key, @token, @state, @created_at, @updated_at, @heartbeat_at,
       @heartbeat_interval_ms, @operation, @owner, @error, @data)`,
    ),
    delete: d.prepare("DELETE FROM poison_keys WHERE key = ?"),
    update: d.prepare(
      `UPDATE poison_keys SET updated_at = @updated_at, state = coalesce(@state, state),
       error = coalesce(@error, error), heartbeat_at = coalesce(@heartbeat_at, heartbeat_at),
       heartbeat_interval_ms = coalesce(@heartbeat_interval_ms, heartbeat_interval_ms)
     WHERE key = @key`,
    ),
    audit: d.prepare(
      "INSERT INTO poison_audit (at, action, key, actor, reason, token, record, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    change: d.prepare(
      "INSERT INTO poison_changes (type, key, record, at) VALUES (?, CAST(? AS BLOB), ?, ?)",
    ),
    trimChanges: d.prepare("DELETE FROM poison_changes WHERE id <= ?"),
  };
}

/** The change log's reads; prepared once the table exists (a write migrates to it). */
function prepareChangeReads(d: Database) {
  return {
    after: d.prepare("SELECT * FROM poison_changes WHERE id > ? ORDER BY id LIMIT ?"),
    bounds: d.prepare("SELECT min(id) AS oldest, max(id) AS newest FROM poison_changes"),
    version: d.prepare("PRAGMA data_version").pluck(),
  };
}

export function sqliteDriver(options: SqliteDriverOptions): PoisonDriver {
  const { path } = options;
  const busyTimeoutMs = checkDuration("options.busyTimeoutMs", options.busyTimeoutMs, 5000);
  let db: Database | null = null;
  let reads: ReturnType<typeof prepareReads> | null = null;
  let writes: ReturnType<typeof prepareWrites> | null = null;
  /** Wakes this driver's open watches: called after a write that logged a change committed. */
  const wakers = new Set<() => void>();
  /** A change was logged in the transaction running now. */
  let changed = false;
  /** What a write needs, built once by init (not per call); its transaction wrapper too:
   *  better-sqlite3's transaction() is costly to call per write, so each write passes its body
   *  to this one instead. */
  let writer: Writer | null = null;

  const readable = () => {
    if (!db || !reads) throw new BackendUnavailableError("sqlite", "the database is not open");
    return reads;
  };

  const writable = (): Writer => {
    if (!writer)
      throw new BackendUnavailableError("sqlite", "the database is not open for writing");
    return writer;
  };

  const read = (stmt: Statement, key: string): PoisonRecord | null => {
    const row = stmt.get(key) as RawRecord | KeyRow | undefined;
    if (!row) return null;
    return Array.isArray(row) ? fromRaw(key, row) : fromColumns(key, row);
  };

  const writeAudit = (stmt: Statement, intent: AuditIntent | undefined, record: PoisonRecord) => {
    if (!intent) return;
    stmt.run(
      intent.at,
      intent.action,
      Buffer.from(record.key, "utf8"),
      intent.actor,
      intent.reason,
      intent.token ?? null,
      JSON.stringify(record),
      auditDetail(intent),
    );
  };

  /** Open the file once; without `create`, only a file that exists (never make one). */
  const connect = async (create: boolean): Promise<Database | null> => {
    if (db) return db;
    if (!create && (path === ":memory:" || path === "" || !existsSync(path))) {
      // Never written is a fine answer only where a write could create the file: a missing
      // directory is a wrong path, not an empty store.
      if (path !== ":memory:" && path !== "" && !existsSync(dirname(resolve(path))))
        throw new BackendUnavailableError(
          "sqlite",
          `cannot open ${JSON.stringify(path)} (its directory does not exist); check that its directory exists and is writable`,
        );
      return null;
    }
    const { default: BetterSqlite3 } = await import("better-sqlite3");
    let opened: Database;
    try {
      opened = new BetterSqlite3(path, { timeout: busyTimeoutMs, fileMustExist: !create });
    } catch (error) {
      throw new BackendUnavailableError(
        "sqlite",
        `cannot open ${JSON.stringify(path)} (${(error as Error).message}); check that its directory exists and is writable`,
        error,
      );
    }
    // Per connection, changes nothing in the file.
    opened.pragma("synchronous = FULL");
    db = opened;
    return opened;
  };

  /** The change-log reads of the open file, or null while it has no change log (never written,
   *  or an older layout that no write migrated yet). Creates nothing. */
  let changeReads: ReturnType<typeof prepareChangeReads> | null = null;
  const changeLog = () => {
    if (changeReads) return changeReads;
    if (!db || !hasTable(db, "poison_changes")) return null;
    changeReads = prepareChangeReads(db);
    return changeReads;
  };

  /**
   * The native feed (DriverWatch): the change log, read from a position. Subscribing and taking
   * the position are one synchronous step (better-sqlite3 is synchronous), so nothing committed
   * afterwards can be missed. Then: this driver's commits wake the watch at once; other
   * connections' and processes' commits are noticed within SQLITE_WATCH_POLL_MS through
   * `PRAGMA data_version`, which reads the WAL index only (no disk I/O while idle). A file
   * with no change log yet (never written) is watched from position 0 without creating
   * anything: its first change has id 1.
   */
  async function* watchChanges({
    prefix,
    from,
    signal,
  }: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
    let wake: (() => void) | null = null;
    let dirty = true;
    const waker = () => {
      dirty = true;
      wake?.();
    };
    wakers.add(waker);
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      let reads = changeLog();
      const bounds = reads
        ? (reads.bounds.get() as { oldest: number | null; newest: number | null })
        : { oldest: null, newest: null };
      const newest = bounds.newest ?? 0;
      let position = from === null ? newest : Number(from);
      // Resumable: a position this file produced (not past its newest change) whose successors
      // are all still in the log (trimming removed none of them).
      const resumable =
        Number.isSafeInteger(position) &&
        position >= 0 &&
        position <= newest &&
        position >= (bounds.oldest ?? 1) - 1;
      if (!resumable) position = newest;
      yield { type: resumable ? "ready" : "resync", position: String(position) };
      let version: unknown = null;
      while (!signal.aborted) {
        reads ??= changeLog();
        if (reads && dirty) {
          dirty = false;
          const rows = reads.after.all(position, CHANGE_PAGE) as ChangeRow[];
          for (const row of rows) {
            position = row.id;
            const key = row.key.toString("utf8");
            if (!key.startsWith(prefix)) continue;
            yield changeOf(row, key);
            if (signal.aborted) return;
          }
          // A full page: more may follow at once.
          if (rows.length === CHANGE_PAGE) dirty = true;
          continue;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, SQLITE_WATCH_POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
        if (signal.aborted) return;
        if (!reads) {
          // No change log yet: open the file once it exists and look for the log at every poll
          // (at the top of the loop), creating nothing; the first change is read from 0.
          if (!db) await this_.init({ create: false });
          continue;
        }
        const now = reads.version.get();
        if (now !== version) {
          version = now;
          dirty = true;
        }
      }
    } finally {
      wakers.delete(waker);
      signal.removeEventListener("abort", onAbort);
    }
  }

  const this_: PoisonDriver = {
    backend: "sqlite",
    capabilities: {
      durable: path !== ":memory:",
      shared: path !== ":memory:",
      oneRoundTrip: true,
      listFilter: true,
      // better-sqlite3 answers synchronously; its only wait, for another process's write lock,
      // is bounded by busyTimeoutMs (and a JavaScript timer could not cut it anyway).
      inProcess: true,
    },
    location: `sqlite:${path}`,

    async init({ create }: InitOptions) {
      if (writes) return true;
      const opened = await connect(create);
      if (!opened) return false;
      try {
        if (!create) {
          const version = layoutVersion(opened, path);
          if (version === 0) return false;
          reads ??= prepareReads(opened, version);
          return true;
        }
        opened.pragma("journal_mode = WAL");
        migrate(opened, path);
        reads = prepareReads(opened, SQLITE_SCHEMA_VERSION);
        writes = prepareWrites(opened);
        const transaction = opened.transaction((body: () => unknown) => body());
        const w = writes;
        writer = {
          read: reads,
          write: w,
          immediate: <T>(body: () => T): T => {
            changed = false;
            const result = transaction.immediate(body) as T;
            // Committed: tell this driver's watches now rather than at their next poll.
            if (changed) {
              changed = false;
              for (const wake of wakers) wake();
            }
            return result;
          },
          snapshot: <T>(body: () => T): T => transaction.deferred(body) as T,
          log: (type, record, at) => {
            const { lastInsertRowid } = w.change.run(type, record.key, encodeRecord(record), at);
            const id = Number(lastInsertRowid);
            if (id % CHANGE_LOG_TRIM_EVERY === 0) w.trimChanges.run(id - SQLITE_CHANGE_LOG_KEEP);
            changed = true;
          },
        };
        return true;
      } catch (error) {
        if (!reads) {
          opened.close();
          db = null;
        }
        throw error;
      }
    },

    async put(records, audit) {
      const { read: r, write: w, immediate, snapshot, log } = writable();
      // First, without the write lock: when the read decides the put (a key held by another
      // token, or every key held by this one already), the put writes nothing, and that read is
      // its linearization point, so the answer needs no write transaction. A single SELECT
      // is one consistent snapshot of the file (WAL: all commits completed before it started,
      // none after), and several keys are read in one deferred (read-only) transaction. Only
      // a put that may write takes BEGIN IMMEDIATE, and decides again under the lock.
      const seen =
        records.length === 1
          ? [read(r.get, (records[0] as PoisonRecord).key)]
          : snapshot(() => records.map((record) => read(r.get, record.key)));
      const others = seen.filter(
        (held, i): held is PoisonRecord => held !== null && held.token !== records[i]?.token,
      );
      if (others.length > 0) return { ok: false, conflicts: others };
      if (seen.every((held) => held !== null))
        return { ok: true, records: seen as PoisonRecord[], created: seen.map(() => false) };
      return immediate(() => {
        const current = records.map((record) => read(r.get, record.key));
        const conflicts = current.filter(
          (held, i): held is PoisonRecord => held !== null && held.token !== records[i]?.token,
        );
        if (conflicts.length > 0) return { ok: false as const, conflicts };
        const result = records.map((record, i) => {
          const held = current[i];
          if (held) return held;
          w.insert.run(toRow(record));
          writeAudit(w.audit, audit, record);
          log("put", record, record.updatedAt);
          return record;
        });
        return {
          ok: true as const,
          records: result,
          created: current.map((held) => held === null),
        };
      });
    },

    async remove(keys, token, audit, expected) {
      const { read: r, write: w, immediate, snapshot, log } = writable();
      if (expected === undefined) {
        // As in put: a delete that the read decides (every key absent: nothing to remove; a key
        // held by another token: refused) writes nothing, and needs no write lock.
        const seen =
          keys.length === 1
            ? [read(r.get, keys[0] as string)]
            : snapshot(() => keys.map((key) => read(r.get, key)));
        if (seen.every((held) => held === null)) return { ok: true, removed: [] };
        if (token !== null) {
          const others = seen.filter(
            (held): held is PoisonRecord => held !== null && held.token !== token,
          );
          if (others.length > 0) return { ok: false, conflicts: others };
        }
      }
      return immediate(() => {
        const held = keys
          .map((key) => read(r.get, key))
          .filter((record): record is PoisonRecord => record !== null);
        const decided = removeDecision(keys, held, token, expected);
        if (!decided.ok) return decided;
        const { removed } = decided;
        const type = audit?.action === "force-delete" ? "force-deleted" : "deleted";
        const at = audit?.at ?? new Date().toISOString();
        for (const held of removed) {
          w.delete.run(Buffer.from(held.key, "utf8"));
          writeAudit(w.audit, audit, held);
          log(type, held, at);
        }
        return { ok: true as const, removed };
      });
    },

    async update(keys, token, patch: RecordPatch) {
      const { read: r, write: w, immediate, log } = writable();
      return immediate(() => {
        const current = keys.map((key) => read(r.get, key));
        const missing = keys.filter((_, i) => current[i] === null);
        const conflicts = current.filter(
          (held): held is PoisonRecord => held !== null && held.token !== token,
        );
        if (missing.length > 0 || conflicts.length > 0)
          return { ok: false as const, conflicts, missing };
        for (const key of keys) {
          w.update.run({
            key: Buffer.from(key, "utf8"),
            updated_at: patch.updatedAt,
            state: patch.state ?? null,
            error: patch.error ? JSON.stringify(patch.error) : null,
            heartbeat_at: patch.heartbeatAt ?? null,
            heartbeat_interval_ms: patch.heartbeatIntervalMs ?? null,
          });
        }
        const records = keys.map((key) => read(r.get, key) as PoisonRecord);
        records.forEach((record, i) => {
          const poisoned = record.state === "poisoned" && current[i]?.state !== "poisoned";
          log(poisoned ? "poisoned" : "touched", record, patch.updatedAt);
        });
        return { ok: true as const, records };
      });
    },

    async get(key) {
      return read(readable().get, key);
    },

    async getToken(key) {
      return (readable().token.get(key) as string | undefined) ?? null;
    },

    async list({ prefix, after, limit, filter }) {
      const r = readable();
      const lower = Buffer.from(after ?? prefix, "utf8");
      const upper = upperBound(prefix);
      if (filter) {
        const stmt = after === null ? r.listFirstFiltered : r.listAfterFiltered;
        return (stmt.all(filterParams(lower, upper, limit, filter)) as KeyRow[]).map(fromRow);
      }
      const stmt = after === null ? r.listFirst : r.listAfter;
      return (stmt.all(lower, upper, limit) as KeyRow[]).map(fromRow);
    },

    async audit({ prefix, key, before, limit }) {
      const r = readable();
      const beforeId = before === null ? Number.MAX_SAFE_INTEGER : Number(before);
      if (!Number.isSafeInteger(beforeId)) return [];
      const rows =
        key !== undefined
          ? (r.auditByKey.all(Buffer.from(key, "utf8"), beforeId, limit) as AuditRow[])
          : (r.auditByPrefix.all(
              Buffer.from(prefix, "utf8"),
              upperBound(prefix),
              beforeId,
              limit,
            ) as AuditRow[]);
      return rows.map(fromAuditRow);
    },

    watch: (query) => watchChanges(query),

    async close() {
      db?.close();
      db = null;
      reads = null;
      writes = null;
      writer = null;
      changeReads = null;
    },
  };
  return this_;
}

/** A change-log row as the feed reports it. */
function changeOf(row: ChangeRow, key: string): DriverChange {
  const type = CHANGE_TYPES.has(row.type) ? (row.type as DriverChange["type"]) : "touched";
  const change: DriverChange = { type, key, at: row.at, position: String(row.id) };
  if (row.record !== null) change.record = decodeRecord(key, row.record, { token: "", at: row.at });
  return change;
}

const CHANGE_TYPES = new Set(["put", "poisoned", "touched", "deleted", "force-deleted"]);

function hasTable(db: Database, name: string): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined
  );
}

function filterParams(lower: Buffer, upper: Uint8Array, limit: number, filter: ListFilter) {
  return {
    lower,
    upper,
    limit,
    token: filter.token ?? null,
    state: filter.state ?? null,
    operation: filter.operation ?? null,
  };
}

/** A listing narrowed by a filter; a NULL filter value matches every row. */
function filtered(lowerBound: ">" | ">="): string {
  return `SELECT * FROM poison_keys WHERE key ${lowerBound} @lower AND key < @upper
    AND (@token IS NULL OR token = @token) AND (@state IS NULL OR state = @state)
    AND (@operation IS NULL OR operation = @operation)
    ORDER BY key LIMIT @limit`;
}

/** The layout version recorded in the file, 0 when it has none of this library's tables. A
 *  newer layout than this code understands is refused. Reads only. */
function layoutVersion(db: Database, path: string): number {
  const meta = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'poison_meta'")
    .get();
  if (!meta) return 0;
  const row = db.prepare("SELECT value FROM poison_meta WHERE name = 'schema_version'").get() as
    | { value: string }
    | undefined;
  const version = row ? Number(row.value) : 0;
  if (version > SQLITE_SCHEMA_VERSION) throw newerLayout(path, version);
  return version;
}

function newerLayout(path: string, version: number): BackendUnavailableError {
  return new BackendUnavailableError(
    "sqlite",
    `${JSON.stringify(path)} has layout version ${version}, newer than this poison-store understands (${SQLITE_SCHEMA_VERSION}); upgrade poison-store`,
  );
}

/** Bring the file to SQLITE_SCHEMA_VERSION in one immediate transaction, so two processes
 *  opening a new file at once cannot both create it. */
function migrate(db: Database, path: string): void {
  db.exec("CREATE TABLE IF NOT EXISTS poison_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
  db.transaction(() => {
    const row = db.prepare("SELECT value FROM poison_meta WHERE name = 'schema_version'").get() as
      | { value: string }
      | undefined;
    const version = row ? Number(row.value) : 0;
    if (version > SQLITE_SCHEMA_VERSION) throw newerLayout(path, version);
    for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
    db.prepare(
      "INSERT INTO poison_meta (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    ).run(String(SQLITE_SCHEMA_VERSION));
  }).immediate();
}

function toRow(record: PoisonRecord) {
  return { key: Buffer.from(record.key, "utf8"), ...toColumns(record) };
}

function fromRaw(key: string, row: RawRecord): PoisonRecord {
  return fromColumns(key, {
    token: row[0],
    state: row[1],
    created_at: row[2],
    updated_at: row[3],
    heartbeat_at: row[4],
    heartbeat_interval_ms: row[5],
    operation: row[6],
    owner: row[7],
    error: row[8],
    data: row[9],
  });
}

function fromRow(row: KeyRow): PoisonRecord {
  return fromColumns(row.key.toString("utf8"), row);
}

function fromAuditRow(row: AuditRow): AuditEntry {
  return fromAuditColumns(String(row.id), row.key.toString("utf8"), row);
}
