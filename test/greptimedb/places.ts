/**
 * Where the greptimedb layout's tests put GreptimeDB's metadata: a private etcd started for the
 * run (so keys can sit at the root, as a metasrv without a store key prefix writes them), and
 * GreptimeDB's own table, created with its own DDL, in a schema (PostgreSQL) or database (MySQL)
 * unique to the run. Each place is removed whole afterwards. Entries are written as a metasrv
 * writes them: the raw key and value bytes, nothing else.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import pg from "pg";
import { freePort, startPrivateEtcd as startEtcdProcess } from "../support/private-server.js";
import { mysqlUrl, postgresUnavailable, postgresUrl } from "../support/servers.js";

export interface Entry {
  key: string;
  value: Buffer;
}

export interface MetadataPlace {
  backend: "etcd" | "postgres" | "mysql";
  /** For test names: what varies (prefix, schema, table). */
  label: string;
  storeKeyPrefix: string;
  /** The store URL with `?layout=greptimedb` and the place's settings (never allowWrite). */
  url: string;
  /** Put entries as GreptimeDB does: raw bytes, nothing else. */
  write(entries: readonly Entry[]): Promise<void>;
  /** Every key and value in the place, in key order (values as hex, for exact comparison). */
  dump(): Promise<Map<string, string>>;
  /** Remove everything the place holds (keys, table, schema or database). */
  remove(): Promise<void>;
}

const runId = () => randomUUID().replaceAll("-", "").slice(0, 12);

export interface PrivateEtcd {
  url: string;
  endpoint: string;
  stop(): Promise<void>;
}

/** Why a private etcd cannot be started here, or null. */
export async function privateEtcdUnavailable(): Promise<string | null> {
  const { execFileSync } = await import("node:child_process");
  try {
    execFileSync("etcd", ["--version"], { stdio: "ignore", timeout: 5000 });
    return null;
  } catch (error) {
    return `no etcd binary to start a private server: ${(error as Error).message}`;
  }
}

/** An etcd of our own on free loopback ports, with its data in a temporary directory. */
export async function startPrivateEtcd(): Promise<PrivateEtcd> {
  const dir = mkdtempSync(join(tmpdir(), "poison-greptimedb-etcd-"));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const child = await startEtcdProcess({
    name: "greptimedb-test",
    dataDir: join(dir, "data"),
    clientPort: client,
    peerPort: peer,
    timeoutMs: 20_000,
  }).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  const stop = async () => {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: `etcd://127.0.0.1:${client}`, endpoint, stop };
}

const b64 = (bytes: Buffer | string) =>
  (typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes).toString("base64");

