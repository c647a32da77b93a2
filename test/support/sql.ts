/**
 * What the SQL driver tests share beyond the networked checks: a MySQL pool that counts the
 * statements sent through it, the removal of what a MySQL driver made for a table, and the
 * PostgreSQL wait for a statement blocked on a lock.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import type pg from "pg";
import { PROCEDURE_VERSION } from "../../src/drivers/mysql/statements.js";
import type { MysqlPoolLike } from "../../src/index.js";

/** Drop what a MySQL driver made for `table`: the keys, audit and change-log tables (the
 *  triggers go with the keys table) and the procedures of every version up to this one. */
export async function dropMysqlTables(
  url: string,
  table: string,
  auditTable = `${table}_audit`,
): Promise<void> {
  const connection = await mysql.createConnection({ uri: url });
  try {
    await connection.query(
      `DROP TABLE IF EXISTS \`${table}\`, \`${auditTable}\`, \`${table}_changes\``,
    );
    for (let version = 1; version <= Number(PROCEDURE_VERSION.slice(1)); version++) {
      for (const verb of ["put", "remove"])
        await connection.query(`DROP PROCEDURE IF EXISTS \`${table}_${verb}_v${version}\``);
    }
  } finally {
    await connection.end();
  }
}

/** `pool` as the driver's pool, adding one to `counter.statements` per statement sent. */
export function countingMysqlPool(
  pool: mysql.Pool,
  counter: { statements: number },
): MysqlPoolLike {
  return {
    async getConnection() {
      const connection = await pool.getConnection();
      return {
        query(sql: string, values?: unknown[]) {
          counter.statements++;
          return connection.query(sql, values) as Promise<[unknown, unknown]>;
        },
        release: () => connection.release(),
        destroy: () => connection.destroy(),
      };
    },
    end: () => pool.end(),
  };
}

/**
 * Polls (through `holder`, the session holding the lock) until some session waits on a lock
 * with a statement naming `table`; after about ten seconds, fails with `failure`, every session,
 * and what `settled` (the call that should be blocked) has become, if anything.
 */
export async function untilBlockedOnLock(
  holder: pg.Client,
  table: string,
  settled: Promise<unknown>,
  failure: string,
): Promise<void> {
  for (let i = 0; ; i++) {
    const { rows } = await holder.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
       WHERE wait_event_type = 'Lock' AND query LIKE '%${table}%'`,
    );
    if ((rows[0]?.waiting ?? 0) > 0) return;
    if (i >= 1000) {
      const activity = await holder.query(
        `SELECT pid, datname, state, wait_event_type, wait_event, backend_type,
                left(query, 160) AS query
         FROM pg_stat_activity WHERE pid <> pg_backend_pid()`,
      );
      const outcome = await Promise.race([
        settled,
        new Promise((resolve) => setTimeout(() => resolve("pending"), 10)),
      ]);
      assert.fail(
        `${failure}; sessions: ${JSON.stringify(activity.rows)}; settled: ${String(outcome)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
