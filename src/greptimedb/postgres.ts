/**
 * The greptimedb layout on PostgreSQL: the rows of GreptimeDB's `"<meta_schema_name>".
 * "<meta_table_name>"` (`k bytea PRIMARY KEY, v bytea`), through npm `pg`.
 *
 * Our transactions run at READ COMMITTED and lock before they decide (`SELECT … FOR UPDATE`).
 * GreptimeDB's run at SERIALIZABLE with a plain `SELECT` as their compare, so a write of ours that
 * commits between its compare and its write makes its write fail with 40001, and it retries on a
 * fresh snapshot (`RdsStore::txn`): its delete of a key we deleted then finds it absent; its
 * upsert of a key we inserted then finds it held. Our put inserts with `ON CONFLICT DO NOTHING`,
 * which waits for an in-flight insert of the same key, and then reads the holder under a lock.
 * We retry our own transaction on 40001 and 40P01 too (a server whose default isolation is
 * SERIALIZABLE does not change ours: BEGIN names it).
 */
import { BackendConfigurationError } from "../core/errors.js";
import { postgresConfigurationError, postgresConnection } from "../drivers/postgres/connection.js";
import { type PgClientLike, postgresClient } from "../drivers/postgres/pool.js";
import { poolLimits } from "../drivers/sql/client.js";
import { quoteQualified, type Rollback } from "../drivers/sql/common.js";
import type { GreptimeDriver } from "./driver.js";
import {
  type JoinedRow,
  type KvDialect,
  type KvRow,
  type KvTransaction,
  kvClientOptions,
  kvSqlDriver,
} from "./kv-sql.js";
import type { GreptimeLayout } from "./options.js";

export interface GreptimePostgresOptions {
  /** The connection URL without the layout's parameters. */
  url: string;
  layout: GreptimeLayout;
  location: string;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  maxConnections?: number;
}

const SERIALIZATION_FAILURE = "40001";
const DEADLOCK_DETECTED = "40P01";
const MISSING = new Set(["42P01", "3F000"]); // undefined_table, invalid_schema_name

export function greptimePostgresDriver(options: GreptimePostgresOptions): GreptimeDriver {
  const { layout } = options;
  const table = quoteQualified(layout.schema, layout.table, '"');
  const limits = poolLimits(options);
  // TLS parameters (sslmode, sslrootcert…) as the postgres driver reads them.
  const connection = postgresConnection(options.url, undefined);
  /** A setup to fix, named: privileges on GreptimeDB's table, else the driver's classification. */
  const configurationError = (error: unknown) => {
    if ((error as { code?: unknown })?.code === "42501") {
      return new BackendConfigurationError(
        "postgres",
        "privileges",
        `${(error as Error).message}; grant the user SELECT on ${table} (and INSERT, UPDATE, DELETE on it to clear with allowWrite)`,
        error,
      );
    }
    return postgresConfigurationError(error);
  };
  const client = postgresClient(
    connection,
    limits,
    // Deadlock victims and serialization failures were rolled back whole: tried again.
    kvClientOptions(configurationError, (error) =>
      [SERIALIZATION_FAILURE, DEADLOCK_DETECTED].includes(
        String((error as { code?: unknown }).code),
      ),
    ),
  );
  const rows = async <R>(client: PgClientLike, text: string, values: unknown[]): Promise<R[]> =>
    (await client.query(text, values)).rows as R[];
  const one = <R>(text: string, values: unknown[]) =>
    client.withConnection((c) => rows<R>(c, text, values));

  const sql = {
    read: `SELECT k, v FROM ${table} WHERE k = ANY($1::bytea[])`,
    lock: `SELECT k, v FROM ${table} WHERE k = ANY($1::bytea[]) ORDER BY k FOR UPDATE`,
    insertIfAbsent: `INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING RETURNING k`,
    upsert: `INSERT INTO ${table} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[])
      ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
    delete: `DELETE FROM ${table} WHERE k = ANY($1::bytea[])`,
    bump: `INSERT INTO ${table} AS m (k, v) VALUES ($1, convert_to($2::text, 'UTF8'))
      ON CONFLICT (k) DO UPDATE SET v = convert_to((convert_from(m.v, 'UTF8')::bigint + $3::bigint)::text, 'UTF8')
      RETURNING convert_from(m.v, 'UTF8') AS v`,
    rangeAsc: `SELECT k, v FROM ${table} WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3`,
    rangeDesc: `SELECT k, v FROM ${table} WHERE k >= $1 AND k < $2 ORDER BY k DESC LIMIT $3`,
    listFirst: `SELECT p.k, p.v, r.v AS rv FROM ${table} p LEFT JOIN ${table} r ON r.k = $4::bytea || p.k
      WHERE p.k >= $1 AND p.k < $2 ORDER BY p.k LIMIT $3`,
    listAfter: `SELECT p.k, p.v, r.v AS rv FROM ${table} p LEFT JOIN ${table} r ON r.k = $4::bytea || p.k
      WHERE p.k > $1 AND p.k < $2 ORDER BY p.k LIMIT $3`,
    // The relation as GreptimeDB names it (search_path when no schema), and its columns' types.
    columns: `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
      FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
  };

  const dialect: KvDialect = {
    backend: "postgres",
    tableName: table,

    async tableState() {
      const columns = await one<{ name: string; type: string }>(sql.columns, [table]);
      if (columns.length === 0) return { exists: false, maxValueBytes: null };
      const types = new Map(columns.map((c) => [c.name, c.type]));
      if (types.get("k") !== "bytea" || types.get("v") !== "bytea") {
        throw new BackendConfigurationError(
          "postgres",
          "table",
          `${table} is not GreptimeDB's metadata table (expected k bytea PRIMARY KEY, v bytea; found ${columns
            .map((c) => `${c.name} ${c.type}`)
            .join(
              ", ",
            )}); name the metasrv's meta_table_name / meta_schema_name with table / schema`,
        );
      }
      return { exists: true, maxValueBytes: null };
    },

    read: (keys) => one<KvRow>(sql.read, [keys]),

    range: (low, high, limit, descending) =>
      one<KvRow>(descending ? sql.rangeDesc : sql.rangeAsc, [low, high, limit]),

    listJoined: (low, exclusive, high, limit, recordPrefix) =>
      one<JoinedRow>(exclusive ? sql.listAfter : sql.listFirst, [low, high, limit, recordPrefix]),

    transaction: <T>(body: (tx: KvTransaction) => Promise<T | Rollback<T>>) =>
      client.transaction(async (c) => {
        const tx: KvTransaction = {
          lock: (keys) => rows<KvRow>(c, sql.lock, [keys]),
          insertIfAbsent: async (key, value) =>
            (await rows(c, sql.insertIfAbsent, [key, value])).length === 1,
          async upsert(entries) {
            if (entries.length === 0) return;
            await c.query(sql.upsert, [entries.map((e) => e.k), entries.map((e) => e.v)]);
          },
          async delete(keys) {
            if (keys.length > 0) await c.query(sql.delete, [keys]);
          },
          async bump(key, n) {
            const [row] = await rows<{ v: string }>(c, sql.bump, [key, String(n), n]);
            return BigInt(row?.v ?? "0");
          },
        };
        return body(tx);
      }, "BEGIN ISOLATION LEVEL READ COMMITTED"),

    isMissingTable: (error) => MISSING.has(String((error as { code?: unknown })?.code)),

    close: () => client.close(),
  };

  return kvSqlDriver(dialect, { layout, location: options.location, puts: true });
}
