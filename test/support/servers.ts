/**
 * The local test servers (`npm run services` makes them answer) and a probe for each, shared by
 * the driver, guard, CLI and torture tests. Each URL can be overridden by an environment variable.
 */
import mysql from "mysql2/promise";
import pg from "pg";

export const postgresUrl =
  process.env.POISON_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const mysqlUrl = process.env.POISON_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

/** Why PostgreSQL cannot be used, or null. */
export async function postgresUnavailable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 2000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (error) {
    return `cannot reach PostgreSQL at ${new URL(postgresUrl).host}: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Why MySQL/MariaDB cannot be used, or null. */
export async function mysqlUnavailable(): Promise<string | null> {
  let connection: mysql.Connection | undefined;
  try {
    connection = await mysql.createConnection({ uri: mysqlUrl, connectTimeout: 2000 });
    await connection.query("SELECT 1");
    return null;
  } catch (error) {
    return `cannot reach MySQL/MariaDB at ${new URL(mysqlUrl).host}: ${(error as Error).message}`;
  } finally {
    await connection?.end().catch(() => undefined);
  }
}
