/**
 * The greptimedb layout on GreptimeDB's SQL metadata table (`greptime_metakv(k, v)`, binary key
 * and value), shared by PostgreSQL and MySQL: poison keys are GreptimeDB's rows; our records and
 * audit entries are rows of the same table under `<storeKeyPrefix>/__poison_store/`, which no
 * GreptimeDB code reads (docs/GREPTIMEDB.md, "Our keys"). No DDL, ever: the table is GreptimeDB's.
 *
 * Every write is one transaction that first reads the poison rows and our rows for them with a
 * locking read (`SELECT … ORDER BY k FOR UPDATE`), decides on what it locked, then deletes or
 * writes. A locking read sees the newest committed row whatever the isolation level and holds it
 * to the commit, so GreptimeDB's own writes of those rows (its `DELETE`, its upsert) wait for us,
 * and we never delete a value we did not see. docs/GREPTIMEDB.md ("A safe compare-and-delete")
 * goes through each interleaving with GreptimeDB's transactions; test/greptimedb/concurrency
 * runs them.
 *
 * Rows of ours:
 * - `M record/<storage key>` → the record (encodeRecord JSON), valid while its token is the
 *   poison value's token (GreptimeDB's keys have none: they read as a stand-in record);
 * - `M audit/<16-digit id>` → one audit entry (JSON), ids from the counter `M audit-seq`;
 * - `M audit-key/<sha-256 of the storage key>/<16-digit id>` → the same entry, so one key's
 *   history is one range read.
 */
import { createHash } from "node:crypto";
import { decodeRecord, encodeRecord } from "../core/codec.js";
import type {
  AuditIntent,
  InitOptions,
  PutOutcome,
  RecordPatch,
  RemoveOutcome,
  UpdateOutcome,
} from "../core/driver.js";
import {
  BackendConfigurationError,
  BackendUnavailableError,
  ReadOnlyStoreError,
} from "../core/errors.js";
import type { AuditEntry, PoisonRecord } from "../core/records.js";
import { type BackoffOptions, optimistic, retry } from "../core/retry.js";
import { applyPatch, auditEntry, standIn, UNKNOWN_TIME } from "../drivers/etcd/codec.js";
import {
  keyBytes,
  Rollback,
  removeDecision,
  sortedByBytes,
  upperBound,
} from "../drivers/sql/common.js";
import type { GreptimeDriver, GreptimeMetadataReader } from "./driver.js";
import { displayBytes, encodePoisonValue, ownMetaPrefix, parsePoisonValue } from "./layout.js";
import type { GreptimeLayout } from "./options.js";

export interface KvRow {
  k: Buffer;
  v: Buffer | null;
}

/** A row of a listing: a poison row and our record row for it (null when there is none). */
export interface JoinedRow extends KvRow {
  rv: Buffer | null;
}

/** Statements on one connection, inside a transaction. */
export interface KvTransaction {
  /** `SELECT k, v … WHERE k IN (…) ORDER BY k FOR UPDATE`. */
  lock(keys: readonly Buffer[]): Promise<KvRow[]>;
  /** Insert the row unless the key exists (waiting for an in-flight insert of it); true when
   *  inserted. Only dialects that may put poison keys have it. */
  insertIfAbsent?(key: Buffer, value: Buffer): Promise<boolean>;
  /** Insert or overwrite rows of ours. */
  upsert(rows: readonly { k: Buffer; v: Buffer }[]): Promise<void>;
  delete(keys: readonly Buffer[]): Promise<void>;
  /** Add `n` to the decimal counter stored under `key` (created at 0), and return it. */
  bump(key: Buffer, n: number): Promise<bigint>;
}

export interface TableState {
  exists: boolean;
  /** The largest value the `v` column holds (MySQL BLOB: 65535), or null for no limit. */
  maxValueBytes: number | null;
}

/** What a SQL dialect provides. Errors that are not ours are thrown as they come; the driver
 *  below types them. */
