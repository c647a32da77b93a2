/**
 * The benchmark's registry: the test registry's backends (test/support/backends.ts), each able
 * to open our store (through `openPoisonStore(url)`, exactly as a user would) and its
 * hand-written baseline, and to say why it cannot be measured here. A backend that cannot be
 * measured (server down, no baseline written yet) is reported as skipped with that reason,
 * never as zero. BACKENDS narrows the list.
 */
import { connect } from "node:net";
import {
  InvalidArgumentError,
  openPoisonStore,
  type PoisonStoreClient,
  redactUrl,
} from "../src/index.js";
import {
  type Backend,
  type BackendName,
  backend as registryBackend,
  selectedBackends,
} from "../test/support/backends.js";
import type { Baseline, BaselineUnavailable } from "./baselines/baseline.js";
import { etcdBaseline } from "./baselines/etcd.js";
import { memoryBaseline } from "./baselines/memory.js";
import { mysqlBaseline } from "./baselines/mysql.js";
import { postgresBaseline } from "./baselines/postgres.js";
import { redisBaseline } from "./baselines/redis.js";
import { sqliteBaseline } from "./baselines/sqlite.js";

export type { BackendName } from "../test/support/backends.js";
/** The backends measured by default: those BACKENDS selects, in report order. */
export const BACKEND_NAMES: readonly BackendName[] = selectedBackends().map((b) => b.name);

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

/** The hand-written baselines: the shortest correct code with the same client. `target` is the
 *  URL (server) or a fresh place's URL (memory, file) the baseline opens. */
const BASELINES: Partial<
  Record<
    BackendName,
    { label: string; open(target: string): Promise<Baseline | BaselineUnavailable> }
  >
> = {
  memory: { label: "async functions over a bare Map", open: async () => memoryBaseline() },
  sqlite: {
    label: "better-sqlite3, WAL + synchronous=FULL, prepared statements, IMMEDIATE tx",
    open: async (target) => sqliteBaseline(target.slice("sqlite:".length)),
  },
  postgres: {
    label: "pg Pool, named (prepared) single statements",
    open: (target) => postgresBaseline(target),
  },
  mysql: {
    label: "mysql2 pool, execute (prepared) single statements",
    open: (target) => mysqlBaseline(target),
  },
  redis: {
    label: "ioredis, one connection, SET NX GET put-if-absent, Lua delete-if-token via EVALSHA",
    open: async (target) => redisBaseline(target),
  },
  etcd: {
    label: "fetch on the JSON gateway, one txn per write (create_revision / value compare)",
    open: async (target) => etcdBaseline(target),
  },
};

/** BENCH_<NAME>_URL overrides the server the tests use (POISON_<NAME>_URL). */
const serverUrl = (entry: Backend) =>
  process.env[`BENCH_${entry.name.toUpperCase()}_URL`] || (entry.url as string);

export function backendRegistry(context: RegistryContext): Record<BackendName, BackendEntry> {
  const entries = {} as Record<BackendName, BackendEntry>;
  for (const name of BACKEND_NAMES) entries[name] = benchEntry(registryBackend(name), context);
  return entries;
}

function benchEntry(entry: Backend, context: RegistryContext): BackendEntry {
  const baseline = BASELINES[entry.name];
  const baselineLabel = baseline?.label ?? "none written yet";
  const noBaseline = async (): Promise<BaselineUnavailable> => ({
    skipped: `no hand-written baseline for ${entry.name} yet (bench/baselines/)`,
  });
  if (entry.kind === "server") {
    const url = serverUrl(entry);
    return {
      name: entry.name,
      url: redactUrl(url),
      baselineLabel,
      reachable: () => serverDown(url),
      oursUnavailable: () => driverMissing(url),
      ours: async (options) => openPoisonStore(url, options),
      baseline: () => (baseline ? baseline.open(url) : noBaseline()),
    };
  }
  // In-process and file backends: each store opens a fresh place (an unnamed map, a new file in
  // the caller's scratch directory), so no side measures on data another left.
  const fresh = () => entry.place({ dir: context.tempDir, single: true }).url;
  const probe = fresh();
  return {
    name: entry.name,
    url: probe.replace(/test-[0-9a-f-]+(\.db)?$/, "N$1"),
    baselineLabel,
    reachable: async () => null,
    oursUnavailable: () => driverMissing(probe),
    ours: async (options) => openPoisonStore(fresh(), options),
    baseline: () => (baseline ? baseline.open(fresh()) : noBaseline()),
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

/** The port a URL without one means, per scheme. */
const DEFAULT_PORTS: Record<string, number> = {
  postgres: 5432,
  postgresql: 5432,
  mysql: 3306,
  mariadb: 3306,
  redis: 6379,
  rediss: 6379,
  etcd: 2379,
  etcds: 2379,
};

/** The first host:port of the URL, tried with a plain TCP connect (1 s). */
async function serverDown(url: string): Promise<string | null> {
  const match = /^[a-z0-9+.-]+:\/\/(?:[^@/]*@)?([^/:,?]+|\[[^\]]+\])(?::(\d+))?/i.exec(url);
  if (!match) return `cannot find a host in ${redactUrl(url)}`;
  const host = (match[1] as string).replace(/^\[|\]$/g, "");
  const port = Number(match[2] ?? DEFAULT_PORTS[url.slice(0, url.indexOf(":"))]);
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
