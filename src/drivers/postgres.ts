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
import {
  type AuditColumns,
  fromAuditColumns,
  fromColumns,
  type RecordColumns,
} from "../core/codec.js";
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
import { optimistic, sleep } from "../core/retry.js";
import { redactUrl } from "../core/url.js";
import { postgresConfigurationError, postgresConnection } from "./postgres/connection.js";
import {
  type PgClientLike,
  type PgPoolLike,
  postgresClient,
  postgresListenClient,
} from "./postgres/pool.js";
import {
  postgresSchema,
  postgresStatements,
  postgresTables,
  prepared,
  type Statement,
} from "./postgres/statements.js";
import {
  NOTIFY_SPACING_MS,
  type PgListenClient,
  postgresWatch,
  TRIM_EVERY,
} from "./postgres/watch.js";
import { patchValues, putAllOrNone, removeAllOrNone, updateAllOrNone } from "./sql/batches.js";
import {
  auditIdBound,
  checkMillis,
  filterValues,
  keyBytes,
  putAuditParameters,
  putOutcome,
  putParameters,
  recordParameters,
  upperBound,
} from "./sql/common.js";
import type { TlsOptions } from "./tls.js";

export type { PgClientLike, PgPoolLike, PgQueryConfig } from "./postgres/pool.js";

export interface PostgresDriverOptions {
  /** `postgres://user:password@host:port/database` (any form `pg` accepts), with
   *  `?sslmode=verify-full&sslrootcert=PATH[&sslcert=PATH&sslkey=PATH]` for TLS (see
   *  ./postgres/connection.ts). */
  url?: string;
  /** TLS with `url` (PEM text or file paths); verification is on unless `rejectUnauthorized`
   *  is false (UNSAFE). Merged with the URL's sslrootcert/sslcert/sslkey. */
  tls?: TlsOptions;
  /** An existing `pg` Pool to use instead of `url`. The caller owns it: `close()` leaves it
   *  open. Give it `connectionTimeoutMillis` and `query_timeout` so a dead server cannot hang
   *  its connections. Without a `url` the store opens no connection of its own: its `watch`
   *  polls, and it sends no NOTIFY, so watches of other stores on the same tables see its
   *  changes at their next read of the change log (within 10 s) rather than at once. */
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
  /** The batch put: this call inserted the row. */
  inserted?: boolean;
}

/** The single-key put's answer: inserted (`holder` null), or the holder's row as JSON (the
 *  record's columns by name: one column to decode instead of eleven). */
interface PutAnswer {
  holder: string | null;
  inserted: boolean;
}

interface AuditRow extends AuditColumns {
  id: string;
  key: Buffer;
}

/** A second miss needs the key deleted and put again by others between two attempts: only
 *  sustained churn on one key gets near this bound. */
const MAX_PUT_ATTEMPTS = 100;

