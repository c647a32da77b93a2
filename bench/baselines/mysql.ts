/**
 * MySQL / MariaDB baseline: `mysql2` with a pool, one table of (key, token), statements run with
 * `execute` (prepared once per connection), one statement per call on the hot path. Durability is
 * the server's (innodb_flush_log_at_trx_commit as configured), the same as the driver's.
 */
import mysql from "mysql2/promise";
import type { Baseline } from "./baseline.js";

/** The pool size. Keep it equal to the driver's default, so concurrency 32 queues alike. */
export const MYSQL_BASELINE_POOL_SIZE = 10;
const TABLE = "poison_bench_baseline";

interface TokenRow extends mysql.RowDataPacket {
  token: string;
}

export async function mysqlBaseline(url: string): Promise<Baseline> {
  // Without FOUND_ROWS, ON DUPLICATE KEY UPDATE reports 1 affected row for an insert and 0 for a
  // row left as it was, which is exactly "written or not".
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: MYSQL_BASELINE_POOL_SIZE,
    flags: ["-FOUND_ROWS"],
  });
  // VARBINARY keys compare by their bytes (UTF-8 order) and fit InnoDB's index limit at 1024.
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${TABLE} (k VARBINARY(1024) PRIMARY KEY, token VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL) ENGINE=InnoDB`,
  );

  const get = async (key: string): Promise<string | null> => {
    const [rows] = await pool.execute<TokenRow[]>(`SELECT token FROM ${TABLE} WHERE k = ?`, [key]);
    return rows[0]?.token ?? null;
  };

  return {
    async tryPut(key, token) {
      for (;;) {
        const [result] = await pool.execute<mysql.ResultSetHeader>(
          `INSERT INTO ${TABLE} (k, token) VALUES (?, ?) ON DUPLICATE KEY UPDATE k = k`,
          [key, token],
        );
        if (result.affectedRows === 1) return null;
        const holder = await get(key);
        // Deleted between the two statements: try again.
        if (holder !== null) return holder === token ? null : holder;
      }
    },
    async delete(key, token) {
      const [result] = await pool.execute<mysql.ResultSetHeader>(
        `DELETE FROM ${TABLE} WHERE k = ? AND token = ?`,
        [key, token],
      );
      return result.affectedRows === 1 ? null : get(key);
    },
    get,
    async close() {
      await pool.end();
    },
  };
}
