/**
 * GreptimeDB's poison transactions, statement for statement, to run against our clears on the
 * real PostgreSQL and MariaDB. Source: GreptimeTeam/greptimedb at 7fd0a7bb
 * (docs/GREPTIMEDB.md): `KvStateStore::try_put_poison` / `delete_poison` as `RdsStore::txn`
 * runs them — a transaction, a plain `SELECT` as the compare (evaluated in Rust: byte equality),
 * then the success or failure ops, then COMMIT; retried whole at most 3 times on a serialization
 * failure or deadlock (PostgreSQL 40001/40P01, MySQL 1213/1205), backing off from 10 ms to 200 ms.
 *
 * - PostgreSQL: `START TRANSACTION ISOLATION LEVEL SERIALIZABLE`; the put is its
 *   `WITH prev AS (…), update AS (INSERT … ON CONFLICT (k) DO UPDATE SET v = excluded.v)
 *   SELECT k, v FROM prev`; the delete `DELETE … WHERE k in ($1) RETURNING k,v`.
 * - MySQL: `SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE` on the pool, then `BEGIN` on
 *   whichever connection the pool lends: so a transaction runs at SERIALIZABLE or at the server
 *   default REPEATABLE READ (`isolation` picks); the put is `SELECT k, v … IN (?)` then
 *   `INSERT … ON DUPLICATE KEY UPDATE v = VALUES(v)`; the delete reads the previous values
 *   (`SELECT`) then `DELETE … WHERE k in (?)`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type mysql from "mysql2/promise";
import type pg from "pg";
import { encodePoisonValue } from "../../src/greptimedb/layout.js";

export type PutResult = "put" | "held" | "conflict" | "failed";
/** `deleted`: its DELETE removed the row; `gone`: the compare matched but the DELETE found no
 *  row (MySQL at REPEATABLE READ, after a clear of ours); `absent`; `conflict`; `failed`: the
 *  retries ran out, nothing changed. */
export type DeleteResult = "deleted" | "gone" | "absent" | "conflict" | "failed";

/** One GreptimeDB transaction's statements on one connection. */
export interface GreptimeSession {
  begin(): Promise<void>;
  /** The compare: the plain SELECT of `batch_get`. */
  compare(key: Buffer): Promise<Buffer | null>;
  /** `handle_batch_put`. */
  put(key: Buffer, value: Buffer): Promise<void>;
  /** `handle_batch_delete`: rows removed. */
  delete(key: Buffer): Promise<number>;
  /** The failure branch's `Get`. */
  get(key: Buffer): Promise<Buffer | null>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export interface GreptimeBackend {
  /** A session on a connection of its own (the caller closes it). */
  session(): Promise<GreptimeSession & { close(): Promise<void> }>;
  retryable(error: unknown): boolean;
}

const RETRIES = 3;

/** How often GreptimeDB's transactions had to retry (serialization failures, deadlocks, lock
 *  wait timeouts): the races the workloads are meant to provoke. */
export const simStats = { retries: 0 };

async function txn<T>(
  backend: GreptimeBackend,
  body: (session: GreptimeSession) => Promise<T>,
): Promise<T | "failed"> {
  const session = await backend.session();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await session.begin();
        const result = await body(session);
        await session.commit();
        return result;
      } catch (error) {
        await session.rollback().catch(() => undefined);
        if (!backend.retryable(error)) throw error;
        simStats.retries++;
        if (attempt >= RETRIES) return "failed";
        await sleep(Math.min(200, 10 * 2 ** attempt));
      }
    }
  } finally {
    await session.close();
  }
}

/** `try_put_poison`: put-if-absent; the same token again is fine; another is a conflict. */
export async function tryPutPoison(
  backend: GreptimeBackend,
  key: string,
  token: string,
): Promise<PutResult> {
  const k = Buffer.from(key);
  const v = Buffer.from(encodePoisonValue(token));
  return txn(backend, async (s) => {
    if ((await s.compare(k)) === null) {
      await s.put(k, v);
      return "put" as const;
    }
    const held = await s.get(k);
    return held?.equals(v) ? ("held" as const) : ("conflict" as const);
  });
}

