/**
 * PostgreSQL's side of the SQL core (src/drivers/sql/client.ts): the pool the driver makes with
 * npm `pg` (loaded on first use), how a connection is checked out and handed back, and the
 * dedicated (unpooled) connections of LISTEN/NOTIFY. Shared by the postgres driver and the
 * GreptimeDB layout on PostgreSQL.
 */
import type { ClientConfig, PoolConfig } from "pg";
import { SqlClient, type SqlClientOptions, type SqlDialect } from "../sql/client.js";
import { type PostgresConnection, postgresConfigurationError, postgresSsl } from "./connection.js";
import type { PgListenClient } from "./watch.js";

/** A statement as `pg` takes it: with a `name`, prepared once per connection and then only
 *  bound and executed; without one, parsed and planned on every call. */
export interface PgQueryConfig {
  name?: string;
  text: string;
  values?: unknown[];
}

/** The part of a `pg` pooled client the drivers use. */
export interface PgClientLike {
  /** Called with a {@link PgQueryConfig} for the driver's statements (a `pg` client accepts
   *  both forms), with a string for transaction control and setup. */
  query(query: string | PgQueryConfig, values?: unknown[]): Promise<{ rows: unknown[] }>;
  /** `release(error)` makes the pool discard the connection instead of reusing it. */
  release(error?: Error | boolean): void;
  on(event: "error", listener: (error: Error) => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
}

/** The part of a `pg` Pool the drivers use; pass your own `new pg.Pool(…)` as `pool`. */
export interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  end(): Promise<void>;
}

export interface PostgresLimits {
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  maxConnections: number;
}

/** An error on a checked-out client with no listener would crash the process. */
const ignore = () => undefined;

/**
 * The SQL core on PostgreSQL. `connection` (from the URL) makes the pool, or `pool` is the
 * caller's. `classify` names a setup to fix (defaults to the driver's classification).
 */
export function postgresClient(
  connection: PostgresConnection | null,
  limits: PostgresLimits,
  options: Omit<SqlClientOptions<PgPoolLike>, "timeoutMs"> & {
    classify?: (error: unknown) => unknown;
  } = {},
): SqlClient<PgPoolLike, PgClientLike> {
  const classify =
    options.classify ?? ((error: unknown) => postgresConfigurationError(error) ?? error);
  const dialect: SqlDialect<PgPoolLike, PgClientLike> = {
    backend: "postgres",
    begin: "BEGIN",
    async createPool() {
      const { default: pg } = await import("pg");
      const { queryTimeoutMs } = limits;
      // No `query_timeout` on pooled connections: every statement on one runs inside the SQL
      // core's bound (onConnection), which discards the connection when it expires. pg's own
      // bound would arm a second timer per statement for the same job.
      const { query_timeout: _bySqlCore, ...perConnection } = await clientConfig(
        connection,
        limits,
      );
      const config: PoolConfig = {
        ...perConnection,
        max: limits.maxConnections,
        lock_timeout: queryTimeoutMs,
        // A client that vanished mid-transaction must not keep its row locks for long.
        idle_in_transaction_session_timeout: Math.max(queryTimeoutMs * 2, 10_000),
      };
      const created = new pg.Pool(config);
      // An idle connection that breaks is dropped by the pool; without a listener the 'error'
      // event would crash the process.
      created.on("error", ignore);
      return created as unknown as PgPoolLike;
    },
    async checkout(pool) {
      const client = await pool.connect();
      client.on("error", ignore);
      return client;
    },
    settle(client, error) {
      client.off("error", ignore);
      client.release(error ?? false);
    },
    execute: (client, text) => client.query(text),
    classify,
    endPool: (pool) => pool.end(),
  };
  return new SqlClient(dialect, { ...options, timeoutMs: limits.queryTimeoutMs });
}

/** What every connection of the drivers is opened with: the URL, its TLS, the bounds on
 *  connecting and on each statement (client and server side; the pool drops the client-side
 *  one, see createPool), keep-alive. */
async function clientConfig(
  connection: PostgresConnection | null,
  limits: Omit<PostgresLimits, "maxConnections">,
): Promise<ClientConfig> {
  return {
    connectionString: connection?.connectionString,
    ...(connection?.tls ? { ssl: await postgresSsl(connection.tls) } : {}),
    connectionTimeoutMillis: limits.connectTimeoutMs,
    query_timeout: limits.queryTimeoutMs,
    statement_timeout: limits.queryTimeoutMs,
    keepAlive: true,
  };
}

/** A connection of its own, never one of the pool (a watch's LISTEN, the writers' NOTIFY). */
export async function postgresListenClient(
  connection: PostgresConnection | null,
  limits: Omit<PostgresLimits, "maxConnections">,
): Promise<PgListenClient> {
  const { default: pg } = await import("pg");
  const client = new pg.Client(await clientConfig(connection, limits));
  // Until the watch listens for them, errors must not crash the process.
  client.on("error", ignore);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(ignore);
    throw error;
  }
  return client as unknown as PgListenClient;
}
