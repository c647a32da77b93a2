/**
 * MySQL's side of the SQL core (src/drivers/sql/client.ts): the pool the driver makes with npm
 * `mysql2` (loaded on first use) and how a connection is checked out and handed back. Shared by
 * the mysql driver and the GreptimeDB layout on MySQL.
 */
import type { Pool, PoolOptions } from "mysql2/promise";
import { SqlClient, type SqlClientOptions, type SqlDialect } from "../sql/client.js";
import { type MysqlConnection, mysqlConfigurationError, mysqlSsl } from "./connection.js";

/** The part of a `mysql2/promise` pooled connection the drivers use. */
export interface MysqlConnectionLike {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  /** A prepared statement (mysql2 prepares it once per connection and caches it). Used for the
   *  hot-path statements when present; without it (a hand-written pool) they go through
   *  `query`. */
  execute?(sql: string, values: (Buffer | number | null)[]): Promise<[unknown, unknown]>;
  release(): void;
  destroy(): void;
}

/** The part of a `mysql2/promise` Pool the drivers use; pass your own `createPool(…)` as `pool`. */
export interface MysqlPoolLike {
  getConnection(): Promise<MysqlConnectionLike>;
  end(): Promise<void>;
}

export interface MysqlLimits {
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  maxConnections: number;
}

/**
 * The SQL core on MySQL. `connection` (from the URL) makes the pool, or `pool` is the caller's.
 * `classify` names a setup to fix (defaults to the driver's classification).
 */
export function mysqlClient(
  connection: MysqlConnection | null,
  limits: MysqlLimits,
  options: Omit<SqlClientOptions<MysqlPoolLike>, "timeoutMs"> & {
    classify?: (error: unknown) => unknown;
  } = {},
): SqlClient<MysqlPoolLike, MysqlConnectionLike> {
  const classify =
    options.classify ?? ((error: unknown) => mysqlConfigurationError(error) ?? error);
  const dialect: SqlDialect<MysqlPoolLike, MysqlConnectionLike> = {
    backend: "mysql",
    begin: "START TRANSACTION",
    async createPool() {
      if (!connection) throw new Error("mysqlClient needs a connection or a pool");
      const mysql = await import("mysql2/promise");
      const config: PoolOptions = {
        uri: connection.uri,
        ...(connection.tls ? { ssl: await mysqlSsl(connection.tls) } : {}),
        connectionLimit: limits.maxConnections,
        connectTimeout: limits.connectTimeoutMs,
        enableKeepAlive: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
      };
      const created: Pool = mysql.createPool(config);
      // A connection abandoned by the client keeps its locks until its lock waits end; keep
      // those waits as short as the client's own bound.
      const lockWaitSeconds = Math.max(1, Math.ceil(limits.queryTimeoutMs / 1000));
      created.pool.on("connection", (pooled) => {
        pooled.query(`SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}`, () => {
          // A failure here surfaces on the connection's next statement.
        });
      });
      return created as unknown as MysqlPoolLike;
    },
    checkout: (pool) => pool.getConnection(),
    settle: (c, error) => (error ? c.destroy() : c.release()),
    execute: (c, text) => c.query(text),
    classify,
    endPool: (pool) => pool.end(),
  };
  return new SqlClient(dialect, { ...options, timeoutMs: limits.queryTimeoutMs });
}
