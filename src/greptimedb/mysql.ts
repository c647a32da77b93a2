/**
 * The greptimedb layout on MySQL / MariaDB: the rows of GreptimeDB's `` `<meta_table_name>` ``
 * (`k VARBINARY(3072) PRIMARY KEY, v MEDIUMBLOB`, `BLOB` in tables of older releases), through
 * npm `mysql2`.
 *
 * Deletes and updates are one transaction at the server's isolation (InnoDB: REPEATABLE READ)
 * that takes exclusive row locks with `SELECT … ORDER BY k FOR UPDATE` before deciding: every
 * GreptimeDB write of those rows waits for our commit, and a GreptimeDB compare that reads a
 * snapshot from before it then deletes nothing (its `DELETE` finds the row gone) or answers the
 * conflict it would have answered just before us.
 *
 * **Puts are refused, always.** GreptimeDB sets SERIALIZABLE with a `SET SESSION` on its pool
 * and begins the transaction on whatever connection the pool lends next, so its transactions may
 * run at REPEATABLE READ, where its compare reads a snapshot: a key we insert after that snapshot
 * is then overwritten by its `INSERT … ON DUPLICATE KEY UPDATE`, and both sides believe they hold
 * it (reproduced on MariaDB 10.11; docs/GREPTIMEDB.md). Nothing we can do in our own
 * transaction prevents that, so this layout never puts poison keys on MySQL.
 */
import { BackendConfigurationError } from "../core/errors.js";
import { mysqlConfigurationError, mysqlConnection } from "../drivers/mysql/connection.js";
import { ER, isServerError } from "../drivers/mysql/errors.js";
import { type MysqlConnectionLike, mysqlClient } from "../drivers/mysql/pool.js";
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

export interface GreptimeMysqlOptions {
  /** The connection URL without the layout's parameters. */
  url: string;
  layout: GreptimeLayout;
  location: string;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  maxConnections?: number;
}

/** The largest value of each column type GreptimeDB's table may have for `v`. */
const VALUE_LIMITS: Record<string, number> = {
  blob: 65_535,
  mediumblob: 16_777_215,
  longblob: 4_294_967_295,
};

export const MYSQL_PUT_REFUSAL =
  "the greptimedb layout never puts poison keys into GreptimeDB's MySQL table: GreptimeDB's own " +
  "transactions there may run at REPEATABLE READ and overwrite a key another client inserted, so " +
  "both would believe they hold it (docs/GREPTIMEDB.md); nothing was changed. Clearing keys " +
  "(forceDeletePoison, deletePoison) works with allowWrite.";