/** `delete_poison`: delete when the stored bytes are exactly the token's. */
export async function deletePoison(
  backend: GreptimeBackend,
  key: string,
  token: string,
): Promise<DeleteResult> {
  const k = Buffer.from(key);
  const v = Buffer.from(encodePoisonValue(token));
  return txn(backend, async (s) => {
    const seen = await s.compare(k);
    if (seen?.equals(v))
      return (await s.delete(k)) === 1 ? ("deleted" as const) : ("gone" as const);
    const held = await s.get(k);
    return held === null ? ("absent" as const) : ("conflict" as const);
  });
}

/** GreptimeDB on PostgreSQL: every transaction SERIALIZABLE. */
export function postgresGreptime(
  connect: () => Promise<pg.Client>,
  table: string,
): GreptimeBackend {
  return {
    retryable: (error) => ["40001", "40P01"].includes(String((error as { code?: unknown }).code)),
    async session() {
      const client = await connect();
      const one = async (text: string, values: unknown[]) =>
        (await client.query<{ k: Buffer; v: Buffer }>(text, values)).rows;
      return {
        begin: async () => {
          await client.query("START TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        },
        compare: async (k) =>
          (await one(`SELECT k, v FROM ${table} WHERE k in ($1);`, [k]))[0]?.v ?? null,
        get: async (k) =>
          (await one(`SELECT k, v FROM ${table} WHERE k in ($1);`, [k]))[0]?.v ?? null,
        put: async (k, v) => {
          await one(
            `
    WITH prev AS (
        SELECT k,v FROM ${table} WHERE k IN ($1)
    ), update AS (
    INSERT INTO ${table} (k, v) VALUES
        ($2, $3)
    ON CONFLICT (
        k
    ) DO UPDATE SET
        v = excluded.v
    )

    SELECT k, v FROM prev;
    `,
            [k, k, v],
          );
        },
        delete: async (k) =>
          (await one(`DELETE FROM ${table} WHERE k in ($1) RETURNING k,v;`, [k])).length,
        commit: async () => {
          await client.query("COMMIT");
        },
        rollback: async () => {
          await client.query("ROLLBACK");
        },
        close: () => client.end(),
      };
    },
  };
}

/** GreptimeDB on MySQL: `isolation()` says how the next transaction runs (its `SET SESSION`
 *  landed on its connection, or not). */
export function mysqlGreptime(
  connect: () => Promise<mysql.Connection>,
  table: string,
  isolation: () => "SERIALIZABLE" | "REPEATABLE READ",
): GreptimeBackend {
  return {
    retryable: (error) => [1213, 1205].includes(Number((error as { errno?: unknown }).errno)),
    async session() {
      const c = await connect();
      const rows = async (text: string, values: unknown[]) =>
        (await c.query(text, values))[0] as { k: Buffer; v: Buffer }[];
      return {
        begin: async () => {
          await c.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${isolation()}`);
          await c.query("BEGIN");
        },
        compare: async (k) =>
          (await rows(`SELECT k, v FROM ${table} WHERE k in (?);`, [k]))[0]?.v ?? null,
        get: async (k) =>
          (await rows(`SELECT k, v FROM ${table} WHERE k in (?);`, [k]))[0]?.v ?? null,
        put: async (k, v) => {
          await rows(`SELECT k, v FROM ${table} WHERE k IN (?)`, [k]);
          await c.query(
            `INSERT INTO ${table} (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v);`,
            [k, v],
          );
        },
        delete: async (k) => {
          await rows(`SELECT k, v FROM ${table} WHERE k in (?);`, [k]);
          const [result] = await c.query(`DELETE FROM ${table} WHERE k in (?);`, [k]);
          return (result as { affectedRows: number }).affectedRows;
        },
        commit: async () => {
          await c.query("COMMIT");
        },
        rollback: async () => {
          await c.query("ROLLBACK");
        },
        close: () => c.end(),
      };
    },
  };
}
