/**
 * The local test servers (`npm run services` makes them answer) and a probe for each, shared by
 * the driver, guard, CLI and torture tests. Each URL can be overridden by an environment variable.
 */
import net from "node:net";
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

export const redisUrl = process.env.POISON_REDIS_URL ?? "redis://127.0.0.1:6379";
export const etcdUrl = process.env.POISON_ETCD_URL ?? "etcd://127.0.0.1:2379";

/** Why Redis cannot be used, or null: a PING must answer within 2 s. */
export function redisUnavailable(): Promise<string | null> {
  const { hostname, port } = new URL(redisUrl);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port || 6379), hostname);
    const done = (reason: string | null) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(2000, () => done(`no answer from ${redisUrl} within 2 s`));
    socket.on("error", (error) => done(`${redisUrl}: ${error.message}`));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) =>
      done(data.toString().startsWith("+PONG") ? null : `unexpected reply ${data.toString()}`),
    );
  });
}

/** The first etcd endpoint as an HTTP base URL. */
export const etcdEndpoint = `http://${etcdUrl.slice("etcd://".length).split(",")[0]}`;

/** Why etcd cannot be used, or null: /health must answer within 2 s. */
export async function etcdUnavailable(): Promise<string | null> {
  try {
    const response = await fetch(`${etcdEndpoint}/health`, { signal: AbortSignal.timeout(2000) });
    const body = await response.text();
    return body.includes('"health":"true"') ? null : `${etcdEndpoint}/health answered ${body}`;
  } catch (error) {
    return `${etcdEndpoint}: ${(error as Error).message}. Run \`npm run services\`.`;
  }
}
