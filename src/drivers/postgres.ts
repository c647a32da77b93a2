/**
 * `postgres://…` — PostgreSQL through npm `pg` (8.x), loaded on first use.
 *
 * Every single-key call of the core contract is ONE statement (one round trip), race-free under
 * PostgreSQL's default READ COMMITTED isolation: the put decides through the unique index and
 * answers a conflict read-only (asked again in one rare race), the others take the row lock
 * before they decide (see the statements below and docs/BACKENDS-SQL.md). Batches, audited
 * deletes and updates are transactions that lock their rows in key byte order, so they are
 * all-or-none and two of them over overlapping keys queue instead of deadlocking.
 *
 * Keys are `bytea` of their UTF-8 bytes: the index order is byte order (the contract's key
 * order) and a prefix is a byte range, so `%`, `_` and `\` are plain bytes.
 *
 * Durable when the promise resolves, as far as the server's own settings make a commit durable
 * (`fsync`, `synchronous_commit`, and synchronous replication if the server is configured so).
 */
import { createHash } from "node:crypto";
import type { PoolConfig } from "pg";
import {
  type AuditColumns,
  fromAuditColumns,
  fromColumns,
  type RecordColumns,
} from "../core/codec.js";
import type {
  InitOptions,
  PoisonDriver,
  PutOutcome,
  RecordPatch,
  RemoveOutcome,
  UpdateOutcome,
} from "../core/driver.js";
import { BackendUnavailableError, InvalidArgumentError } from "../core/errors.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { optimistic } from "../core/retry.js";
import { redactUrl } from "../core/url.js";
import {
  postgresConfigurationError,
  postgresConnection,
  postgresSsl,
} from "./postgres-connection.js";
import { type PgListenClient, postgresWatch, TRIM_EVERY, trimStatement } from "./postgres-watch.js";
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
  sortedByBytes,
  upperBound,
} from "./sql-common.js";
import type { TlsOptions } from "./tls.js";

/** A statement as `pg` takes it: with a `name`, prepared once per connection and then only
 *  bound and executed; without one, parsed and planned on every call. */
export interface PgQueryConfig {
  name?: string;
  text: string;
  values?: unknown[];
}

/** The part of a `pg` pooled client the driver uses. */
export interface PgClientLike {
  /** Called with a {@link PgQueryConfig} for the driver's statements (a `pg` client accepts
   *  both forms), with a string for transaction control and setup. */
  query(query: string | PgQueryConfig, values?: unknown[]): Promise<{ rows: unknown[] }>;
  /** `release(error)` makes the pool discard the connection instead of reusing it. */
  release(error?: Error | boolean): void;
  on(event: "error", listener: (error: Error) => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
}

/** The part of a `pg` Pool the driver uses; pass your own `new pg.Pool(…)` as `pool`. */
export interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  end(): Promise<void>;
}

export interface PostgresDriverOptions {
  /** `postgres://user:password@host:port/database` (any form `pg` accepts), with
   *  `?sslmode=verify-full&sslrootcert=PATH[&sslcert=PATH&sslkey=PATH]` for TLS (see
   *  ./postgres-connection.ts). */
  url?: string;
  /** TLS with `url` (PEM text or file paths); verification is on unless `rejectUnauthorized`
   *  is false (UNSAFE). Merged with the URL's sslrootcert/sslcert/sslkey. */
  tls?: TlsOptions;
  /** An existing `pg` Pool to use instead of `url`. The caller owns it: `close()` leaves it
   *  open. Give it `connectionTimeoutMillis` and `query_timeout` so a dead server cannot hang
   *  its connections. */
  pool?: PgPoolLike;
  /** Table of poison keys. Default `poison_keys`. */
  table?: string;
  /** Table of audit entries. Default `poison_audit`. */
  auditTable?: string;
  /** Change log of `store.watch()`: one row per change, written by the change's own statement,
   *  trimmed to about the last 10,000. Default `poison_changes`. */
  changesTable?: string;
  /** Bound on opening a connection. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Bound on one statement, client side (the connection is discarded when it passes) and
   *  server side (`statement_timeout`, `lock_timeout`). Default 5000 ms. */
  queryTimeoutMs?: number;
  /** Pool size when the driver makes the pool. Default 10. */
  maxConnections?: number;
  /**
   * Named prepared statements: each statement is parsed and planned once per connection, then
   * only bound and executed (default true; the URL parameter `prepare=false` turns it off too).
   * Turn it off behind a pooler that hands each transaction a different server connection
   * without tracking prepared statements: PgBouncer in transaction mode before 1.21 (or with
   * `max_prepared_statements = 0`), older pgpool, some cloud proxies. Every statement is then
   * parsed and planned on every call, as an unnamed statement.
   */
  prepare?: boolean;
}