export interface KvDialect {
  readonly backend: "postgres" | "mysql";
  /** The table as named in messages. */
  readonly tableName: string;
  tableState(): Promise<TableState>;
  /** Autocommitted reads. */
  read(keys: readonly Buffer[]): Promise<KvRow[]>;
  range(low: Buffer, high: Buffer, limit: number, descending: boolean): Promise<KvRow[]>;
  /** Poison rows in `[low, high)` (`low` excluded when `exclusive`), each with the row at
   *  `recordPrefix || k`, in one statement. */
  listJoined(
    low: Buffer,
    exclusive: boolean,
    high: Buffer,
    limit: number,
    recordPrefix: Buffer,
  ): Promise<JoinedRow[]>;
  /** BEGIN … COMMIT on one connection, retried whole on a serialization failure or deadlock. */
  transaction<T>(body: (tx: KvTransaction) => Promise<T | Rollback<T>>): Promise<T>;
  /** The error says the table (or its schema / database) does not exist. */
  isMissingTable(error: unknown): boolean;
  close(): Promise<void>;
}

export interface KvDriverOptions {
  layout: GreptimeLayout;
  location: string;
  /** False: the dialect must never put poison keys (MySQL, see the module of that dialect);
   *  the message says why. */
  puts: true | { refusal: string };
}

/** Beyond this, a put whose key keeps being inserted and deleted by others gives up. */
const MAX_PUT_ATTEMPTS = 100;

/** The waits between the attempts of a transaction the server rolled back for a deadlock or a
 *  serialization failure: short (the winner holds its locks for milliseconds) and jittered, so
 *  the two transactions do not meet again. */
const TRANSACTION_BACKOFF = { minDelayMs: 2, maxDelayMs: 50 } as const;

/**
 * Run `attempt` (one whole transaction) again while the server rolls it back for a reason that
 * a new attempt cures (`retryable`: a deadlock, a serialization failure), up to `maxAttempts`
 * in all; any other failure, or the last one, is thrown. The dialects' `transaction` use it.
 */
export function retryTransaction<T>(
  attempt: () => Promise<T>,
  maxAttempts: number,
  retryable: (error: unknown) => boolean,
): Promise<T> {
  const backoff: BackoffOptions = { maxAttempts, ...TRANSACTION_BACKOFF };
  return retry(attempt, { ...backoff, shouldRetry: retryable });
}

/** Tries of a transaction the server rolled back whole (a deadlock victim, a serialization
 *  failure), the first included. */
const TRANSACTION_ATTEMPTS = 10;

/** The SQL client options of a layout's dialect: the pool opened on first use, failures
 *  classified by `classify` (a setup to fix, or null), and each step tried again while
 *  `retryable` says the server rolled it back whole. */
export function kvClientOptions(
  classify: (error: unknown) => unknown,
  retryable: (error: unknown) => boolean,
) {
  return {
    openOnUse: true,
    classify: (error: unknown) => classify(error) ?? error,
    retry: <T>(step: () => Promise<T>) => retryTransaction(step, TRANSACTION_ATTEMPTS, retryable),
  };
}
const AUDIT_ID_DIGITS = 16;

