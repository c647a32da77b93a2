/**
 * PostgreSQL baseline: `pg` with a pool, one table of (key, token), every statement named so it
 * is prepared once per connection, and each call one statement (one round trip) on the hot path.
 * Durability is the server's (synchronous_commit as configured), the same as the driver's.
 */
import pg from "pg";
import type { Baseline } from "./baseline.js";

/** The pool size. Keep it equal to the driver's default, so concurrency 32 queues alike. */
export const POSTGRES_BASELINE_POOL_SIZE = 10;
const TABLE = "poison_bench_baseline";

export async function postgresBaseline(url: string): Promise<Baseline> {
  const pool = new pg.Pool({ connectionString: url, max: POSTGRES_BASELINE_POOL_SIZE });
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${TABLE} (key text COLLATE "C" PRIMARY KEY, token text NOT NULL)`,
  );
  // Insert if absent, else read the holder, in one statement. Under READ COMMITTED the SELECT
  // arm cannot see a row that another transaction committed after this statement began, so an
  // empty answer means "lost a race with a put that is now visible": ask again.
  const put = {
    name: "bench_put",
    text: `WITH ins AS (INSERT INTO ${TABLE} (key, token) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING token)
           SELECT token, true AS inserted FROM ins
           UNION ALL SELECT token, false FROM ${TABLE} WHERE key = $1 LIMIT 1`,
  };
  const remove = {
    name: "bench_delete",
    text: `DELETE FROM ${TABLE} WHERE key = $1 AND token = $2`,
  };
  const select = { name: "bench_get", text: `SELECT token FROM ${TABLE} WHERE key = $1` };

  const get = async (key: string): Promise<string | null> => {
    const { rows } = await pool.query<{ token: string }>({ ...select, values: [key] });
    return rows[0]?.token ?? null;
  };

  return {
    async tryPut(key, token) {
      for (;;) {
        const { rows } = await pool.query<{ token: string; inserted: boolean }>({
          ...put,
          values: [key, token],
        });
        const row = rows[0];
        if (!row) continue;
        return row.inserted || row.token === token ? null : row.token;
      }
    },
    async delete(key, token) {
      const { rowCount } = await pool.query({ ...remove, values: [key, token] });
      return rowCount === 1 ? null : get(key);
    },
    get,
    async close() {
      await pool.end();
    },
  };
}
