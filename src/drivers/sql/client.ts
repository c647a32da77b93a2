/**
 * The SQL core: what every driver over a client/server SQL database shares (the PostgreSQL and
 * MySQL drivers, and the GreptimeDB layouts on those servers). One pool per driver, made by the
 * driver or passed in by the caller; each call checks a connection out under a time bound and
 * hands it back, or discards it on any failure or overrun, so a broken or half-used connection
 * never serves another call; transactions that commit, or roll back whole on a {@link Rollback};
 * failures classified once (a setup to fix, or the server's own error); close.
 *
 * A dialect ({@link SqlDialect}) says how to make its pool and talk to one connection; the
 * drivers bring their statements (src/drivers/<dialect>/statements.ts) and their decisions.
 */
import { BackendUnavailableError } from "../../core/errors.js";
import { onConnection, Rollback } from "./common.js";

/** How one SQL client library is driven: the seam between the core and `pg` or `mysql2`. */
export interface SqlDialect<Pool, Connection> {
  backend: "postgres" | "mysql";
  /** The statement that starts a transaction (`BEGIN`, `START TRANSACTION`). */
  begin: string;
  /** Make the driver's own pool (the client library is loaded here, on first use). */
  createPool(): Promise<Pool>;
  checkout(pool: Pool): Promise<Connection>;
  /** Hand a connection back: without an error to the pool, with one discarded. */
  settle(connection: Connection, error?: Error): void;
  /** Run a statement without values (transaction control). */
  execute(connection: Connection, text: string): Promise<unknown>;
  /** A failure as the caller should see it: a BackendConfigurationError naming what to fix, or
   *  the error itself. */
  classify(error: unknown): unknown;
  endPool(pool: Pool): Promise<void>;
}

export interface SqlClientOptions<Pool> {
  /** The caller's pool: used as is, never ended by {@link SqlClient.close}. */
  pool?: Pool;
  /** Bound on one step (checking out a connection included), client side. */
  timeoutMs: number;
  /** Open the driver's own pool on first use. Without it, calls before {@link SqlClient.open}
   *  are refused (drivers open in `init`, which the runtime runs first). */
  openOnUse?: boolean;
  /** Retry a whole step when this says its failure left nothing behind (a deadlock victim,
   *  whose transaction the server rolled back). */
  retry?: <T>(step: () => Promise<T>) => Promise<T>;
}

export class SqlClient<Pool, Connection> {
  readonly #dialect: SqlDialect<Pool, Connection>;
  readonly #options: SqlClientOptions<Pool>;
  readonly #ownsPool: boolean;
  #pool: Pool | null;
  #opening: Promise<Pool> | null = null;
  #closed = false;

  constructor(dialect: SqlDialect<Pool, Connection>, options: SqlClientOptions<Pool>) {
    this.#dialect = dialect;
    this.#options = options;
    this.#ownsPool = options.pool === undefined;
    this.#pool = options.pool ?? null;
  }

  /** The pool, made on the first call (once, however many ask at the same time). */
  open(): Promise<Pool> {
    if (this.#pool) return Promise.resolve(this.#pool);
    if (this.#closed) return Promise.reject(this.#notOpen("closed"));
    this.#opening ??= this.#dialect.createPool().then(
      (pool) => {
        this.#pool = pool;
        return pool;
      },
      (error: unknown) => {
        this.#opening = null;
        throw error;
      },
    );
    return this.#opening;
  }

  /** Run `body` on one pooled connection (see the module comment for what a failure does). */
  withConnection<T>(body: (connection: Connection) => Promise<T>): Promise<T> {
    const step = () => this.#onConnection(body);
    return this.#options.retry ? this.#options.retry(step) : step();
  }

  /** The dialect's `begin` (or `begin` given here) … COMMIT on one connection; a
   *  {@link Rollback} from `body` rolls back and answers its value; any failure discards the
   *  connection, which rolls back. */
  transaction<T>(
    body: (connection: Connection) => Promise<T | Rollback<T>>,
    begin = this.#dialect.begin,
  ): Promise<T> {
    return this.withConnection(async (connection) => {
      await this.#dialect.execute(connection, begin);
      const result = await body(connection);
      if (result instanceof Rollback) {
        await this.#dialect.execute(connection, "ROLLBACK");
        return result.value;
      }
      await this.#dialect.execute(connection, "COMMIT");
      return result;
    });
  }

  /** Ends the pool the driver made; a caller's pool stays open (and usable). */
  async close(): Promise<void> {
    if (!this.#ownsPool) return;
    this.#closed = true;
    const pool = this.#pool ?? (this.#opening ? await this.#opening.catch(() => null) : null);
    this.#pool = null;
    this.#opening = null;
    if (pool) await this.#dialect.endPool(pool);
  }

  #onConnection<T>(body: (connection: Connection) => Promise<T>): Promise<T> {
    const pool = this.#pool;
    if (!pool && !this.#options.openOnUse) return Promise.reject(this.#notOpen("not open"));
    return onConnection(
      this.#options.timeoutMs,
      this.#dialect.backend,
      pool ? this.#checkout : this.#openAndCheckout,
      body,
      this.#settle,
      this.#classify,
    );
  }

  // Made once, not per call: every closure and promise layer on this path is paid per statement.
  /** Checks out from the open pool (only passed to onConnection while #pool is set: it is
   *  called at once, in the same tick). A dialect that throws instead of rejecting still
   *  fails the call the usual way, as the async wrapper this replaces did. */
  readonly #checkout = (): Promise<Connection> => {
    try {
      return this.#dialect.checkout(this.#pool as Pool);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  readonly #openAndCheckout = async (): Promise<Connection> =>
    this.#dialect.checkout(await this.open());
  readonly #settle = (connection: Connection, error?: Error): void =>
    this.#dialect.settle(connection, error);
  readonly #classify = (error: unknown): unknown => this.#dialect.classify(error);

  #notOpen(state: "not open" | "closed"): BackendUnavailableError {
    return new BackendUnavailableError(this.#dialect.backend, `the driver is ${state}`);
  }
}

/** A pool's limits, from a driver's options with their defaults (5 s, 5 s, 10 connections). */
export function poolLimits(options: {
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  maxConnections?: number;
}): { connectTimeoutMs: number; queryTimeoutMs: number; maxConnections: number } {
  return {
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    queryTimeoutMs: options.queryTimeoutMs ?? 5000,
    maxConnections: options.maxConnections ?? 10,
  };
}