interface KeyRow extends RecordColumns {
  key: Buffer;
  /** The put statements: this call inserted the row. */
  inserted?: boolean;
  /** The single-key remove: this call deleted the row. */
  removed?: boolean;
}

interface AuditRow extends AuditColumns {
  id: string;
  key: Buffer;
}

/** A second miss needs the key deleted and put again by others between two attempts: only
 *  sustained churn on one key gets near this bound. */
const MAX_PUT_ATTEMPTS = 100;

const RECORD_COLUMNS =
  "key, token, state, created_at, updated_at, heartbeat_at, heartbeat_interval_ms, operation, owner, error, data";

export function postgresDriver(options: PostgresDriverOptions): PoisonDriver {
  if (!options || (options.url === undefined) === (options.pool === undefined)) {
    throw new InvalidArgumentError("options", "postgresDriver needs exactly one of url or pool");
  }
  const keysTable = quoteTable(checkTableName("options.table", options.table, "poison_keys"), '"');
  const auditName = checkTableName("options.auditTable", options.auditTable, "poison_audit");
  const auditTable = quoteTable(auditName, '"');
  const auditIndex = `"${auditName.split(".").at(-1)}_by_key"`;
  const changesName = checkTableName(
    "options.changesTable",
    options.changesTable,
    "poison_changes",
  );
  const changesTable = quoteTable(changesName, '"');
  const changesIndex = `"${changesName.split(".").at(-1)}_by_xid"`;
  // One channel per change log; a hash keeps it a short identifier whatever the table's name.
  const channel = `poison_watch_${createHash("sha1").update(changesName).digest("hex").slice(0, 16)}`;
  /**
   * The change-log arm of a write statement: one row per row `source` returns (filtered by
   * `where`), in the statement's own transaction, with the writer's transaction id (what a watch
   * orders by snapshot: src/drivers/postgres-watch.ts). The NOTIFY that wakes watches is sent
   * right after the commit (see `logged`), not in this transaction: PostgreSQL serializes the
   * commits of notifying transactions behind one lock held across their WAL flush, which cost
   * put+delete at concurrency 32 about 60% of its throughput (docs/OBSERVABILITY.md).
   */
  const logArm = (source: string, type: string, at: string, where = "") =>
    `INSERT INTO ${changesTable} (xid, key, type, at, record)
        SELECT txid_current(), ${source}.key, ${type}, ${at}, row_to_json(${source})::text
        FROM ${source}${where}`;
  const connectTimeoutMs = checkMillis("options.connectTimeoutMs", options.connectTimeoutMs, 5000);
  const queryTimeoutMs = checkMillis("options.queryTimeoutMs", options.queryTimeoutMs, 5000);
  const ownsPool = options.pool === undefined;
  let pool: PgPoolLike | null = options.pool ?? null;
  if (options.pool !== undefined && options.tls !== undefined) {
    throw new InvalidArgumentError("tls", "goes with url; a pool passed in brings its own ssl");
  }
  const connection =
    options.url === undefined ? null : postgresConnection(options.url, options.tls);
  if (options.prepare !== undefined && typeof options.prepare !== "boolean") {
    throw new InvalidArgumentError("options.prepare", "must be true or false");
  }
  // The option wins over the URL parameter; both default to prepared statements.
  const prepare = options.prepare ?? connection?.prepare ?? true;

  /*
   * Put-if-absent of one key, one statement that answers a conflict read-only. `ins` inserts
   * the row unless the key exists: ON CONFLICT checks the unique index (waiting for an
   * in-flight writer of that key to finish), not the snapshot, so two puts can never both
   * insert. The first arm returns the row we inserted; the second, only when we inserted
   * nothing, the holder as of the statement's snapshot, with no write and no lock. Race-free:
   * - inserted: the row is ours, visible from our commit on;
   * - holder seen: it held the key at the snapshot, a moment within the call, and a put that
   *   changes nothing can take effect at that moment (a later delete or re-put is after us);
   * - no row at all: the conflicting row was committed after our snapshot, so neither arm sees
   *   it and nothing was written; the caller asks again, with a new snapshot that sees it.
   */
  const putStatement = (more: string) => `WITH ins AS (
        INSERT INTO ${keysTable} (${RECORD_COLUMNS})
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (key) DO NOTHING
        RETURNING ${RECORD_COLUMNS}
      ), logged AS (
        ${logArm("ins", "'put'", "ins.updated_at")}
      )${more}
      SELECT ${RECORD_COLUMNS}, true AS inserted FROM ins
      UNION ALL
      SELECT ${RECORD_COLUMNS}, false FROM ${keysTable}
      WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`;

  const text = {
    put: putStatement(""),
    /* The same with the audit entry of a manual put (`info.audit`), written only by an insert:
     * `audited` reads `ins`. Two texts rather than one with a NULL-guarded arm: the common put
     * carries eleven parameters instead of seventeen and touches no audit table. */
    putAudited: putStatement(`, audited AS (
        INSERT INTO ${auditTable} (at, action, key, actor, reason, token, record)
        SELECT $12, $13, ins.key, $14, $15, $16, $17 FROM ins
      )`),
    /*
     * Put-if-absent inside a batch's transaction. INSERT … ON CONFLICT DO UPDATE either inserts
     * the row or, when the key exists, waits for any concurrent writer of that row, locks the
     * latest committed version and "updates" it to itself, so RETURNING hands back the holder as
     * it stands now. The lock is what a batch needs: every key it found held stays as found
     * until the batch commits or rolls back, so the batch is all-or-none. `xmax = 0` holds only
     * for a freshly inserted tuple, so only a real insert is audited.
     */
    putLocked: `WITH put AS (
        INSERT INTO ${keysTable} AS p (${RECORD_COLUMNS})
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (key) DO UPDATE SET token = p.token
        RETURNING ${RECORD_COLUMNS}, (p.xmax = 0) AS inserted
      ), audited AS (
        INSERT INTO ${auditTable} (at, action, key, actor, reason, token, record)
        SELECT $12, $13, put.key, $14, $15, $16, $17 FROM put
        WHERE put.inserted AND $13::text IS NOT NULL
      ), logged AS (
        ${logArm("put", "'put'", "put.updated_at", " WHERE put.inserted")}
      )
      SELECT * FROM put`,
    /*
     * Delete-if-token-matches, one statement and no lock taken before the decision. `removed`
     * deletes the row only when its token matches ($2 NULL: any token, the operator's
     * force-delete); under READ COMMITTED a row changed by a concurrent writer is re-checked on
     * its latest version (a heartbeat keeps the token: still ours), and one deleted meanwhile is
     * skipped. The first arm returns the row deleted; the second, only when nothing was, the row
     * as of the statement's snapshot, read without a lock. The caller decides:
     * - deleted: the row is gone with our commit;
     * - another token seen: the key was held by it at the snapshot, a moment within the call,
     *   and a delete that changes nothing takes effect then (conflict, the holder's record);
     * - our token seen but nothing deleted: a concurrent delete removed that row after our
     *   snapshot; ours takes effect just after it, on an absent key;
     * - no row: absent at the snapshot (a later put is after us).
     */
    remove: `WITH removed AS (
        DELETE FROM ${keysTable}
        WHERE key = $1 AND ($2::text IS NULL OR token = $2::text)
        RETURNING ${RECORD_COLUMNS}
      ), logged AS (
        ${logArm("removed", "$3::text", "$4::text")}
      )
      SELECT ${RECORD_COLUMNS}, true AS removed FROM removed
      UNION ALL
      SELECT ${RECORD_COLUMNS}, false FROM ${keysTable}
      WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM removed)`,
    // Reads select `*`: they also serve tables of an older layout, which only a write migrates.
    get: `SELECT * FROM ${keysTable} WHERE key = $1`,
    // getPoison: the token alone, the one column it needs (no record to decode).
    getToken: `SELECT token FROM ${keysTable} WHERE key = $1`,
    lockMany: `SELECT ${RECORD_COLUMNS} FROM ${keysTable} WHERE key = ANY($1::bytea[]) ORDER BY key FOR UPDATE`,
    // A batch's delete of a locked row, logged as $2 (deleted / force-deleted) at $3.
    deleteOne: `WITH removed AS (
        DELETE FROM ${keysTable} WHERE key = $1 RETURNING ${RECORD_COLUMNS}
      )
      ${logArm("removed", "$2::text", "$3::text")}`,
    // An update of a locked row, logged as $7 (poisoned / touched: the caller read the state).
    update: `WITH updated AS (
        UPDATE ${keysTable} SET updated_at = $2, state = coalesce($3, state),
          error = coalesce($4, error), heartbeat_at = coalesce($5, heartbeat_at),
          heartbeat_interval_ms = coalesce($6, heartbeat_interval_ms)
        WHERE key = $1 RETURNING ${RECORD_COLUMNS}
      ), logged AS (
        ${logArm("updated", "$7::text", "updated.updated_at")}
      )
      SELECT * FROM updated`,
    audit: `INSERT INTO ${auditTable} (at, action, key, actor, reason, token, record, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    listFirst: `SELECT * FROM ${keysTable} WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3`,
    listAfter: `SELECT * FROM ${keysTable} WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3`,
    // A NULL filter value matches every row.
    listFirstFiltered: `SELECT * FROM ${keysTable} WHERE key >= $1 AND key < $2
      AND ($4::text IS NULL OR token = $4) AND ($5::text IS NULL OR state = $5)
      AND ($6::text IS NULL OR operation = $6) ORDER BY key LIMIT $3`,
    listAfterFiltered: `SELECT * FROM ${keysTable} WHERE key > $1 AND key < $2
      AND ($4::text IS NULL OR token = $4) AND ($5::text IS NULL OR state = $5)
      AND ($6::text IS NULL OR operation = $6) ORDER BY key LIMIT $3`,
    // `a.id`, qualified: a bare ORDER BY id would sort by the output column `id`, which is text
    // (so "9" came before "10" and pages skipped entries).
    // `a.*` then `id` again as text: pg keeps the last column of a name, the text one (a bigint
    // would come back as a string anyway; this keeps it exact and explicit).
    auditByPrefix: `SELECT a.*, a.id::text AS id FROM ${auditTable} a
      WHERE key >= $1 AND key < $2 AND a.id < $3::bigint ORDER BY a.id DESC LIMIT $4`,
    auditByKey: `SELECT a.*, a.id::text AS id FROM ${auditTable} a
      WHERE key = $1 AND a.id < $2::bigint ORDER BY a.id DESC LIMIT $3`,
    trimChanges: trimStatement(changesTable),
    // No payload: a watch reads what is new from the log, whatever woke it.
    notify: `SELECT pg_notify('${channel}', '')`,
  };
  const sql = statements(text, prepare);

  /** Run `body` on one pooled connection; any failure or overrun discards the connection (so a
   *  broken or half-used one never returns to the pool), success returns it. */
  const withClient = <T>(body: (client: PgClientLike) => Promise<T>): Promise<T> => {
    const current = pool;
    if (!current)
      return Promise.reject(new BackendUnavailableError("postgres", "the driver is not open"));
    // An error on a checked-out client with no listener would crash the process.
    const ignore = () => undefined;
    return onConnection(
      queryTimeoutMs,
      "postgres",
      async () => {
        const client = await current.connect();
        client.on("error", ignore);
        return client;
      },
      body,
      (client, error) => {
        client.off("error", ignore);
        client.release(error ?? false);
      },
    ).catch((error: unknown) => {
      throw postgresConfigurationError(error) ?? error;
    });
  };

  const rows = async <R>(
    client: PgClientLike,
    statement: Statement,
    values: unknown[],
  ): Promise<R[]> => (await client.query({ ...statement, values })).rows as R[];

  /** One statement on its own connection, autocommitted. A prepared `SELECT *` whose table
   *  gained a column since (another process migrated it) fails before it runs, with "cached plan
   *  must not change result type"; its connection is discarded, and a fresh one prepares it
   *  again: asked once more. */
  const one = async <R>(statement: Statement, values: unknown[]): Promise<R[]> => {
    try {
      return await withClient((client) => rows<R>(client, statement, values));
    } catch (error) {
      if (statement.name === undefined || !isStalePlan(error)) throw error;
      return withClient((client) => rows<R>(client, statement, values));
    }
  };

  /** BEGIN … COMMIT; on any failure the connection is discarded, which rolls back. */
  const transaction = <T>(body: (client: PgClientLike) => Promise<T | Rollback<T>>) =>
    withClient(async (client) => {
      await client.query("BEGIN");
      const result = await body(client);
      if (result instanceof Rollback) {
        await client.query("ROLLBACK");
        return result.value;
      }
      await client.query("COMMIT");
      return result;
    });

  let migrated = false;

  /*
   * After a committed write that logged changes: wake the watches, and now and then trim the
   * log: with a chance of changes / TRIM_EVERY (a batch of that many always), so the log stays
   * bounded however short-lived its writers (a CLI process logs one change and exits). Both run in the background, off the caller's path (its call is answered, in one round
   * trip), on a pooled connection, their failures ignored, at most one of each at a time;
   * close() waits for them.
   *
   * The NOTIFY follows the commit instead of riding in its transaction (see `logArm`). Nothing
   * is lost by that: what a watch delivers comes from the log rows, written with the change, and
   * any later NOTIFY, or the watch's own read every WATCH_HEARTBEAT_MS, reads every row it has
   * not seen. A writer that dies between its commit and its NOTIFY delays the event, no more.
   * Writes while a NOTIFY is in flight are covered by one more after it (coalesced).
   */
  let notifyAgain = false;
  let notifying: Promise<void> | null = null;
  /* The NOTIFYs go out on a connection of their own, never one of the pool: sent on pooled
   * connections they made a later call on the pool wait until its time bound (seen in the race
   * tests: the call never reached the server, 5 of 8 runs), and they would take a pooled
   * connection from the callers at every write anyway. */
  let notifier: Promise<PgListenClient> | null = null;
  const notifyOnce = async (): Promise<void> => {
    notifier ??= listenClient();
    const client = await notifier.catch((error: unknown) => {
      notifier = null;
      throw error;
    });
    try {
      await client.query(sql.notify.text);
    } catch (error) {
      notifier = null;
      await client.end().catch(() => undefined);
      throw error;
    }
  };
  const pumpNotify = async () => {
    while (notifyAgain) {
      notifyAgain = false;
      await notifyOnce().catch(() => undefined);
    }
    notifying = null;
  };
  let trimming: Promise<unknown> | null = null;
  const logged = (changes: number): void => {
    if (changes === 0) return;
    notifyAgain = true;
    notifying ??= pumpNotify();
    if (trimming || Math.random() * TRIM_EVERY >= changes) return;
    trimming = one(sql.trimChanges, [])
      .catch(() => undefined)
      .finally(() => {
        trimming = null;
      });
  };

  /** The dedicated connection of a watch: a client of its own, never one of the pool. */
  const listenClient = async (): Promise<PgListenClient> => {
    const { default: pg } = await import("pg");
    const client = new pg.Client({
      connectionString: connection?.connectionString,
      ...(connection?.tls ? { ssl: await postgresSsl(connection.tls) } : {}),
      connectionTimeoutMillis: connectTimeoutMs,
      query_timeout: queryTimeoutMs,
      statement_timeout: queryTimeoutMs,
      keepAlive: true,
    });
    // Until the watch listens for them, errors must not crash the process.
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    return client as unknown as PgListenClient;
  };

  const watch =
    connection === null
      ? undefined
      : postgresWatch({
          changesTable,
          channel,
          prepare,
          connect: listenClient,
          range: (prefix) => [keyBytes(prefix), upperBound(prefix)],
          classify: (error) => postgresConfigurationError(error) ?? error,
        });

  return {
    backend: "postgres",
    capabilities: { durable: true, shared: true, oneRoundTrip: true, listFilter: true },
    location:
      options.url === undefined ? "postgres (a pool passed by the caller)" : redactUrl(options.url),

    async init({ create }: InitOptions) {
      if (!pool) {
        const { default: pg } = await import("pg");
        const config: PoolConfig = {
          connectionString: connection?.connectionString,
          ...(connection?.tls ? { ssl: await postgresSsl(connection.tls) } : {}),
          max: options.maxConnections ?? 10,
          connectionTimeoutMillis: connectTimeoutMs,
          query_timeout: queryTimeoutMs,
          statement_timeout: queryTimeoutMs,
          lock_timeout: queryTimeoutMs,
          // A client that vanished mid-transaction must not keep its row locks for long.
          idle_in_transaction_session_timeout: Math.max(queryTimeoutMs * 2, 10_000),
          keepAlive: true,
        };
        const created = new pg.Pool(config);
        // An idle connection that breaks is dropped by the pool; without a listener the
        // 'error' event would crash the process.
        created.on("error", () => undefined);
        pool = created as unknown as PgPoolLike;
      }
      if (migrated) return true;
      if (!create) {
        const [found] = await one<{ exists: boolean }>(
          { text: "SELECT to_regclass($1) IS NOT NULL AS exists" },
          [keysTable],
        );
        return found?.exists === true;
      }
      // Two processes creating the tables at once would race in the catalog (duplicate
      // pg_type rows); a transaction-scoped advisory lock makes them take turns.
      await transaction(async (client) => {
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [
          `poison-store:${keysTable}`,
        ]);
        await client.query(`CREATE TABLE IF NOT EXISTS ${keysTable} (
          key bytea PRIMARY KEY,
          token text NOT NULL,
          state text NOT NULL,
          created_at text NOT NULL,
          updated_at text NOT NULL,
          heartbeat_at text,
          operation text,
          owner text,
          error text,
          data text
        )`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${auditTable} (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          at text NOT NULL,
          action text NOT NULL,
          key bytea NOT NULL,
          actor text NOT NULL,
          reason text NOT NULL,
          token text,
          record text
        )`);
        // Asked first: CREATE INDEX takes a SHARE lock on its table even when the index exists,
        // and two of them in one transaction (audit, change log) deadlock with a write that
        // locks the same tables in the other order.
        const absent = async (name: string) =>
          (
            (await client.query("SELECT to_regclass($1) IS NULL AS absent", [name])).rows[0] as {
              absent: boolean;
            }
          ).absent;
        if (await absent(inSchemaOf(auditTable, auditIndex)))
          await client.query(`CREATE INDEX IF NOT EXISTS ${auditIndex} ON ${auditTable} (key, id)`);
        // Layout 3: the change log of store.watch() (see src/drivers/postgres-watch.ts).
        if (await absent(changesTable)) {
          await client.query(`CREATE TABLE IF NOT EXISTS ${changesTable} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            xid bigint NOT NULL,
            key bytea NOT NULL,
            type text NOT NULL,
            at text NOT NULL,
            record text
          )`);
        }
        if (await absent(inSchemaOf(changesTable, changesIndex)))
          await client.query(`CREATE INDEX IF NOT EXISTS ${changesIndex} ON ${changesTable} (xid)`);
        // Layout 2: liveness and audit facts. Asked first, so a started store does not take an
        // exclusive table lock on every start just to find the columns there.
        for (const [table, column, type] of [
          [keysTable, "heartbeat_interval_ms", "integer"],
          [auditTable, "detail", "text"],
        ] as const) {
          const { rows: present } = await client.query(
            `SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
            [table, column],
          );
          if (present.length === 0)
            await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${column} ${type}`);
        }
      });
      migrated = true;
      return true;
    },

    async put(records, audit): Promise<PutOutcome> {
      if (records.length === 1) {
        const record = records[0] as PoisonRecord;
        const values = audit
          ? putParameters(record, audit)
          : putParameters(record, undefined).slice(0, 11);
        return optimistic<PutOutcome>(
          MAX_PUT_ATTEMPTS,
          async () => {
            const [row] = await one<KeyRow>(audit ? sql.putAudited : sql.put, values);
            // No row: lost a race with a put committed after our snapshot (see sql.put).
            if (!row) return { done: false };
            if (row.inserted) logged(1);
            return { done: true, value: putOutcome("postgres", [record], [putRow(row)]) };
          },
          () =>
            new BackendUnavailableError(
              "postgres",
              `put-if-absent kept racing with concurrent writers of the key (${MAX_PUT_ATTEMPTS} attempts)`,
            ),
        );
      }
      const batch = await transaction<PutOutcome>(async (client) => {
        const byKey = new Map<string, KeyRow | undefined>();
        for (const record of sortedByBytes(records, (r) => r.key)) {
          const [row] = await rows<KeyRow>(client, sql.putLocked, putParameters(record, audit));
          byKey.set(record.key, row);
        }
        const outcome = putOutcome(
          "postgres",
          records,
          records.map((r) => putRow(byKey.get(r.key))),
        );
        return outcome.ok ? outcome : new Rollback(outcome);
      });
      if (batch.ok) logged(batch.created.filter(Boolean).length);
      return batch;
    },

    async remove(keys, token, audit, expected): Promise<RemoveOutcome> {
      if (keys.length === 1 && !audit && !expected) {
        const [row] = await one<KeyRow>(sql.remove, [
          keyBytes(keys[0] as string),
          token,
          "deleted",
          new Date().toISOString(),
        ]);
        if (!row) return { ok: true, removed: [] };
        const record = fromRow(row);
        if (row.removed) {
          logged(1);
          return { ok: true, removed: [record] };
        }
        if (token !== null && record.token !== token) return { ok: false, conflicts: [record] };
        return { ok: true, removed: [] }; // deleted by another call after our snapshot
      }
      const batch = await transaction<RemoveOutcome>(async (client) => {
        const held = (await rows<KeyRow>(client, sql.lockMany, [keys.map(keyBytes)])).map(fromRow);
        const outcome = removeDecision(keys, held, token, expected);
        if (!outcome.ok) return new Rollback(outcome);
        const type = audit?.action === "force-delete" ? "force-deleted" : "deleted";
        const at = audit?.at ?? new Date().toISOString();
        for (const record of outcome.removed) {
          await rows(client, sql.deleteOne, [keyBytes(record.key), type, at]);
          if (audit) await rows(client, sql.audit, auditValues(audit, record));
        }
        return outcome;
      });
      if (batch.ok) logged(batch.removed.length);
      return batch;
    },

    async update(keys, token, patch: RecordPatch): Promise<UpdateOutcome> {
      const batch = await transaction<UpdateOutcome>(async (client) => {
        const held = (await rows<KeyRow>(client, sql.lockMany, [keys.map(keyBytes)])).map(fromRow);
        const present = new Set(held.map((r) => r.key));
        const missing = keys.filter((k) => !present.has(k));
        const conflicts = held.filter((r) => r.token !== token);
        if (missing.length > 0 || conflicts.length > 0) {
          return new Rollback({ ok: false as const, conflicts, missing });
        }
        const updated: PoisonRecord[] = [];
        const stateBefore = new Map(held.map((r) => [r.key, r.state]));
        for (const key of keys) {
          const poisoned = patch.state === "poisoned" && stateBefore.get(key) !== "poisoned";
          const [row] = await rows<KeyRow>(client, sql.update, [
            keyBytes(key),
            patch.updatedAt,
            patch.state ?? null,
            patch.error ? JSON.stringify(patch.error) : null,
            patch.heartbeatAt ?? null,
            patch.heartbeatIntervalMs ?? null,
            poisoned ? "poisoned" : "touched",
          ]);
          if (!row) throw new BackendUnavailableError("postgres", "a locked row vanished");
          updated.push(fromRow(row));
        }
        return { ok: true as const, records: updated };
      });
      if (batch.ok) logged(batch.records.length);
      return batch;
    },

    async get(key) {
      const [row] = await one<KeyRow>(sql.get, [keyBytes(key)]);
      return row ? fromRow(row) : null;
    },

    async getToken(key) {
      const [row] = await one<{ token: string }>(sql.getToken, [keyBytes(key)]);
      return row ? row.token : null;
    },

    async list({ prefix, after, limit, filter }) {
      const lower = keyBytes(after ?? prefix);
      const bounds = [lower, upperBound(prefix), limit];
      if (filter) {
        const stmt = after === null ? sql.listFirstFiltered : sql.listAfterFiltered;
        return (await one<KeyRow>(stmt, [...bounds, ...filterValues(filter)])).map(fromRow);
      }
      const stmt = after === null ? sql.listFirst : sql.listAfter;
      return (await one<KeyRow>(stmt, bounds)).map(fromRow);
    },

    async audit({ prefix, key, before, limit }): Promise<AuditEntry[]> {
      const beforeId = auditIdBound(before);
      if (beforeId === null) return [];
      const found =
        key !== undefined
          ? await one<AuditRow>(sql.auditByKey, [keyBytes(key), beforeId, limit])
          : await one<AuditRow>(sql.auditByPrefix, [
              keyBytes(prefix),
              upperBound(prefix),
              beforeId,
              limit,
            ]);
      return found.map((row) => fromAuditColumns(row.id, row.key.toString("utf8"), row));
    },

    ...(watch ? { watch } : {}),

    async close() {
      await notifying;
      await trimming;
      const notifyClient = notifier;
      notifier = null;
      if (notifyClient) await (await notifyClient.catch(() => null))?.end().catch(() => undefined);
      const current = pool;
      pool = ownsPool ? null : pool;
      if (ownsPool && current) await current.end();
    },
  };
}

