/**
 * `mysql://…` / `mariadb://…` — MySQL 8 or MariaDB 10.11 through npm `mysql2` (3.x), loaded on
 * first use.
 *
 * Neither server offers `RETURNING` on both INSERT and DELETE, so each single-key call of the
 * core contract is ONE `CALL` of a stored procedure (created on first use), sent as one prepared
 * statement: the procedure takes the row lock, reads the row under it and changes it in one
 * transaction on the server, and hands the row back as its result set. See the procedure bodies
 * below and docs/BACKENDS-SQL.md for why each is race-free under InnoDB's default REPEATABLE READ.
 *
 * Every column is binary (VARBINARY / BLOB): no collation can make two tokens compare equal
 * (MariaDB's `utf8mb4_bin` pads spaces: 'a' = 'a '), the key index orders by bytes (the
 * contract's key order), and a prefix is a byte range, so `%`, `_` and `\` are plain bytes.
 *
 * Durable when the promise resolves, as far as the server makes a commit durable
 * (`innodb_flush_log_at_trx_commit = 1`, `sync_binlog = 1`, the defaults).
 */
import { fromAuditColumns, fromColumns } from "../core/codec.js";
import type {
  AuditIntent,
  InitOptions,
  PoisonDriver,
  PutOutcome,
  RecordPatch,
  RemoveOutcome,
  UpdateOutcome,
} from "../core/driver.js";
import { BackendUnavailableError, InvalidArgumentError } from "../core/errors.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { retry } from "../core/retry.js";
import { redactUrl } from "../core/url.js";
import type { DriverChange, DriverWatch } from "../core/watch.js";
import { mysqlConnection } from "./mysql/connection.js";
import { ER, isServerError } from "./mysql/errors.js";
import { type MysqlConnectionLike, type MysqlPoolLike, mysqlClient } from "./mysql/pool.js";
import { mysqlStatements, PROCEDURE_VERSION } from "./mysql/statements.js";
import {
  CHANGE_TYPES,
  type ChangeRow,
  changeFeed,
  changeLogDdl,
  DEFAULT_CHANGE_POLL_MS,
  DEFAULT_CHANGE_RETENTION,
  TRIM_EVERY_WRITES,
  trimChangeLog,
} from "./mysql/watch.js";
import { patchValues, putAllOrNone, removeAllOrNone, updateAllOrNone } from "./sql/batches.js";
import {
  auditIdBound,
  checkMillis,
  checkTableName,
  filterValues,
  keyBytes,
  type PutRow,
  putOutcome,
  putParameters,
  quoteTable,
  removeOutcome,
  sortedByBytes,
  upperBound,
} from "./sql/common.js";
import type { TlsOptions } from "./tls.js";

export type { MysqlConnectionLike, MysqlPoolLike } from "./mysql/pool.js";

export interface MysqlDriverOptions {
  /** `mysql://user:password@host:port/database` (`mariadb://` is the same), with
   *  `?ssl-mode=VERIFY_IDENTITY&ssl-ca=PATH[&ssl-cert=PATH&ssl-key=PATH]` for TLS (see
   *  ./mysql/connection.ts). */
  url?: string;
  /** TLS with `url` (PEM text or file paths); verification is on unless `rejectUnauthorized`
   *  is false (UNSAFE). Merged with the URL's ssl-ca/ssl-cert/ssl-key. */
  tls?: TlsOptions;
  /** An existing `mysql2/promise` pool to use instead of `url`. The caller owns it: `close()`
   *  leaves it open. Give it `connectTimeout`, and set `innodb_lock_wait_timeout` low on its
   *  connections, so a dead client cannot hold row locks for long. */
  pool?: MysqlPoolLike;
  /** Table of poison keys. Default `poison_keys`. Its stored procedures are named after it. */
  table?: string;
  /** Table of audit entries. Default `poison_audit`. */
  auditTable?: string;
  /** Bound on opening a connection. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Bound on one call, client side (the connection is destroyed when it passes) and on each
   *  lock wait server side (`innodb_lock_wait_timeout`, whole seconds). Default 5000 ms. */
  queryTimeoutMs?: number;
  /** Pool size when the driver makes the pool. Default 10. */
  maxConnections?: number;
  /** Keep a change log (a table `<table>_changes` written by triggers in the same transaction
   *  as each change) and serve `store.watch()` from it natively. Default true. Creating
   *  triggers needs the TRIGGER privilege and, with binary logging on,
   *  `log_bin_trust_function_creators = 1` or SUPER; without them set false (the store is then
   *  watched by the runtime's polling). See ./mysql/watch.ts. In a URL: `?change-log=off`. */
  changeLog?: boolean;
  /** Change log entries kept for resuming a watch (older ones are trimmed). Default 10,000. */
  changeLogRetention?: number;
  /** How often a watch reads the change log. Default 500 ms. */
  watchIntervalMs?: number;
}

