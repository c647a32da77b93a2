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
import type { Pool, PoolOptions } from "mysql2/promise";
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
import {
  type MysqlConnection,
  mysqlConfigurationError,
  mysqlConnection,
  mysqlSsl,
} from "./mysql-connection.js";
import {
  CHANGE_TYPES,
  type ChangeRow,
  changeFeed,
  changeLogDdl,
  DEFAULT_CHANGE_POLL_MS,
  DEFAULT_CHANGE_RETENTION,
  TRIM_EVERY_WRITES,
  trimChangeLog,
} from "./mysql-watch.js";
import {
  auditIdBound,
  auditValues,
  checkMillis,
  checkTableName,
  filterValues,
  keyBytes,
  onConnection,
  type PutRow,
  putOutcome,
  putParameters,
  quoteTable,
  Rollback,
  removeDecision,
  removeOutcome,
  sortedByBytes,
  upperBound,
} from "./sql-common.js";
import type { TlsOptions } from "./tls.js";

/** The part of a `mysql2/promise` pooled connection the driver uses. */
export interface MysqlConnectionLike {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  /** A prepared statement (mysql2 prepares it once per connection and caches it). Used for the
   *  hot-path statements when present; without it (a hand-written pool) they go through
   *  `query`. */
  execute?(sql: string, values: (Buffer | number | null)[]): Promise<[unknown, unknown]>;
  release(): void;
  destroy(): void;
}

/** The part of a `mysql2/promise` Pool the driver uses; pass your own `createPool(…)` as `pool`. */
export interface MysqlPoolLike {
  getConnection(): Promise<MysqlConnectionLike>;
  end(): Promise<void>;
}

export interface MysqlDriverOptions {
  /** `mysql://user:password@host:port/database` (`mariadb://` is the same), with
   *  `?ssl-mode=VERIFY_IDENTITY&ssl-ca=PATH[&ssl-cert=PATH&ssl-key=PATH]` for TLS (see
   *  ./mysql-connection.ts). */
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
   *  watched by the runtime's polling). See ./mysql-watch.ts. In a URL: `?change-log=off`. */
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

const RECORD_COLUMNS =
  "`key`, token, state, created_at, updated_at, heartbeat_at, heartbeat_interval_ms, operation, owner, error, data";

/** Bump with any change to a procedure body: procedures are created once and never replaced,
 *  so a new body gets a new name and old and new code can run side by side. */
const PROCEDURE_VERSION = "v3";

const ER_DUP_KEYNAME = 1061;
const ER_DUP_FIELDNAME = 1060;
const ER_TABLE_EXISTS = 1050;
const ER_SP_ALREADY_EXISTS = 1304;
const ER_LOCK_DEADLOCK = 1213;
const ER_DUP_ENTRY = 1062;
const ER_TRG_ALREADY_EXISTS = 1359;
const ER_NO_SUCH_TABLE = 1146;
const ER_LOCK_WAIT_TIMEOUT = 1205;
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
  const ownsPool = options.pool === undefined;
  let pool: MysqlPoolLike | null = options.pool ?? null;
  if (options.pool !== undefined && options.tls !== undefined) {
    throw new InvalidArgumentError("tls", "goes with url; a pool passed in brings its own ssl");
  }

  const ddl = [
    `CREATE TABLE IF NOT EXISTS ${keysTable} (
      \`key\` VARBINARY(1280) NOT NULL,
      token VARBINARY(1024) NOT NULL,
      state VARBINARY(32) NOT NULL,
      created_at VARBINARY(64) NOT NULL,
      updated_at VARBINARY(64) NOT NULL,
      heartbeat_at VARBINARY(64) NULL,
      heartbeat_interval_ms INT NULL,
      operation BLOB NULL,
      owner BLOB NULL,
      error MEDIUMBLOB NULL,
      data MEDIUMBLOB NULL,
      PRIMARY KEY (\`key\`)
    ) ENGINE = InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${auditTable} (
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
      at VARBINARY(64) NOT NULL,
      action VARBINARY(32) NOT NULL,
      \`key\` VARBINARY(1280) NOT NULL,
      actor BLOB NOT NULL,
      reason MEDIUMBLOB NOT NULL,
      token VARBINARY(1024) NULL,
      record MEDIUMBLOB NULL,
      detail BLOB NULL,
      PRIMARY KEY (id),
      KEY by_key (\`key\`, id)
    ) ENGINE = InnoDB`,
  ];