async function etcdPost(endpoint: string, path: string, body: unknown) {
  const response = await fetch(`${endpoint}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

const everything = { key: b64(Buffer.from([0])), range_end: b64(Buffer.from([0])) };

/** GreptimeDB's metadata at the root of a private etcd (it holds nothing else). */
export function etcdPlace(etcd: PrivateEtcd, storeKeyPrefix: string): MetadataPlace {
  const query = storeKeyPrefix ? `&storeKeyPrefix=${encodeURIComponent(storeKeyPrefix)}` : "";
  return {
    backend: "etcd",
    label: `etcd, store key prefix ${JSON.stringify(storeKeyPrefix)}`,
    storeKeyPrefix,
    url: `${etcd.url}?layout=greptimedb${query}`,
    async write(entries) {
      for (const entry of entries) {
        await etcdPost(etcd.endpoint, "/v3/kv/put", {
          key: b64(entry.key),
          value: b64(entry.value),
        });
      }
    },
    async dump() {
      const reply = await etcdPost(etcd.endpoint, "/v3/kv/range", everything);
      const kvs = (reply.kvs as { key: string; value?: string }[] | undefined) ?? [];
      return new Map(
        kvs.map((kv) => [
          Buffer.from(kv.key, "base64").toString("utf8"),
          Buffer.from(kv.value ?? "", "base64").toString("hex"),
        ]),
      );
    },
    async remove() {
      await etcdPost(etcd.endpoint, "/v3/kv/deleterange", everything);
    },
  };
}

/** A PostgreSQL client on the test database (the caller ends it). */
export async function pgClient(url = postgresUrl): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/**
 * GreptimeDB's table (greptime_metakv) in a PostgreSQL schema of the run, for a suite's harness:
 * `unavailable` probes the server and, the first time it answers, creates the schema and the
 * table; `teardown` drops the schema if it was created.
 */
export function postgresSuiteSchema(label: string): {
  schema: string;
  unavailable(): Promise<string | null>;
  teardown(): Promise<void>;
} {
  const schema = `greptime_${label}_${runId()}`;
  let created = false;
  return {
    schema,
    async unavailable() {
      const reason = await postgresUnavailable();
      if (reason !== null || created) return reason;
      const client = await pgClient();
      try {
        await client.query(`CREATE SCHEMA "${schema}"`);
        await client.query(
          `CREATE TABLE "${schema}"."greptime_metakv"(k bytea PRIMARY KEY, v bytea)`,
        );
        created = true;
      } finally {
        await client.end();
      }
      return null;
    },
    async teardown() {
      if (!created) return;
      const client = await pgClient();
      try {
        await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * GreptimeDB's table in a PostgreSQL schema of its own. `schema: false`: the store URL names no
 * schema and finds the table through `search_path` (set in the URL's `options`), as a metasrv
 * without `meta_schema_name` does; `true`: the URL names the schema. `table`: a
 * `meta_table_name` other than the default.
 */
export async function postgresPlace(settings: {
  storeKeyPrefix: string;
  schema: boolean;
  table?: string;
}): Promise<MetadataPlace> {
  const schema = `greptime_test_${runId()}`;
  const tableName = settings.table ?? "greptime_metakv";
  const ident = `"${schema}"."${tableName}"`;
  const admin = await pgClient();
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
    // GreptimeDB's own DDL (rds/postgres.rs PgSqlTemplateFactory::build).
    await admin.query(`CREATE TABLE IF NOT EXISTS ${ident}(k bytea PRIMARY KEY, v bytea)`);
  } finally {
    await admin.end();
  }
  const params = new URLSearchParams();
  if (!settings.schema) params.set("options", `-c search_path=${schema}`);
  params.set("layout", "greptimedb");
  if (settings.storeKeyPrefix) params.set("storeKeyPrefix", settings.storeKeyPrefix);
  if (settings.schema) params.set("schema", schema);
  if (settings.table) params.set("table", settings.table);
  const withClient = async <T>(body: (client: pg.Client) => Promise<T>) => {
    const client = await pgClient();
    try {
      return await body(client);
    } finally {
      await client.end();
    }
  };
  return {
    backend: "postgres",
    label: `postgres, store key prefix ${JSON.stringify(settings.storeKeyPrefix)}, ${
      settings.schema ? "meta_schema_name set" : "table found through search_path"
    }${settings.table ? `, meta_table_name ${settings.table}` : ""}`,
    storeKeyPrefix: settings.storeKeyPrefix,
    url: `${postgresUrl}?${params}`,
    write: (entries) =>
      withClient(async (client) => {
        for (const entry of entries) {
          await client.query(`INSERT INTO ${ident} (k, v) VALUES ($1, $2)`, [
            Buffer.from(entry.key, "utf8"),
            entry.value,
          ]);
        }
      }),
    dump: () =>
      withClient(async (client) => {
        const { rows } = await client.query<{ k: Buffer; v: Buffer }>(
          `SELECT k, v FROM ${ident} ORDER BY k`,
        );
        return new Map(rows.map((row) => [row.k.toString("utf8"), row.v.toString("hex")]));
      }),
    remove: () =>
      withClient(async (client) => {
        await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      }),
  };
}

/** A MySQL connection on the test database (the caller ends it). */
export function mysqlConnection(url = mysqlUrl): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: url });
}

/**
 * GreptimeDB's table in a MySQL database of its own. `schema: false`: the URL names that
 * database; `true`: the URL names the test database and `schema` names ours. `blob`: the `v BLOB`
 * column of tables made by older GreptimeDB releases.
 */
export async function mysqlPlace(settings: {
  storeKeyPrefix: string;
  schema: boolean;
  table?: string;
  blob?: boolean;
}): Promise<MetadataPlace> {
  const database = `greptime_test_${runId()}`;
  const tableName = settings.table ?? "greptime_metakv";
  const ident = `\`${database}\`.\`${tableName}\``;
  const admin = await mysqlConnection();
  try {
    await admin.query(`CREATE DATABASE \`${database}\``);
    // GreptimeDB's own DDL (rds/mysql.rs MySqlTemplateFactory::build; older releases: BLOB).
    await admin.query(
      `CREATE TABLE IF NOT EXISTS ${ident}(k VARBINARY(3072) PRIMARY KEY, v ${settings.blob ? "BLOB" : "MEDIUMBLOB"})`,
    );
  } finally {
    await admin.end();
  }
  const base = new URL(mysqlUrl);
  if (!settings.schema) base.pathname = `/${database}`;
  const params = new URLSearchParams();
  params.set("layout", "greptimedb");
  if (settings.storeKeyPrefix) params.set("storeKeyPrefix", settings.storeKeyPrefix);
  if (settings.schema) params.set("schema", database);
  if (settings.table) params.set("table", settings.table);
  const withConnection = async <T>(body: (c: mysql.Connection) => Promise<T>) => {
    const connection = await mysqlConnection();
    try {
      return await body(connection);
    } finally {
      await connection.end();
    }
  };
  return {
    backend: "mysql",
    label: `mysql, store key prefix ${JSON.stringify(settings.storeKeyPrefix)}, ${
      settings.schema ? "database named by schema" : "database of the URL"
    }${settings.table ? `, meta_table_name ${settings.table}` : ""}${settings.blob ? ", v BLOB" : ""}`,
    storeKeyPrefix: settings.storeKeyPrefix,
    url: `${base.toString().replace(/\?.*$/, "")}?${params}`,
    write: (entries) =>
      withConnection(async (c) => {
        for (const entry of entries) {
          await c.query(`INSERT INTO ${ident} (k, v) VALUES (?, ?)`, [
            Buffer.from(entry.key, "utf8"),
            entry.value,
          ]);
        }
      }),
    dump: () =>
      withConnection(async (c) => {
        const [rows] = await c.query(`SELECT k, v FROM ${ident} ORDER BY k`);
        return new Map(
          (rows as { k: Buffer; v: Buffer }[]).map((row) => [
            row.k.toString("utf8"),
            row.v.toString("hex"),
          ]),
        );
      }),
    remove: () =>
      withConnection(async (c) => {
        await c.query(`DROP DATABASE \`${database}\``);
      }),
  };
}