/** A statement of the driver: its text, and its name when prepared statements are on. */
interface Statement {
  name?: string;
  text: string;
}

/**
 * Each statement's name is derived from its text (a hash: the text holds the table names), so
 * two drivers on one pool with different tables never share a name for different texts, which
 * `pg` refuses, and the same driver re-created reuses what a connection already prepared.
 */
function statements<K extends string>(
  texts: Record<K, string>,
  prepare: boolean,
): Record<K, Statement> {
  const out = {} as Record<K, Statement>;
  for (const [key, text] of Object.entries(texts) as [K, string][]) {
    out[key] = prepare
      ? { name: `poison_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`, text }
      : { text };
  }
  return out;
}

/** An index's name as to_regclass reads it: in the schema of its (quoted) table. */
function inSchemaOf(quotedTable: string, quotedIndex: string): string {
  const dot = quotedTable.indexOf('".');
  return dot < 0 ? quotedIndex : `${quotedTable.slice(0, dot + 2)}${quotedIndex}`;
}

/** SQLSTATE 0A000 "cached plan must not change result type". */
function isStalePlan(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === "0A000" &&
    /cached plan/i.test(error.message)
  );
}

function fromRow(row: KeyRow): PoisonRecord {
  return fromColumns(row.key.toString("utf8"), row);
}

/** A row of the put statement, for the shared putOutcome. */
function putRow(row: KeyRow | undefined): PutRow | undefined {
  return row && { record: fromRow(row), inserted: row.inserted === true };
}
