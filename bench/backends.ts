/**
 * The benchmark's registry: one entry per backend, each able to open our store (through
 * `openPoisonStore(url)`, exactly as a user would) and its hand-written baseline, and to say why
 * it cannot be measured here. A backend that cannot be measured is reported as skipped with that
 * reason, never as zero.
 */
import { connect } from "node:net";
import { join } from "node:path";
import {
  InvalidArgumentError,
  openPoisonStore,
  type PoisonStoreClient,
  redactUrl,
} from "../src/index.js";
import type { Baseline, BaselineUnavailable } from "./baselines/baseline.js";
import { etcdBaseline } from "./baselines/etcd.js";
import { memoryBaseline } from "./baselines/memory.js";
import { mysqlBaseline } from "./baselines/mysql.js";
import { postgresBaseline } from "./baselines/postgres.js";
import { redisBaseline } from "./baselines/redis.js";
import { sqliteBaseline } from "./baselines/sqlite.js";

export const BACKEND_NAMES = ["memory", "sqlite", "postgres", "mysql", "redis", "etcd"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface OursOptions {
  namespace: string;
  timeoutMs?: number;
}

export interface BackendEntry {
  name: BackendName;
  /** Where our store is opened, password-free, for the report. */
  url: string;
  /** What the baseline is, in a few words, for the report. */
  baselineLabel: string;
  /** Why nothing can be measured here (the server is not reachable), or null. */
  reachable(): Promise<string | null>;
  /** Why our side cannot be measured (the driver is not merged in this build), or null. The
   *  baseline is still checked (and measured alone) then. */
  oursUnavailable(): string | null;
  ours(options: OursOptions): Promise<PoisonStoreClient>;
  baseline(): Promise<Baseline | BaselineUnavailable>;
}

export interface RegistryContext {
  /** A scratch directory for the SQLite files, removed by the caller. */
  tempDir: string;
}

const env = (name: string, fallback: string) => process.env[name] || fallback;

export function backendRegistry(context: RegistryContext): Record<BackendName, BackendEntry> {
  const postgresUrl = env("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
  const mysqlUrl = env("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
  const redisUrl = env("BENCH_REDIS_URL", "redis://127.0.0.1:6379");
  const etcdUrl = env("BENCH_ETCD_URL", "etcd://127.0.0.1:2379");
  let sqliteFiles = 0;
  const sqliteFile = (side: string) => join(context.tempDir, `${side}-${++sqliteFiles}.db`);

  return {
    memory: {
      name: "memory",
      url: "memory:",
      baselineLabel: "async functions over a bare Map",
      reachable: async () => null,
      oursUnavailable: () => driverMissing("memory:"),
      ours: async (options) => openPoisonStore("memory:", options),
      baseline: async () => memoryBaseline(),
    },
    sqlite: {
      name: "sqlite",
      url: `sqlite:${context.tempDir}/ours-N.db`,
      baselineLabel: "better-sqlite3, WAL + synchronous=FULL, prepared statements, IMMEDIATE tx",
      reachable: async () => null,
      oursUnavailable: () => driverMissing(`sqlite:${join(context.tempDir, "probe.db")}`),
      ours: async (options) => openPoisonStore(`sqlite:${sqliteFile("ours")}`, options),
      baseline: async () => sqliteBaseline(sqliteFile("baseline")),
    },
    postgres: {
      name: "postgres",
      url: redactUrl(postgresUrl),
      baselineLabel: "pg Pool, named (prepared) single statements",
      reachable: () => serverDown(postgresUrl, 5432),
      oursUnavailable: () => driverMissing(postgresUrl),
      ours: async (options) => openPoisonStore(postgresUrl, options),
      baseline: () => postgresBaseline(postgresUrl),
    },
    mysql: {
      name: "mysql",
      url: redactUrl(mysqlUrl),
      baselineLabel: "mysql2 pool, execute (prepared) single statements",
      reachable: () => serverDown(mysqlUrl, 3306),
      oursUnavailable: () => driverMissing(mysqlUrl),
      ours: async (options) => openPoisonStore(mysqlUrl, options),
      baseline: () => mysqlBaseline(mysqlUrl),
    },
    redis: {
      name: "redis",
      url: redactUrl(redisUrl),
      baselineLabel: "ioredis, one connection, Lua put-if-absent / delete-if-token via EVALSHA",
      reachable: () => serverDown(redisUrl, 6379),
      oursUnavailable: () => driverMissing(redisUrl),
      ours: async (options) => openPoisonStore(redisUrl, options),
      baseline: async () => redisBaseline(redisUrl),
    },
    etcd: {
      name: "etcd",
      url: etcdUrl,
      baselineLabel:
        "fetch on the JSON gateway, one txn per write (create_revision / value compare)",
      reachable: () => serverDown(etcdUrl, 2379),
      oursUnavailable: () => driverMissing(etcdUrl),
      ours: async (options) => openPoisonStore(etcdUrl, options),
      baseline: async () => etcdBaseline(etcdUrl),
    },
  };
}

/** "driver not available" while openPoisonStore does not know the URL's scheme (the driver is
 *  not merged yet). Opening connects nothing, so this costs nothing. */
function driverMissing(url: string): string | null {
  try {
    void openPoisonStore(url).close();
    return null;
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return `driver not available: openPoisonStore does not accept ${url.slice(0, url.indexOf(":") + 1)} URLs in this build`;
  }
}

/** The first host:port of the URL, tried with a plain TCP connect (1 s). */
async function serverDown(url: string, defaultPort: number): Promise<string | null> {
  const match = /^[a-z0-9+.-]+:\/\/(?:[^@/]*@)?([^/:,?]+|\[[^\]]+\])(?::(\d+))?/i.exec(url);
  if (!match) return `cannot find a host in ${redactUrl(url)}`;
  const host = (match[1] as string).replace(/^\[|\]$/g, "");
  const port = Number(match[2] ?? defaultPort);
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    const done = (reason: string | null) => {
      socket.destroy();
      resolve(reason);
    };
    socket.once("connect", () => done(null));
    socket.once("timeout", () => done(`server not reachable at ${host}:${port} (timeout)`));
    socket.once("error", (error) =>
      done(
        `server not reachable at ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? error.message})`,
      ),
    );
  });
}