  /** The columns of a key row as procedure variables (`v_token`, …): a row read INTO them is
   *  returned with one SELECT, so a retried read never sends an empty result set first. */
  const variables = RECORD_COLUMNS.split(", ").slice(1);
  const declared = [
    "v_token VARBINARY(1024)",
    "v_state VARBINARY(32)",
    "v_created_at VARBINARY(64)",
    "v_updated_at VARBINARY(64)",
    "v_heartbeat_at VARBINARY(64)",
    "v_heartbeat_interval_ms INT",
    "v_operation BLOB",
    "v_owner BLOB",
    "v_error MEDIUMBLOB",
    "v_data MEDIUMBLOB",
  ];
  const intoVariables = `INTO ${variables.map((c) => `v_${c}`).join(", ")}`;
  const fromVariables = `p_key AS \`key\`, ${variables.map((c) => `v_${c} AS ${c}`).join(", ")}`;

  /*
   * Put-if-absent (procs v3). A plain INSERT either writes the row or fails with a duplicate
   * key (1062, caught by a CONTINUE handler): nothing else can tell "inserted" from "exists"
   * more cheaply, and an insert answers with no result set at all (the caller knows the record
   * it sent). Only when the key exists is the holder read and returned, whole.
   *
   * Alone (p_own_tx = 1) and without an audit entry, the INSERT is its own autocommit
   * transaction: one statement, no START TRANSACTION/COMMIT (the change log row, written by a
   * trigger, commits with it). The holder is then read by a consistent read of the latest
   * committed version, after the INSERT saw the row: a put that answers "held by X" is
   * linearized at that read. When the holder deleted the row in between, the INSERT is tried
   * again. With an audit entry the INSERT and the entry share a transaction; in a caller's
   * transaction (batches, p_own_tx = 0) the duplicate check left a shared lock on the row
   * (InnoDB keeps it to the end of the transaction), and the holder is read under it
   * (LOCK IN SHARE MODE: a shared lock, so two batches reading the same holder never need to
   * upgrade to exclusive and deadlock), so the answer holds until the caller commits.
   */
  const putProcedureDdl = `CREATE PROCEDURE ${putProcedure} (
      IN p_key VARBINARY(1280), IN p_token VARBINARY(1024), IN p_state VARBINARY(32),
      IN p_created_at VARBINARY(64), IN p_updated_at VARBINARY(64), IN p_heartbeat_at VARBINARY(64),
      IN p_heartbeat_interval_ms INT, IN p_operation BLOB, IN p_owner BLOB, IN p_error MEDIUMBLOB, IN p_data MEDIUMBLOB,
      IN a_at VARBINARY(64), IN a_action VARBINARY(32), IN a_actor BLOB, IN a_reason MEDIUMBLOB,
      IN a_token VARBINARY(1024), IN a_record MEDIUMBLOB, IN p_own_tx TINYINT)
    MODIFIES SQL DATA
    BEGIN
      DECLARE v_tx TINYINT DEFAULT IF(p_own_tx = 1 AND a_action IS NOT NULL, 1, 0);
      DECLARE v_duplicate TINYINT DEFAULT 0;
      DECLARE v_missing TINYINT DEFAULT 0;
      DECLARE v_tries INT DEFAULT 0;
      ${declared.map((d) => `DECLARE ${d};`).join("\n      ")}
      DECLARE CONTINUE HANDLER FOR ${ER_DUP_ENTRY} SET v_duplicate = 1;
      DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_missing = 1;
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        IF v_tx = 1 THEN ROLLBACK; END IF;
        RESIGNAL;
      END;
      IF v_tx = 1 THEN START TRANSACTION; END IF;
      attempt: LOOP
        SET v_duplicate = 0, v_missing = 0, v_tries = v_tries + 1;
        INSERT INTO ${keysTable} (${RECORD_COLUMNS})
          VALUES (p_key, p_token, p_state, p_created_at, p_updated_at, p_heartbeat_at,
                  p_heartbeat_interval_ms, p_operation, p_owner, p_error, p_data);
        IF v_duplicate = 0 THEN
          IF a_action IS NOT NULL THEN
            INSERT INTO ${auditTable} (at, action, \`key\`, actor, reason, token, record)
              VALUES (a_at, a_action, p_key, a_actor, a_reason, a_token, a_record);
          END IF;
          IF v_tx = 1 THEN COMMIT; END IF;
          LEAVE attempt;
        END IF;
        IF p_own_tx = 1 AND v_tx = 0 THEN
          SELECT ${variables.join(", ")} ${intoVariables}
            FROM ${keysTable} WHERE \`key\` = p_key;
        ELSE
          SELECT ${variables.join(", ")} ${intoVariables}
            FROM ${keysTable} WHERE \`key\` = p_key LOCK IN SHARE MODE;
        END IF;
        IF v_missing = 0 THEN
          IF v_tx = 1 THEN COMMIT; END IF;
          SELECT ${fromVariables}, 0 AS inserted;
          LEAVE attempt;
        END IF;
        IF v_tries >= 100 THEN
          SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'put: the key was deleted and re-inserted under every attempt';
        END IF;
      END LOOP;
    END`;

