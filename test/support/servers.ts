/**
 * The local test servers (`npm run services` makes them answer) and a probe for each, shared by
 * the driver, guard, CLI and torture tests. Each URL can be overridden by an environment variable.
 */
import { existsSync } from "node:fs";
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

/*
 * The secured servers (scripts/services-tls.sh, run by `npm run services`): TLS and credentials,
 * beside the plain ones, with a throw-away CA. Each URL can be overridden by an environment
 * variable (POISON_ETCD_TLS_URL, POISON_REDIS_TLS_URL, POISON_POSTGRES_TLS_URL,
 * POISON_MYSQL_TLS_URL); the certificates' directory by POISON_TLS_DIR.
 */
export const tlsDir = process.env.POISON_TLS_DIR ?? "/var/lib/poison-store-tls";
export const tlsFiles = {
  /** The CA that signed the servers' and the client's certificates. */
  ca: `${tlsDir}/ca.pem`,
  /** A client certificate the servers accept (no Common Name: etcd's gateway refuses one). */
  cert: `${tlsDir}/client.pem`,
  key: `${tlsDir}/client.key`,
  /** A CA that signed nothing the servers present, and a client certificate from it that no
   *  server trusts. */
  rogueCa: `${tlsDir}/rogue-ca.pem`,
  rogueCert: `${tlsDir}/rogue-client.pem`,
  rogueKey: `${tlsDir}/rogue-client.key`,
};
/** The password of every secured test account. It holds "@" and ":", so URLs carry it
 *  percent-encoded: the drivers must decode it. */
export const securedPassword = "Tls-p@ss:w0rd";
const securedAuth = (user: string) => `${user}:${encodeURIComponent(securedPassword)}@`;

export const securedEtcdUrl =
  process.env.POISON_ETCD_TLS_URL ??
  `etcds://${securedAuth("poison")}127.0.0.1:2479?ca=${tlsFiles.ca}&cert=${tlsFiles.cert}&key=${tlsFiles.key}`;
export const securedRedisUrl =
  process.env.POISON_REDIS_TLS_URL ??
  `rediss://${securedAuth("poison")}127.0.0.1:6380?ca=${tlsFiles.ca}&cert=${tlsFiles.cert}&key=${tlsFiles.key}`;
export const securedPostgresUrl =
  process.env.POISON_POSTGRES_TLS_URL ??
  `postgres://${securedAuth("poison_tls")}127.0.0.1:5432/poison_tls?sslmode=verify-full&sslrootcert=${tlsFiles.ca}&sslcert=${tlsFiles.cert}&sslkey=${tlsFiles.key}`;
export const securedMysqlUrl =
  process.env.POISON_MYSQL_TLS_URL ??
  `mysql://${securedAuth("poison")}127.0.0.1:3307/test?ssl-mode=VERIFY_IDENTITY&ssl-ca=${tlsFiles.ca}&ssl-cert=${tlsFiles.cert}&ssl-key=${tlsFiles.key}`;

/** The same URL with its user information replaced (`user:password`, unencoded; null: none). */
export function withCredentials(url: string, user: string | null, password?: string): string {
  const credentials =
    user === null
      ? ""
      : `${encodeURIComponent(user)}${password === undefined ? "" : `:${encodeURIComponent(password)}`}@`;
  return url.replace(/^([a-z]+:\/\/)(?:[^/?#]*@)?/i, `$1${credentials}`);
}

/** The same URL with query parameters set (a value of null removes the parameter). */
export function withParams(url: string, params: Record<string, string | null>): string {
  const [base, query = ""] = url.split("?") as [string, string?];
  const search = new URLSearchParams(query);
  for (const [name, value] of Object.entries(params)) {
    if (value === null) search.delete(name);
    else search.set(name, value);
  }
  const text = search.toString();
  return text ? `${base}?${text}` : base;
}

/** Why a secured server cannot be used, or null: the certificates exist and the server accepts
 *  TCP connections. Nothing more: whether TLS and the credentials work is what the tests check,
 *  so a driver that fails them must fail, not be skipped. */
export function securedUnavailable(url: string): Promise<string | null> {
  const missing = [tlsFiles.ca, tlsFiles.cert, tlsFiles.key].find((file) => !existsSync(file));
  if (missing) {
    return Promise.resolve(`${missing} is missing. Run \`npm run services\` (as root).`);
  }
  const { hostname, port } = new URL(url.replace(/^[a-z]+:/i, "http:").split(",")[0] as string);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname.replace(/^\[(.*)\]$/, "$1"));
    const done = (reason: string | null) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(2000, () => done(`no connection to ${hostname}:${port} within 2 s`));
    socket.on("error", (error) =>
      done(`${hostname}:${port}: ${error.message}. Run \`npm run services\` (as root).`),
    );
    socket.on("connect", () => done(null));
  });
}