type Bytes = Buffer | null;

/** Rows as mysql2 returns binary columns. */
interface KeyRow {
  key: Buffer;
  token: Buffer;
  state: Buffer;
  created_at: Buffer;
  updated_at: Buffer;
  heartbeat_at: Bytes;
  /** Absent in tables of an older layout. */
  heartbeat_interval_ms?: number | string | null;
  operation: Bytes;
  owner: Bytes;
  error: Bytes;
  data: Bytes;
  inserted?: number | string | null;
}

interface AuditRow {
  id: number | string;
  at: Buffer;
  action: Buffer;
  key: Buffer;
  actor: Buffer;
  reason: Buffer;
  token: Bytes;
  record: Bytes;
  detail?: Bytes;
}

/** Deadlock victims are retried this often in all (the first try included), after a short
 *  random pause growing from about 2 ms to at most 50 ms. */
const DEADLOCK_RETRY = { maxAttempts: 10, minDelayMs: 2, maxDelayMs: 50 };

export function mysqlDriver(options: MysqlDriverOptions): PoisonDriver {
  if (!options || (options.url === undefined) === (options.pool === undefined)) {
    throw new InvalidArgumentError("options", "mysqlDriver needs exactly one of url or pool");
  }
  const tableName = checkTableName("options.table", options.table, "poison_keys");
  const keysTable = quoteTable(tableName, "`");
  const auditTableName = checkTableName("options.auditTable", options.auditTable, "poison_audit");
  const auditTable = quoteTable(auditTableName, "`");
  const procedureName = (verb: string) => {
    const name = `${tableName}_${verb}_${PROCEDURE_VERSION}`;
    if ((name.split(".").at(-1) ?? "").length > 64) {
      throw new InvalidArgumentError("options.table", "is too long to name its procedures");
    }
    return quoteTable(name, "`");
  };
  const putProcedure = procedureName("put");
  const removeProcedure = procedureName("remove");
  const connection = options.url === undefined ? null : mysqlConnection(options.url, options.tls);
  const changeLog = options.changeLog ?? connection?.changeLog ?? true;
  if (typeof changeLog !== "boolean") {
    throw new InvalidArgumentError("options.changeLog", "must be a boolean");
  }
  const retention = options.changeLogRetention ?? DEFAULT_CHANGE_RETENTION;
  if (!Number.isSafeInteger(retention) || retention < 1) {
    throw new InvalidArgumentError("options.changeLogRetention", "must be a positive integer");
  }
  const watchIntervalMs = checkMillis(
    "options.watchIntervalMs",
    options.watchIntervalMs,
    DEFAULT_CHANGE_POLL_MS,
  );
  const logTableName = `${tableName}_changes`;
  const logTable = quoteTable(logTableName, "`");
  const logDdl = changeLogDdl(keysTable, logTable, (verb) => {
    const name = `${logTableName}_v1_${verb}`;
    if ((name.split(".").at(-1) ?? "").length > 64) {
      throw new InvalidArgumentError("options.table", "is too long to name its triggers");
    }
    return quoteTable(name, "`");
  });
  const connectTimeoutMs = checkMillis("options.connectTimeoutMs", options.connectTimeoutMs, 5000);
  const queryTimeoutMs = checkMillis("options.queryTimeoutMs", options.queryTimeoutMs, 5000);
  if (options.pool !== undefined && options.tls !== undefined) {
    throw new InvalidArgumentError("tls", "goes with url; a pool passed in brings its own ssl");
  }

  const { ddl, putProcedureDdl, removeProcedureDdl, sql } = mysqlStatements({
    keysTable,
    auditTable,
    putProcedure,
    removeProcedure,
  });

  /** A deadlock victim's transaction was rolled back whole, so running it again is safe. InnoDB
   *  picks victims even among transactions that lock keys in one order (its duplicate-key checks
   *  lock the gap before a row too), so a batch under heavy contention may need a few tries;
   *  a short random pause keeps the same two from colliding again. */
  const client = mysqlClient(
    connection,
    { connectTimeoutMs, queryTimeoutMs, maxConnections: options.maxConnections ?? 10 },
    {
      ...(options.pool ? { pool: options.pool } : {}),
      retry: (step) =>
        retry(step, {
          ...DEADLOCK_RETRY,
          shouldRetry: (error) => isServerError(error, ER.LOCK_DEADLOCK),
        }),
    },
  );
  const withConnection = <T>(body: (c: MysqlConnectionLike) => Promise<T>) =>
    client.withConnection(body);

  /** Rows of a statement; for a CALL, its first non-empty result set (a procedure may send an
   *  empty one before the answer, e.g. a DELETE … RETURNING that removed nothing). `prepared`
   *  sends it as a prepared statement when the connection can (the hot-path calls: parsed once
   *  per connection, values sent as binary, rows decoded from the binary protocol). */
  const rows = async <R>(
    c: MysqlConnectionLike,
    sqlText: string,
    values: unknown[],
    prepared = false,
  ): Promise<R[]> => {
    // Every value goes as bytes or a number: every column is binary, no character set
    // re-encodes it. Through `query`, mysql2 writes bytes as a hex literal (X'…'), which no
    // sql_mode (NO_BACKSLASH_ESCAPES) changes; through `execute`, as binary parameters.
    const bound = values.map((v) =>
      typeof v === "string" ? Buffer.from(v, "utf8") : (v as Buffer | number | null),
    );
    const [result] =
      prepared && c.execute ? await c.execute(sqlText, bound) : await c.query(sqlText, bound);
    if (!Array.isArray(result)) return [];
    if (!sqlText.startsWith("CALL")) return result as R[];
    for (const set of result) if (Array.isArray(set) && set.length > 0) return set as R[];
    return [];
  };

  const one = <R>(text: string, values: unknown[], prepared = false) =>
    withConnection((c) => rows<R>(c, text, values, prepared));

  /** The column names of a table (`name` or `schema.name`); empty when it does not exist. */
  const columnsOf = async (table: string): Promise<Set<string>> => {
    const [schema, name] = table.includes(".") ? table.split(".") : [null, table];
    const found = await one<{ name: Buffer | string }>(
      `SELECT column_name AS name FROM information_schema.columns
        WHERE table_schema = coalesce(?, DATABASE()) AND table_name = ?`,
      [schema ?? null, name],
    );
    return new Set(found.map((row) => String(row.name)));
  };
  let migrated = false;

  /** Writes since the last trim of the change log; every TRIM_EVERY_WRITES, one trim runs in the
   *  background (its failure is harmless: the next one catches up). */
  let writes = 0;
  let trimming = false;
  const wrote = (count: number) => {
    if (!changeLog || count === 0) return;
    writes += count;
    if (writes < TRIM_EVERY_WRITES || trimming) return;
    writes = 0;
    trimming = true;
    void trimChangeLog(
      { logTable, rows: (text, values) => one(text, values) },
      retention,
      async (text, values) =>
        withConnection(async (c) => {
          const [result] = await c.query(text, values);
          return Number((result as { affectedRows?: number }).affectedRows ?? 0);
        }),
    )
      .catch(() => undefined)
      .finally(() => {
        trimming = false;
      });
  };

  const watch: DriverWatch = (query) =>
    changeFeed(
      {
        logTable,
        rows: (text, values) => one(text, values),
        onOneConnection: <R>(statements: [string, unknown[]][]) =>
          withConnection(async (c) => {
            let found: R[] = [];
            for (const [text, values] of statements) {
              const [result] = await c.query(text, values);
              if (Array.isArray(result)) found = result as R[];
            }
            return found;
          }),
        change: fromChangeRow,
        missingTable: (error) => isServerError(error, ER.NO_SUCH_TABLE),
        lockTimeout: (error) => isServerError(error, ER.LOCK_WAIT_TIMEOUT),
        intervalMs: watchIntervalMs,
      },
      query,
    );

  /** The procedure takes the shared put parameters, then whether it owns the transaction. */
  const putValues = (
    record: PoisonRecord,
    audit: AuditIntent | undefined,
    ownTransaction: boolean,
  ): unknown[] => [...putParameters(record, audit), ownTransaction ? 1 : 0];

  return {
    backend: "mysql",
    capabilities: { durable: true, shared: true, oneRoundTrip: true, listFilter: true },
    location:
      options.url === undefined ? "mysql (a pool passed by the caller)" : redactUrl(options.url),

    async init({ create }: InitOptions) {
      if (migrated) return true;
      await client.open();
      if (!create) return (await columnsOf(tableName)).size > 0;
      /** Run a DDL statement; one that another process ran first is fine. */
      const ddlOnce = async (c: MysqlConnectionLike, statement: string) => {
        try {
          await c.query(statement);
        } catch (error) {
          if (
            !isServerError(
              error,
              ER.SP_ALREADY_EXISTS,
              ER.TRG_ALREADY_EXISTS,
              ER.TABLE_EXISTS,
              ER.DUP_KEYNAME,
              ER.DUP_FIELDNAME,
            )
          )
            throw error;
        }
      };
      const tables = ddl;
      await withConnection(async (c) => {
        for (const statement of tables) await ddlOnce(c, statement);
      });
      // Layout 2 on tables made by an older version (MySQL 8 has no ADD COLUMN IF NOT EXISTS).
      for (const [table, name, quoted, column, type] of [
        [tableName, "heartbeat_interval_ms", keysTable, "heartbeat_interval_ms", "INT NULL"],
        [auditTableName, "detail", auditTable, "detail", "BLOB NULL"],
      ] as const) {
        if (!(await columnsOf(table)).has(name)) {
          await withConnection((c) =>
            ddlOnce(c, `ALTER TABLE ${quoted} ADD COLUMN ${column} ${type}`),
          );
        }
      }
      // MariaDB has DELETE … RETURNING (MySQL 8 does not): the remove procedure's body is chosen
      // by the server it is created on.
      const [version] = await one<{ version: Buffer | string }>("SELECT VERSION() AS version", []);
      const mariadb = /mariadb/i.test(String(version?.version ?? ""));
      await withConnection(async (c) => {
        for (const statement of [putProcedureDdl, removeProcedureDdl(mariadb)])
          await ddlOnce(c, statement);
        // After the migrations: the triggers copy every column of the current layout.
        if (changeLog) {
          for (const statement of [logDdl.table, ...logDdl.triggers]) await ddlOnce(c, statement);
        }
      });
      migrated = true;
      return true;
    },

    async put(records, audit): Promise<PutOutcome> {
      if (records.length === 1) {
        const record = records[0] as PoisonRecord;
        const [holder] = await one<KeyRow>(sql.put, putValues(record, audit, true), true);
        if (!holder) wrote(1);
        return putOutcome("mysql", [record], [putRow(record, holder)]);
      }
      const batch = await putAllOrNone(client, "mysql", records, async (c, sorted) => {
        const found: PutRow[] = [];
        for (const record of sorted) {
          const [holder] = await rows<KeyRow>(c, sql.put, putValues(record, audit, false), true);
          found.push(putRow(record, holder));
        }
        return found;
      });
      if (batch.ok) wrote(batch.created.filter(Boolean).length);
      return batch;
    },

    async remove(keys, token, audit, expected): Promise<RemoveOutcome> {
      if (keys.length === 1 && !audit && !expected) {
        const [row] = await one<KeyRow>(
          sql.remove,
          [keyBytes(keys[0] as string), token, 1, null, null],
          true,
        );
        const single = removeOutcome(row && fromRow(row), token);
        if (single.ok) wrote(single.removed.length);
        return single;
      }
      // The change log's delete trigger reads the change type and time the procedure sets for
      // the statement: an operator's force-delete is told from a delete, and an audited
      // removal is logged at the audit entry's time.
      const change = audit
        ? [audit.action === "force-delete" ? "force-deleted" : "deleted", audit.at]
        : [null, null];
      const outcome = await removeAllOrNone(
        client,
        {
          // Each CALL locks and returns the row, and deletes it when the token allows; a
          // decision that says no rolls the whole transaction back.
          lock: (c, keys) =>
            eachInKeyOrder(keys, async (key) => {
              const [row] = await rows<KeyRow>(
                c,
                sql.remove,
                [keyBytes(key), token, 0, ...change],
                true,
              );
              return row && fromRow(row);
            }),
          audit: (c, values) => rows(c, sql.audit, values),
        },
        keys,
        token,
        audit,
        expected,
      );
      if (outcome.ok) wrote(outcome.removed.length);
      return outcome;
    },

    async update(keys, token, patch: RecordPatch): Promise<UpdateOutcome> {
      const lock = async (c: MysqlConnectionLike, key: string) => {
        const [row] = await rows<KeyRow>(c, sql.lock, [keyBytes(key)]);
        return row && fromRow(row);
      };
      const outcome = await updateAllOrNone(
        client,
        {
          lock: (c, keys) => eachInKeyOrder(keys, (key) => lock(c, key)),
          async update(c, key) {
            await rows(c, sql.update, [...patchValues(patch), keyBytes(key)]);
            const record = await lock(c, key);
            if (!record) throw new BackendUnavailableError("mysql", "a locked row vanished");
            return record;
          },
        },
        keys,
        token,
      );
      if (outcome.ok) wrote(outcome.records.length);
      return outcome;
    },

    async get(key) {
      const [row] = await one<KeyRow>(sql.get, [keyBytes(key)], true);
      return row ? fromRow(row) : null;
    },

    async getToken(key) {
      const [row] = await one<{ token: Buffer }>(sql.getToken, [keyBytes(key)], true);
      return row ? text(row.token) : null;
    },

    async list({ prefix, after, limit, filter }) {
      const lower = keyBytes(after ?? prefix);
      if (filter) {
        const stmt = after === null ? sql.listFirstFiltered : sql.listAfterFiltered;
        const conditions = filterValues(filter).flatMap((value) => [value, value]);
        const found = await one<KeyRow>(stmt, [
          lower,
          upperBound(prefix),
          ...conditions,
          checkedInteger(limit),
        ]);
        return found.map(fromRow);
      }
      const stmt = after === null ? sql.listFirst : sql.listAfter;
      return (await one<KeyRow>(stmt, [lower, upperBound(prefix), checkedInteger(limit)])).map(
        fromRow,
      );
    },

    async audit({ prefix, key, before, limit }): Promise<AuditEntry[]> {
      // Ids are sent as numbers (a byte string would compare as binary): far below 2^53.
      const bound = auditIdBound(before);
      if (bound === null) return [];
      const beforeId = before === null ? Number.MAX_SAFE_INTEGER : Number(bound);
      if (!Number.isSafeInteger(beforeId)) return [];
      const found =
        key !== undefined
          ? await one<AuditRow>(sql.auditByKey, [keyBytes(key), beforeId, checkedInteger(limit)])
          : await one<AuditRow>(sql.auditByPrefix, [
              keyBytes(prefix),
              upperBound(prefix),
              beforeId,
              checkedInteger(limit),
            ]);
      return found.map(fromAuditRow);
    },

    ...(changeLog ? { watch } : {}),

    async close() {
      await client.close();
    },
  };
}