  /*
   * Delete-if-token-matches (p_token NULL: any token, the operator's force-delete), answering
   * with the row as it stood: deleted (same token), conflict (the holder) or absent (nothing).
   *
   * MariaDB, alone (p_own_tx = 1): one autocommit DELETE … RETURNING removes and returns the
   * row. Whether it removed one is told by a session variable its RETURNING list sets
   * (ROW_COUNT() is -1 after a statement that returns rows). When it removed nothing, a consistent read tells absent from held by another token
   * (the answer then is linearized at that read); a row found with the same token was written
   * again in between, and is deleted again.
   *
   * In a caller's transaction (batches, audited removals), p_change and p_change_at (the change
   * type and time for the change log's delete trigger) are set as session variables around the
   * DELETE.
   *
   * MySQL (no DELETE … RETURNING), and in a caller's transaction on both: SELECT … FOR UPDATE
   * locks the row (or, when absent, the gap where it would be, so no put can insert it until
   * the commit) and returns it; the DELETE runs under that lock.
   */
  const removeProcedureDdl = (mariadb: boolean) =>
    mariadb
      ? `CREATE PROCEDURE ${removeProcedure} (
      IN p_key VARBINARY(1280), IN p_token VARBINARY(1024), IN p_own_tx TINYINT,
      IN p_change VARBINARY(16), IN p_change_at VARBINARY(64))
    MODIFIES SQL DATA
    BEGIN
      DECLARE v_missing TINYINT DEFAULT 0;
      DECLARE v_tries INT DEFAULT 0;
      ${declared.map((d) => `DECLARE ${d};`).join("\n      ")}
      DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_missing = 1;
      IF p_own_tx = 1 THEN
        SET @poison_store_removed = 0;
        DELETE FROM ${keysTable} WHERE \`key\` = p_key AND (p_token IS NULL OR token = p_token)
          RETURNING ${RECORD_COLUMNS}, (@poison_store_removed := 1) AS removed;
        IF @poison_store_removed = 0 AND p_token IS NOT NULL THEN
          attempt: LOOP
            SET v_tries = v_tries + 1, v_missing = 0;
            SELECT ${variables.join(", ")} ${intoVariables}
              FROM ${keysTable} WHERE \`key\` = p_key;
            IF v_missing = 1 THEN LEAVE attempt; END IF;
            IF v_token <> p_token THEN
              SELECT ${fromVariables};
              LEAVE attempt;
            END IF;
            IF v_tries >= 100 THEN
              SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'remove: the key was re-written under every attempt';
            END IF;
            DELETE FROM ${keysTable} WHERE \`key\` = p_key AND token = p_token
              RETURNING ${RECORD_COLUMNS}, (@poison_store_removed := 1) AS removed;
            IF @poison_store_removed = 1 THEN LEAVE attempt; END IF;
          END LOOP;
        END IF;
      ELSE
        SET @poison_store_change = p_change, @poison_store_change_at = p_change_at;
        SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE \`key\` = p_key FOR UPDATE;
        DELETE FROM ${keysTable} WHERE \`key\` = p_key AND (p_token IS NULL OR token = p_token);
        SET @poison_store_change = NULL, @poison_store_change_at = NULL;
      END IF;
    END`
      : `CREATE PROCEDURE ${removeProcedure} (
      IN p_key VARBINARY(1280), IN p_token VARBINARY(1024), IN p_own_tx TINYINT,
      IN p_change VARBINARY(16), IN p_change_at VARBINARY(64))
    MODIFIES SQL DATA
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        SET @poison_store_change = NULL, @poison_store_change_at = NULL;
        IF p_own_tx = 1 THEN ROLLBACK; END IF;
        RESIGNAL;
      END;
      IF p_own_tx = 1 THEN START TRANSACTION; END IF;
      SET @poison_store_change = p_change, @poison_store_change_at = p_change_at;
      SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE \`key\` = p_key FOR UPDATE;
      DELETE FROM ${keysTable} WHERE \`key\` = p_key AND (p_token IS NULL OR token = p_token);
      SET @poison_store_change = NULL, @poison_store_change_at = NULL;
      IF p_own_tx = 1 THEN COMMIT; END IF;
    END`;