export function postgresDriver(options: PostgresDriverOptions): PoisonDriver {
  if (!options || (options.url === undefined) === (options.pool === undefined)) {
    throw new InvalidArgumentError("options", "postgresDriver needs exactly one of url or pool");
  }
  const tables = postgresTables(options);
  const { keys: keysTable, audit: auditTable, changes: changesTable } = tables;
  const connectTimeoutMs = checkMillis("options.connectTimeoutMs", options.connectTimeoutMs, 5000);
  const queryTimeoutMs = checkMillis("options.queryTimeoutMs", options.queryTimeoutMs, 5000);
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
  const limits = {
    connectTimeoutMs,
    queryTimeoutMs,
    maxConnections: options.maxConnections ?? 10,
  };

  const sql = prepared(postgresStatements(tables), prepare);

  const client = postgresClient(connection, limits, options.pool ? { pool: options.pool } : {});

  const rows = async <R>(
    connection: PgClientLike,
    statement: Statement,
    values: unknown[],
  ): Promise<R[]> => (await connection.query({ ...statement, values })).rows as R[];

  /** One statement on its own connection, autocommitted. A prepared `SELECT *` whose table
   *  gained a column since (another process migrated it) fails before it runs, with "cached plan
   *  must not change result type"; its connection is discarded, and a fresh one prepares it
   *  again: asked once more. */
  const one = async <R>(statement: Statement, values: unknown[]): Promise<R[]> => {
    try {
      return await client.withConnection((c) => rows<R>(c, statement, values));
    } catch (error) {
      if (statement.name === undefined || !isStalePlan(error)) throw error;
      return client.withConnection((c) => rows<R>(c, statement, values));
    }
  };

  /** The present rows of `keys`, locked in key byte order until the transaction ends. */
  const lockMany = async (c: PgClientLike, keys: readonly string[]) =>
    (await rows<KeyRow>(c, sql.lockMany, [keys.map(keyBytes)])).map(fromRow);

  let migrated = false;

  /*
   * After a committed write that logged changes: wake the watches, and now and then trim the
   * log: with a chance of changes / TRIM_EVERY (a batch of that many always), so the log stays
   * bounded however short-lived its writers (a CLI process logs one change and exits). Both
   * run in the background, off the caller's path (its call is answered, in one round trip),
   * their failures ignored, at most one of each at a time; close() waits for them.
   *
   * The NOTIFY follows the commit instead of riding in its transaction (see `logArm`). Nothing
   * is lost by that: what a watch delivers comes from the log rows, written with the change, and
   * any later NOTIFY, or the watch's own read every WATCH_HEARTBEAT_MS, reads every row it has
   * not seen. A writer that dies between its commit and its NOTIFY delays the event, no more.
   * Writes while a NOTIFY is in flight or waits out its spacing share the next one.
   */
  let notifyAgain = false;
  let notifying: Promise<void> | null = null;
  /* The NOTIFYs go out on a connection of their own, never one of the pool: sent on pooled
   * connections they made a later call on the pool wait until its time bound (seen in the race
   * tests: the call never reached the server, 5 of 8 runs), and they would take a pooled
   * connection from the callers at every write anyway. */
  let notifier: Promise<PgListenClient> | null = null;
  const notifyOnce = async (): Promise<void> => {
    // A NOTIFY's transaction takes an xid, so its commit would wait for a WAL flush like a
    // write's, doubling the flushes per write; nothing needs it durable (a lost NOTIFY delays
    // a watch until its next read of the log, no more), so its session commits asynchronously.
    notifier ??= listenClient().then(async (notifyClient) => {
      try {
        await notifyClient.query("SET synchronous_commit = off");
      } catch (error) {
        await notifyClient.end().catch(() => undefined);
        throw error;
      }
      return notifyClient;
    });
    const notifyClient = await notifier.catch((error: unknown) => {
      notifier = null;
      throw error;
    });
    try {
      await notifyClient.query(sql.notify.text);
    } catch (error) {
      notifier = null;
      await notifyClient.end().catch(() => undefined);
      throw error;
    }
  };
  /* Spacing: a NOTIFY goes out at once after a quiet spell, but never sooner than
   * NOTIFY_SPACING_MS after the previous one; writes in between share the next. A lone write is
   * announced at once; a busy writer sends one NOTIFY per spacing instead of one per write (at
   * concurrency 1 each NOTIFY cost a server transaction per write: docs/BENCHMARKS.md). close()
   * cuts the wait short and sends the last one at once. */
  let notifiedAt = Number.NEGATIVE_INFINITY;
  const closing = new AbortController();
  const pumpNotify = async () => {
    while (notifyAgain) {
      const wait = notifiedAt + NOTIFY_SPACING_MS - performance.now();
      if (wait > 0) await sleep(wait, closing.signal);
      notifyAgain = false;
      notifiedAt = performance.now();
      await notifyOnce().catch(() => undefined);
    }
    notifying = null;
  };
  let trimming: Promise<unknown> | null = null;
  const logged = (changes: number): void => {
    if (changes === 0) return;
    // With a caller's pool there is no URL to open the NOTIFY connection with (libpq's
    // defaults could name another server): watches elsewhere see these changes at their next
    // read of the log instead.
    if (connection !== null) {
      notifyAgain = true;
      notifying ??= pumpNotify();
    }
    if (trimming || Math.random() * TRIM_EVERY >= changes) return;
    trimming = one(sql.trimChanges, [])
      .catch(() => undefined)
      .finally(() => {
        trimming = null;
      });
  };

  /** The dedicated connection of a watch or of the NOTIFYs: a client of its own. */
  const listenClient = () => postgresListenClient(connection, limits);

  const watch =
    connection === null
      ? undefined
      : postgresWatch({
          changesTable,
          channel: tables.channel,
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
      await client.open();
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
      const schema = postgresSchema(tables);
      const { auditIndex, changesIndex } = tables;
      await client.transaction(async (c) => {
        await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`poison-store:${keysTable}`]);
        await c.query(schema.keys);
        await c.query(schema.audit);
        // Asked first: CREATE INDEX takes a SHARE lock on its table even when the index exists,
        // and two of them in one transaction (audit, change log) deadlock with a write that
        // locks the same tables in the other order.
        const absent = async (name: string) =>
          (
            (await c.query("SELECT to_regclass($1) IS NULL AS absent", [name])).rows[0] as {
              absent: boolean;
            }
          ).absent;
        if (await absent(inSchemaOf(auditTable, auditIndex)))
          await c.query(`CREATE INDEX IF NOT EXISTS ${auditIndex} ON ${auditTable} (key, id)`);
        // Layout 3: the change log of store.watch() (see src/drivers/postgres/watch.ts).
        if (await absent(changesTable)) {
          await c.query(schema.changes);
        }
        if (await absent(inSchemaOf(changesTable, changesIndex)))
          await c.query(`CREATE INDEX IF NOT EXISTS ${changesIndex} ON ${changesTable} (xid)`);
        // Layout 2: liveness and audit facts. Asked first, so a started store does not take an
        // exclusive table lock on every start just to find the columns there.
        for (const [table, column, type] of [
          [keysTable, "heartbeat_interval_ms", "integer"],
          [auditTable, "detail", "text"],
        ] as const) {
          const { rows: present } = await c.query(
            `SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
            [table, column],
          );
          if (present.length === 0)
            await c.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${column} ${type}`);
        }
      });
      migrated = true;
      return true;
    },

    async put(records, audit): Promise<PutOutcome> {
      if (records.length === 1) {
        const record = records[0] as PoisonRecord;
        const values = audit ? putParameters(record, audit) : recordParameters(record);
        return optimistic<PutOutcome>(
          MAX_PUT_ATTEMPTS,
          async () => {
            const [row] = await one<PutAnswer>(audit ? sql.putAudited : sql.put, values);
            // No row: lost a race with a put committed after our snapshot (see sql.put).
            if (!row) return { done: false };
            if (row.inserted) logged(1);
            // Inserted: the row is the record as sent. Else the holder, as one JSON column.
            const found =
              row.holder === null
                ? { record, inserted: true }
                : { record: fromJson(record.key, row.holder), inserted: false };
            return { done: true, value: putOutcome("postgres", [record], [found]) };
          },
          () =>
            new BackendUnavailableError(
              "postgres",
              `put-if-absent kept racing with concurrent writers of the key (${MAX_PUT_ATTEMPTS} attempts)`,
            ),
        );
      }
      const batch = await putAllOrNone(client, "postgres", records, async (c, sorted) => {
        const found = await rows<KeyRow>(c, sql.putMany, putManyParameters(sorted, audit));
        return found.map((row) => ({ record: fromRow(row), inserted: row.inserted === true }));
      });
      if (batch.ok) logged(batch.created.filter(Boolean).length);
      return batch;
    },

    async remove(keys, token, audit, expected): Promise<RemoveOutcome> {
      if (keys.length === 1 && !audit && !expected) {
        const key = keys[0] as string;
        const [row] = await one<{ record: string; removed: boolean }>(sql.remove, [
          keyBytes(key),
          token,
          "deleted",
          new Date().toISOString(),
        ]);
        if (!row) return { ok: true, removed: [] };
        const record = fromJson(key, row.record);
        if (row.removed) {
          logged(1);
          return { ok: true, removed: [record] };
        }
        if (token !== null && record.token !== token) return { ok: false, conflicts: [record] };
        return { ok: true, removed: [] }; // deleted by another call after our snapshot
      }
      const type = audit?.action === "force-delete" ? "force-deleted" : "deleted";
      const at = audit?.at ?? new Date().toISOString();
      const batch = await removeAllOrNone(
        client,
        {
          lock: lockMany,
          delete: (c, record) => rows(c, sql.deleteOne, [keyBytes(record.key), type, at]),
          audit: (c, values) => rows(c, sql.audit, values),
        },
        keys,
        token,
        audit,
        expected,
      );
      if (batch.ok) logged(batch.removed.length);
      return batch;
    },

    async update(keys, token, patch: RecordPatch): Promise<UpdateOutcome> {
      const batch = await updateAllOrNone(
        client,
        {
          lock: lockMany,
          async update(c, key, before) {
            // Logged as poisoned when this update poisons the key, else as touched.
            const poisoned = patch.state === "poisoned" && before.state !== "poisoned";
            const [row] = await rows<KeyRow>(c, sql.update, [
              keyBytes(key),
              ...patchValues(patch),
              poisoned ? "poisoned" : "touched",
            ]);
            if (!row) throw new BackendUnavailableError("postgres", "a locked row vanished");
            return fromRow(row);
          },
        },
        keys,
        token,
      );
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
      closing.abort();
      await notifying;
      await trimming;
      const notifyClient = notifier;
      notifier = null;
      if (notifyClient) await (await notifyClient.catch(() => null))?.end().catch(() => undefined);
      await client.close();
    },
  };
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

/** A row the single-key statements hand back as `row_to_json` text (its columns by name). */
function fromJson(key: string, json: string): PoisonRecord {
  return fromColumns(key, JSON.parse(json) as RecordColumns);
}

/** The parameters of the batch put: each of a record's eleven parameters as an array with one
 *  element per record, the audit entry's five, then each record's JSON (for its entry). */
function putManyParameters(
  records: readonly PoisonRecord[],
  audit: AuditIntent | undefined,
): unknown[] {
  const rows = records.map(recordParameters);
  const columns = (rows[0] ?? []).map((_, i) => rows.map((row) => row[i]));
  return [
    ...columns,
    ...putAuditParameters(audit),
    records.map((record) => (audit ? JSON.stringify(record) : null)),
  ];
}