/** `lockOne` of each key in key byte order (the one order every transaction locks rows in), one
 *  at a time; the records of the keys that are present. */
async function eachInKeyOrder(
  keys: readonly string[],
  lockOne: (key: string) => Promise<PoisonRecord | undefined>,
): Promise<PoisonRecord[]> {
  const held: PoisonRecord[] = [];
  for (const key of sortedByBytes(keys, (k) => k)) {
    const record = await lockOne(key);
    if (record) held.push(record);
  }
  return held;
}

function checkedInteger(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new InvalidArgumentError("limit", "must be a positive integer");
  }
  return limit;
}

const text = (value: Buffer): string => value.toString("utf8");
const maybeText = (value: Bytes): string | null => (value === null ? null : text(value));

function fromRow(row: KeyRow): PoisonRecord {
  return fromColumns(text(row.key), {
    token: text(row.token),
    state: text(row.state),
    created_at: text(row.created_at),
    updated_at: text(row.updated_at),
    heartbeat_at: maybeText(row.heartbeat_at),
    heartbeat_interval_ms: row.heartbeat_interval_ms ?? null,
    operation: maybeText(row.operation),
    owner: maybeText(row.owner),
    error: maybeText(row.error),
    data: maybeText(row.data),
  });
}

function fromAuditRow(row: AuditRow): AuditEntry {
  return fromAuditColumns(String(row.id), text(row.key), {
    at: text(row.at),
    action: text(row.action),
    actor: text(row.actor),
    reason: text(row.reason),
    token: maybeText(row.token),
    record: maybeText(row.record),
    detail: row.detail === undefined ? null : maybeText(row.detail),
  });
}

/** A change log row → the feed's change (storage key, the record after the change). */
function fromChangeRow(row: ChangeRow, position: string): DriverChange {
  const type = text(row.type);
  if (!(CHANGE_TYPES as readonly string[]).includes(type)) {
    throw new BackendUnavailableError("mysql", `the change log holds an unknown type ${type}`);
  }
  return {
    type: type as DriverChange["type"],
    key: text(row.key),
    record: fromRow(row),
    at: text(row.at),
    position,
  };
}

/** The put procedure's answer for `record`, for the shared putOutcome: no row, it inserted the
 *  record as sent; a row, the key was held (by this token or another) and this is the holder. */
function putRow(record: PoisonRecord, holder: KeyRow | undefined): PutRow {
  return holder ? { record: fromRow(holder), inserted: false } : { record, inserted: true };
}
