/**
 * The backends the torture suite runs on. A backend joins with one entry in BACKENDS: the same
 * shape as the conformance suite's DriverHarness, plus, for a networked backend, the server
 * address a fault proxy can stand in front of.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPoisonStore, type PoisonStoreClient, type PoisonStoreOptions } from "../src/index.js";
import {
  etcdUnavailable,
  etcdUrl,
  mysqlUnavailable,
  mysqlUrl,
  postgresUnavailable,
  postgresUrl,
  redisUnavailable,
  redisUrl,
} from "../test/support/servers.js";

export interface TortureBackend {
  /** The backend's name, as given to `--backend`. */
  name: string;
  /** Why the backend cannot be used here (server unreachable…), or null when it can. */
  unavailable?(): Promise<string | null>;
  /** A new store on the backend, sharing its data with every other store this entry opened. */
  open(options?: PoisonStoreOptions): PoisonStoreClient;
  /**
   * Networked backends only: the server a fault proxy (test/support/fault-proxy.ts) is put in
   * front of, and how to open a store that connects through the proxy's loopback port instead.
   * Declaring it enables the proxy-fault workload for the backend.
   */
  proxy?: {
    target: { host: string; port: number };
    open(proxyPort: number, options?: PoisonStoreOptions): PoisonStoreClient;
  };
  /** A URL other processes can open to share this backend's data; enables the multi-process
   *  workload. Absent for `memory:`, which lives in one process. */
  url?(): string;
  /** Scale of the fuzz run relative to the full 100,000 calls (1 for in-process backends;
   *  networked backends run a small fraction). */
  fuzzScale: number;
  /** Runs once after the suite. */
  teardown?(): Promise<void>;
}

let sqliteDir: string | null = null;
const sqliteUrl = () => {
  sqliteDir ??= mkdtempSync(join(tmpdir(), "poison-torture-"));
  return `sqlite:${join(sqliteDir, "torture.db")}`;
};

const memoryName = `torture-${process.pid}`;

/** Every backend, in report order. A networked driver adds its entry here. */
export const BACKENDS: readonly TortureBackend[] = [
  {
    name: "memory",
    open: (options) => openPoisonStore(`memory:${memoryName}`, options),
    fuzzScale: 1,
  },
  {
    name: "sqlite",
    open: (options) => openPoisonStore(sqliteUrl(), options),
    url: sqliteUrl,
    fuzzScale: 0.1,
    async teardown() {
      if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
      sqliteDir = null;
    },
  },
  networked("postgres", postgresUrl, postgresUnavailable),
  networked("mysql", mysqlUrl, mysqlUnavailable),
  networked("redis", redisUrl, redisUnavailable),
  networked("etcd", etcdUrl, etcdUnavailable),
];

/** A networked backend: its URL, and the same URL pointed at a fault proxy's port. */
function networked(
  name: string,
  url: string,
  unavailable: () => Promise<string | null>,
): TortureBackend {
  const target = new URL(url.replace(/^etcd:\/\/([^,/]+).*$/, "etcd://$1"));
  const viaPort = (port: number) => {
    const proxied = new URL(target.toString());
    proxied.host = `127.0.0.1:${port}`;
    return proxied.toString();
  };
  return {
    name,
    unavailable,
    open: (options) => openPoisonStore(url, options),
    url: () => url,
    proxy: {
      target: { host: target.hostname, port: Number(target.port) },
      open: (port, options) => openPoisonStore(viaPort(port), options),
    },
    fuzzScale: 0.01,
  };
}

/** Null when a TCP server answers at host:port within a second, else why not (for
 *  `unavailable()` of networked backends). */
export async function reachable(host: string, port: number): Promise<string | null> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(null);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(`no answer from ${host}:${port} within 1 s`);
    });
    socket.once("error", (error) => resolve(`${host}:${port}: ${error.message}`));
  });
}