export function greptimeMysqlDriver(options: GreptimeMysqlOptions): GreptimeDriver {
  const { layout } = options;
  const table = quoteQualified(layout.schema, layout.table, "`");
  const limits = poolLimits(options);
  // TLS parameters (ssl-mode, ssl-ca…) as the mysql driver reads them.
  const connection = mysqlConnection(options.url, undefined);
  /** A setup to fix, named: privileges on GreptimeDB's table, else the driver's classification. */
  const configurationError = (error: unknown) => {
    if (isServerError(error, ER.TABLEACCESS_DENIED, ER.COLUMNACCESS_DENIED)) {
      return new BackendConfigurationError(
        "mysql",
        "privileges",
        `${(error as Error).message}; grant the user SELECT on ${table} (and INSERT, UPDATE, DELETE on it to clear with allowWrite)`,
        error,
      );
    }
    return mysqlConfigurationError(error);
  };
  const client = mysqlClient(
    connection,
    limits,
    // Deadlock victims were rolled back whole: tried again.
    kvClientOptions(configurationError, (error) => isServerError(error, ER.LOCK_DEADLOCK)),
  );
  /** Rows of a statement. Buffers go as hex literals (X'…'): no character set touches them. */
  const rows = async <R>(c: MysqlConnectionLike, text: string, values: unknown[]): Promise<R[]> => {
    const [result] = await c.query(text, values);
    return Array.isArray(result) ? (result as R[]) : [];
  };
  const one = <R>(text: string, values: unknown[]) =>
    client.withConnection((c) => rows<R>(c, text, values));

  const sql = {
    read: `SELECT k, v FROM ${table} WHERE k IN (?)`,
    lock: `SELECT k, v FROM ${table} WHERE k IN (?) ORDER BY k FOR UPDATE`,
    upsert: `INSERT INTO ${table} (k, v) VALUES ? ON DUPLICATE KEY UPDATE v = VALUES(v)`,
    delete: `DELETE FROM ${table} WHERE k IN (?)`,
    bump: `INSERT INTO ${table} (k, v) VALUES (?, ?)
      ON DUPLICATE KEY UPDATE v = CONCAT(CAST(v AS UNSIGNED) + ?)`,
    counter: `SELECT v FROM ${table} WHERE k = ? FOR UPDATE`,
    rangeAsc: `SELECT k, v FROM ${table} WHERE k >= ? AND k < ? ORDER BY k LIMIT ?`,
    rangeDesc: `SELECT k, v FROM ${table} WHERE k >= ? AND k < ? ORDER BY k DESC LIMIT ?`,
    listFirst: `SELECT p.k, p.v, r.v AS rv FROM ${table} p LEFT JOIN ${table} r ON r.k = CONCAT(?, p.k)
      WHERE p.k >= ? AND p.k < ? ORDER BY p.k LIMIT ?`,
    listAfter: `SELECT p.k, p.v, r.v AS rv FROM ${table} p LEFT JOIN ${table} r ON r.k = CONCAT(?, p.k)
      WHERE p.k > ? AND p.k < ? ORDER BY p.k LIMIT ?`,
    columns: `SELECT column_name AS name, data_type AS type FROM information_schema.columns
      WHERE table_schema = coalesce(?, DATABASE()) AND table_name = ?`,
  };

  const dialect: KvDialect = {
    backend: "mysql",
    tableName: table,

    async tableState() {
      const columns = await one<{ name: Buffer | string; type: Buffer | string }>(sql.columns, [
        layout.schema,
        layout.table,
      ]);
      if (columns.length === 0) return { exists: false, maxValueBytes: null };
      const types = new Map(
        columns.map((c) => [String(c.name).toLowerCase(), String(c.type).toLowerCase()]),
      );
      const valueLimit = VALUE_LIMITS[types.get("v") ?? ""];
      if (types.get("k") !== "varbinary" || valueLimit === undefined) {
        throw new BackendConfigurationError(
          "mysql",
          "table",
          `${table} is not GreptimeDB's metadata table (expected k VARBINARY(3072) PRIMARY KEY, v MEDIUMBLOB or BLOB; found ${[
            ...types,
          ]
            .map(([name, type]) => `${name} ${type}`)
            .join(
              ", ",
            )}); name the metasrv's meta_table_name with table (and its database in the URL or schema)`,
        );
      }
      return { exists: true, maxValueBytes: valueLimit };
    },

    read: (keys) => (keys.length === 0 ? Promise.resolve([]) : one<KvRow>(sql.read, [keys])),

    range: (low, high, limit, descending) =>
      one<KvRow>(descending ? sql.rangeDesc : sql.rangeAsc, [low, high, limit]),

    listJoined: (low, exclusive, high, limit, recordPrefix) =>
      one<JoinedRow>(exclusive ? sql.listAfter : sql.listFirst, [recordPrefix, low, high, limit]),

    transaction: <T>(body: (tx: KvTransaction) => Promise<T | Rollback<T>>) =>
      client.transaction(async (c) => {
        const tx: KvTransaction = {
          lock: (keys) =>
            keys.length === 0 ? Promise.resolve([]) : rows<KvRow>(c, sql.lock, [keys]),
          async upsert(entries) {
            if (entries.length > 0) await c.query(sql.upsert, [entries.map((e) => [e.k, e.v])]);
          },
          async delete(keys) {
            if (keys.length > 0) await c.query(sql.delete, [keys]);
          },
          async bump(key, n) {
            await c.query(sql.bump, [key, Buffer.from(String(n)), n]);
            const [row] = await rows<{ v: Buffer }>(c, sql.counter, [key]);
            return BigInt(row ? row.v.toString("utf8") : "0");
          },
        };
        return body(tx);
      }),

    isMissingTable: (error) => isServerError(error, ER.NO_SUCH_TABLE),

    close: () => client.close(),
  };

  return kvSqlDriver(dialect, {
    layout,
    location: options.location,
    puts: { refusal: MYSQL_PUT_REFUSAL },
  });
}