export function kvSqlDriver(dialect: KvDialect, options: KvDriverOptions): GreptimeDriver {
  const { layout } = options;
  const backend = dialect.backend;
  const meta = ownMetaPrefix(layout.storeKeyPrefix);
  const recordPrefix = `${meta}record/`;
  const auditPrefix = `${meta}audit/`;
  const counterKey = keyBytes(`${meta}audit-seq`);
  const recordKey = (storageKey: string) => keyBytes(recordPrefix + storageKey);
  const auditKey = (id: string) => keyBytes(auditPrefix + id);
  const byKeyPrefix = (storageKey: string) =>
    `${meta}audit-key/${createHash("sha256").update(storageKey, "utf8").digest("hex")}/`;
  let state: TableState | null = null;

  const describeTable = () => `${dialect.tableName} (${options.location})`;
  const missingTable = () =>
    new BackendConfigurationError(
      backend,
      "table",
      `GreptimeDB's metadata table ${describeTable()} does not exist. The greptimedb layout never creates it: ` +
        "name the metasrv's meta_table_name / meta_schema_name with table / schema (URL ?table=…&schema=…), " +
        "or check the database in the URL.",
    );

  /** Reads of a table that does not exist answer empty: nothing was ever written there. */
  const orEmpty = async <T>(read: () => Promise<T>, empty: T): Promise<T> => {
    try {
      return await read();
    } catch (error) {
      if (dialect.isMissingTable(error)) return empty;
      throw error;
    }
  };
  /** Writes on a missing table are a configuration error (the table was dropped meanwhile). */
  const writing = async <T>(write: () => Promise<T>): Promise<T> => {
    try {
      return await write();
    } catch (error) {
      if (dialect.isMissingTable(error)) throw missingTable();
      throw error;
    }
  };

  /** Values of ours must fit the `v` column (an older GreptimeDB's MySQL table has BLOB). */
  const checkFits = (values: readonly Buffer[]) => {
    const max = state?.maxValueBytes ?? null;
    if (max === null) return;
    const over = values.find((value) => value.length > max);
    if (over) {
      throw new BackendConfigurationError(
        backend,
        "v column",
        `a record or audit entry of ${over.length} bytes does not fit the ${max}-byte v column of ${describeTable()}; ` +
          "nothing was changed. A GreptimeDB metasrv of a recent release widens it to MEDIUMBLOB when it starts.",
      );
    }
  };

  const decode = (storageKey: string, poison: Buffer, record: Buffer | undefined): PoisonRecord => {
    const parsed = parsePoisonValue(poison);
    const token = parsed.ok ? parsed.token : displayBytes(poison);
    if (record) {
      const text = record.toString("utf8");
      const decoded = decodeRecord(storageKey, text, { token, at: UNKNOWN_TIME });
      // A record left by an earlier holder (the poison row was deleted by other means and put
      // again) does not describe this one.
      if (recordToken(text) === token) return { ...decoded, token };
    }
    return standIn(storageKey, token);
  };

  /** The records of `keys` from rows read together (poison rows and record rows). */
  const recordsOf = (keys: readonly string[], rows: readonly KvRow[]): (PoisonRecord | null)[] => {
    const byKey = new Map(rows.map((row) => [row.k.toString("utf8"), row.v ?? Buffer.alloc(0)]));
    return keys.map((key) => {
      const poison = byKey.get(key);
      if (poison === undefined) return null;
      return decode(key, poison, byKey.get(recordPrefix + key));
    });
  };
  const lockKeys = (tx: KvTransaction, keys: readonly string[]) =>
    tx.lock(sortedByBytes([...keys, ...keys.map((k) => recordPrefix + k)], (k) => k).map(keyBytes));

  const writeAudit = async (tx: KvTransaction, intent: AuditIntent, records: PoisonRecord[]) => {
    const last = await tx.bump(counterKey, records.length);
    const rows: { k: Buffer; v: Buffer }[] = [];
    records.forEach((record, i) => {
      const id = String(last - BigInt(records.length - 1 - i)).padStart(AUDIT_ID_DIGITS, "0");
      const value = keyBytes(JSON.stringify(auditEntry(intent, record)));
      rows.push(
        { k: auditKey(id), v: value },
        { k: keyBytes(byKeyPrefix(record.key) + id), v: value },
      );
    });
    checkFits(rows.map((row) => row.v));
    await tx.upsert(rows);
  };

  const metadata: GreptimeMetadataReader = {
    async get(keys) {
      const rows = await orEmpty(() => dialect.read(keys.map(keyBytes)), []);
      return new Map(rows.map((row) => [row.k.toString("utf8"), row.v ?? Buffer.alloc(0)]));
    },
    async range(prefix, limit) {
      const rows = await orEmpty(
        () => dialect.range(keyBytes(prefix), upperBound(prefix), limit, false),
        [],
      );
      return rows.map((row) => ({ key: row.k.toString("utf8"), value: row.v ?? Buffer.alloc(0) }));
    },
    async found() {
      return (await dialect.tableState()).exists;
    },
  };

  return {
    backend,
    location: options.location,
    capabilities: { durable: true, shared: true, oneRoundTrip: false },
    greptime: { layout, metadata },

    async init({ create }: InitOptions) {
      state = await dialect.tableState();
      // Nothing is ever created. A write on a missing table is a configuration error, except on
      // a read-only store, whose gate refuses the write with the more useful message.
      if (create && !state.exists && layout.allowWrite) throw missingTable();
      return state.exists;
    },

    async put(records, audit): Promise<PutOutcome> {
      if (options.puts !== true) {
        throw new ReadOnlyStoreError(backend, "put", false, options.puts.refusal);
      }
      const token = (records[0] as PoisonRecord).token;
      const poisonValue = Buffer.from(encodePoisonValue(token));
      const encoded = records.map((record) => keyBytes(encodeRecord(record)));
      checkFits(encoded);
      return writing(() =>
        dialect.transaction<PutOutcome>(async (tx) => {
          const insert = tx.insertIfAbsent?.bind(tx);
          if (!insert) throw new Error("this dialect cannot insert poison keys");
          const created = new Set<string>();
          const held = new Map<string, Buffer>();
          // In key byte order, like every transaction here: two batches queue, not deadlock.
          for (const record of sortedByBytes(records, (r) => r.key)) {
            const key = keyBytes(record.key);
            // Insert, or lock the holder's row; a row deleted between the two is tried again.
            await optimistic(
              MAX_PUT_ATTEMPTS,
              async () => {
                if (await insert(key, poisonValue)) {
                  created.add(record.key);
                  return { done: true, value: undefined };
                }
                // Someone holds it: lock their row (READ COMMITTED: the newest committed one).
                const [row] = await tx.lock([key]);
                if (!row) return { done: false };
                held.set(record.key, row.v ?? Buffer.alloc(0));
                return { done: true, value: undefined };
              },
              () =>
                new BackendUnavailableError(
                  backend,
                  `the key kept being inserted and deleted by others (${MAX_PUT_ATTEMPTS} attempts)`,
                ),
            );
          }
          const heldKeys = [...held.keys()];
          const recordRows =
            heldKeys.length > 0 ? await tx.lock(heldKeys.map((k) => recordKey(k))) : [];
          const recordByKey = new Map(recordRows.map((row) => [row.k.toString("utf8"), row.v]));
          const current = records.map((record) => {
            const poison = held.get(record.key);
            return poison === undefined
              ? null
              : decode(record.key, poison, recordByKey.get(recordPrefix + record.key) ?? undefined);
          });
          const conflicts = current.filter(
            (record): record is PoisonRecord => record !== null && record.token !== token,
          );
          if (conflicts.length > 0) return new Rollback({ ok: false as const, conflicts });
          const written = records.filter((record) => created.has(record.key));
          await tx.upsert(
            records
              .map((record, i) => ({ record, v: encoded[i] as Buffer }))
              .filter(({ record }) => created.has(record.key))
              .map(({ record, v }) => ({ k: recordKey(record.key), v })),
          );
          if (audit && written.length > 0) await writeAudit(tx, audit, written);
          return {
            ok: true as const,
            records: records.map((record, i) => current[i] ?? record),
            created: records.map((record) => created.has(record.key)),
          };
        }),
      );
    },

    async remove(keys, token, audit, expected): Promise<RemoveOutcome> {
      return writing(() =>
        dialect.transaction<RemoveOutcome>(async (tx) => {
          const rows = await lockKeys(tx, keys);
          const present = new Set(rows.map((row) => row.k.toString("utf8")));
          const held = recordsOf(keys, rows).filter((r): r is PoisonRecord => r !== null);
          const outcome = removeDecision(keys, held, token, expected);
          if (!outcome.ok) return new Rollback(outcome);
          if (outcome.removed.length === 0) return outcome;
          const doomed = outcome.removed.flatMap((record) => [
            record.key,
            ...(present.has(recordPrefix + record.key) ? [recordPrefix + record.key] : []),
          ]);
          await tx.delete(doomed.map(keyBytes));
          if (audit) await writeAudit(tx, audit, outcome.removed);
          return outcome;
        }),
      );
    },

    async update(keys, token, patch: RecordPatch): Promise<UpdateOutcome> {
      return writing(() =>
        dialect.transaction<UpdateOutcome>(async (tx) => {
          const current = recordsOf(keys, await lockKeys(tx, keys));
          const missing = keys.filter((_, i) => current[i] === null);
          const conflicts = current.filter(
            (record): record is PoisonRecord => record !== null && record.token !== token,
          );
          if (missing.length > 0 || conflicts.length > 0) {
            return new Rollback({ ok: false as const, conflicts, missing });
          }
          const updated = (current as PoisonRecord[]).map((record) => applyPatch(record, patch));
          const rows = updated.map((record) => ({
            k: recordKey(record.key),
            v: keyBytes(encodeRecord(record)),
          }));
          checkFits(rows.map((row) => row.v));
          await tx.upsert(rows);
          return { ok: true as const, records: updated };
        }),
      );
    },

    async get(key) {
      const rows = await orEmpty(() => dialect.read([keyBytes(key), recordKey(key)]), []);
      return recordsOf([key], rows)[0] ?? null;
    },

    async list({ prefix, after, limit }) {
      const rows = await orEmpty(
        () =>
          dialect.listJoined(
            keyBytes(after ?? prefix),
            after !== null,
            upperBound(prefix),
            limit,
            keyBytes(recordPrefix),
          ),
        [],
      );
      return rows.map((row) => {
        const key = row.k.toString("utf8");
        return decode(key, row.v ?? Buffer.alloc(0), row.rv ?? undefined);
      });
    },

    async audit({ prefix, key, before, limit }): Promise<AuditEntry[]> {
      if (before !== null && !/^\d{16}$/.test(before)) return [];
      const rangePrefix = key === undefined ? auditPrefix : byKeyPrefix(key);
      const high = before === null ? upperBound(rangePrefix) : keyBytes(rangePrefix + before);
      const rows = await orEmpty(() => dialect.range(keyBytes(rangePrefix), high, limit, true), []);
      const out: AuditEntry[] = [];
      for (const row of rows) {
        const id = row.k.toString("utf8").slice(rangePrefix.length);
        const entry = parseAuditEntry(id, (row.v ?? Buffer.alloc(0)).toString("utf8"));
        if (!entry) continue;
        if (key !== undefined ? entry.key === key : entry.key.startsWith(prefix)) out.push(entry);
      }
      return out;
    },

    close: () => dialect.close(),
  };
}

/** The token field of a stored record, if any. */
function recordToken(text: string): string | undefined {
  try {
    const doc = JSON.parse(text) as { token?: unknown } | null;
    return doc && typeof doc === "object" && typeof doc.token === "string" ? doc.token : undefined;
  } catch {
    return undefined;
  }
}

function parseAuditEntry(id: string, text: string): AuditEntry | null {
  if (!/^\d{16}$/.test(id)) return null;
  try {
    const entry = JSON.parse(text) as AuditEntry | null;
    if (!entry || typeof entry !== "object" || typeof entry.key !== "string") return null;
    return { ...entry, id };
  } catch {
    return null;
  }
}