  /** A listing; `filtered` adds conditions on token, state and operation (NULL matches all). */
  const listing = (lowerBound: ">" | ">=", filtered: boolean) =>
    `SELECT * FROM ${keysTable} WHERE \`key\` ${lowerBound} ? AND \`key\` < ?${
      filtered
        ? " AND (? IS NULL OR token = ?) AND (? IS NULL OR state = ?) AND (? IS NULL OR operation = ?)"
        : ""
    } ORDER BY \`key\` LIMIT ?`;

  const sql = {
    put: `CALL ${putProcedure}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    remove: `CALL ${removeProcedure}(?, ?, ?, ?, ?)`,
    // Reads select `*`: they also serve tables of an older layout, which only a write migrates.
    get: `SELECT * FROM ${keysTable} WHERE \`key\` = ?`,
    getToken: `SELECT token FROM ${keysTable} WHERE \`key\` = ?`,
    lock: `SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE \`key\` = ? FOR UPDATE`,
    update: `UPDATE ${keysTable} SET updated_at = ?, state = coalesce(?, state),
      error = coalesce(?, error), heartbeat_at = coalesce(?, heartbeat_at),
      heartbeat_interval_ms = coalesce(?, heartbeat_interval_ms) WHERE \`key\` = ?`,
    audit: `INSERT INTO ${auditTable} (at, action, \`key\`, actor, reason, token, record, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    listFirst: listing(">=", false),
    listAfter: listing(">", false),
    listFirstFiltered: listing(">=", true),
    listAfterFiltered: listing(">", true),
    auditByPrefix: `SELECT * FROM ${auditTable}
       WHERE \`key\` >= ? AND \`key\` < ? AND id < ? ORDER BY id DESC LIMIT ?`,
    auditByKey: `SELECT * FROM ${auditTable}
       WHERE \`key\` = ? AND id < ? ORDER BY id DESC LIMIT ?`,
  };

  /** Run `body` on one pooled connection. Any failure or overrun destroys the connection, so a
   *  broken one (or one still holding locks of an abandoned transaction) never returns to the
   *  pool; success releases it. */
  const withConnection = <T>(body: (c: MysqlConnectionLike) => Promise<T>): Promise<T> => {
    const current = pool;
    if (!current)
      return Promise.reject(new BackendUnavailableError("mysql", "the driver is not open"));
    return onConnection(
      queryTimeoutMs,
      "mysql",
      () => current.getConnection(),
      body,
      (connection, error) => (error ? connection.destroy() : connection.release()),
    ).catch((error: unknown) => {
      throw mysqlConfigurationError(error) ?? error;
    });
  };

  /** A deadlock victim's transaction was rolled back whole, so running it again is safe. InnoDB
   *  picks victims even among transactions that lock keys in one order (its duplicate-key checks
   *  lock the gap before a row too), so a batch under heavy contention may need a few tries;
   *  a short random pause keeps the same two from colliding again. */
  const retryDeadlocks = <T>(run: () => Promise<T>): Promise<T> =>
    retry(run, {
      ...DEADLOCK_RETRY,
      shouldRetry: (error) => (error as { errno?: number }).errno === ER_LOCK_DEADLOCK,
    });

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
    retryDeadlocks(() => withConnection((c) => rows<R>(c, text, values, prepared)));

  /** START TRANSACTION … COMMIT; any failure destroys the connection, which rolls back. */
  const transaction = <T>(body: (c: MysqlConnectionLike) => Promise<T | Rollback<T>>) =>
    retryDeadlocks(() =>
      withConnection(async (c) => {
        await c.query("START TRANSACTION");
        const result = await body(c);
        if (result instanceof Rollback) {
          await c.query("ROLLBACK");
          return result.value;
        }
        await c.query("COMMIT");
        return result;
      }),
    );

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
        missingTable: (error) => (error as { errno?: number }).errno === ER_NO_SUCH_TABLE,
        lockTimeout: (error) => (error as { errno?: number }).errno === ER_LOCK_WAIT_TIMEOUT,
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
      if (!pool) {
        const mysql = await import("mysql2/promise");
        const config: PoolOptions = {
          uri: (connection as MysqlConnection).uri,
          ...(connection?.tls ? { ssl: await mysqlSsl(connection.tls) } : {}),
          connectionLimit: options.maxConnections ?? 10,
          connectTimeout: connectTimeoutMs,
          enableKeepAlive: true,
          supportBigNumbers: true,
          bigNumberStrings: true,
        };
        const created: Pool = mysql.createPool(config);
        // A connection abandoned by the client keeps its locks until its lock waits end; keep
        // those waits as short as the client's own bound.
        const lockWaitSeconds = Math.max(1, Math.ceil(queryTimeoutMs / 1000));
        created.pool.on("connection", (connection) => {
          connection.query(`SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}`, () => {
            // A failure here surfaces on the connection's next statement.
          });
        });
        pool = created as unknown as MysqlPoolLike;
      }
      if (!create) return (await columnsOf(tableName)).size > 0;
      /** Run a DDL statement; one that another process ran first is fine. */
      const ddlOnce = async (c: MysqlConnectionLike, statement: string) => {
        try {
          await c.query(statement);
        } catch (error) {
          const errno = (error as { errno?: number }).errno;
          if (
            errno !== ER_SP_ALREADY_EXISTS &&
            errno !== ER_TRG_ALREADY_EXISTS &&
            errno !== ER_TABLE_EXISTS &&
            errno !== ER_DUP_KEYNAME &&
            errno !== ER_DUP_FIELDNAME
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
      const batch = await transaction<PutOutcome>(async (c) => {
        const byKey = new Map<string, KeyRow | undefined>();
        for (const record of sortedByBytes(records, (r) => r.key)) {
          const [holder] = await rows<KeyRow>(c, sql.put, putValues(record, audit, false), true);
          byKey.set(record.key, holder);
        }
        const outcome = putOutcome(
          "mysql",
          records,
          records.map((r) => putRow(r, byKey.get(r.key))),
        );
        return outcome.ok ? outcome : new Rollback(outcome);
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
      const outcome = await transaction<RemoveOutcome>(async (c) => {
        // Each CALL locks and returns the row, and deletes it when the token allows; the
        // decision below rolls the whole transaction back when any key says no.
        const held: PoisonRecord[] = [];
        for (const key of sortedByBytes(keys, (k) => k)) {
          const [row] = await rows<KeyRow>(
            c,
            sql.remove,
            [keyBytes(key), token, 0, ...change],
            true,
          );
          if (row) held.push(fromRow(row));
        }
        const decided = removeDecision(keys, held, token, expected);
        if (!decided.ok) return new Rollback(decided);
        if (audit) {
          for (const record of decided.removed)
            await rows(c, sql.audit, auditValues(audit, record));
        }
        return decided;
      });
      if (outcome.ok) wrote(outcome.removed.length);
      return outcome;
    },

    async update(keys, token, patch: RecordPatch): Promise<UpdateOutcome> {
      return transaction<UpdateOutcome>(async (c) => {
        const held = new Map<string, PoisonRecord>();
        for (const key of sortedByBytes(keys, (k) => k)) {
          const [row] = await rows<KeyRow>(c, sql.lock, [keyBytes(key)]);
          if (row) held.set(key, fromRow(row));
        }
        const missing = keys.filter((k) => !held.has(k));
        const conflicts = [...held.values()].filter((r) => r.token !== token);
        if (missing.length > 0 || conflicts.length > 0) {
          return new Rollback({ ok: false as const, conflicts, missing });
        }
        const updated: PoisonRecord[] = [];
        for (const key of keys) {
          await rows(c, sql.update, [
            patch.updatedAt,
            patch.state ?? null,
            patch.error ? JSON.stringify(patch.error) : null,
            patch.heartbeatAt ?? null,
            patch.heartbeatIntervalMs ?? null,
            keyBytes(key),
          ]);
          const [row] = await rows<KeyRow>(c, sql.lock, [keyBytes(key)]);
          if (!row) throw new BackendUnavailableError("mysql", "a locked row vanished");
          updated.push(fromRow(row));
        }
        return { ok: true as const, records: updated };
      }).then((outcome) => {
        if (outcome.ok) wrote(outcome.records.length);
        return outcome;
      });
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
      const current = pool;
      pool = ownsPool ? null : pool;
      if (ownsPool && current) await current.end();
    },
  };
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
