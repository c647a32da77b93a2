/**
 * The backends the torture suite runs on: the registry's (test/support/backends.ts), each with
 * the suite's view of it. A networked backend also names the server address a fault proxy can
 * stand in front of. BACKENDS narrows the list (the others are not selected).
 */
import { openPoisonStore, type PoisonStoreClient, type PoisonStoreOptions } from "../src/index.js";
import { type Backend, selectedBackends } from "../test/support/backends.js";

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

/** Every selected backend, in report order. A new backend joins through the registry. */
export const BACKENDS: readonly TortureBackend[] = selectedBackends().map(tortureBackend);

function tortureBackend(backend: Backend): TortureBackend {
  if (backend.kind === "server" && backend.url) return networked(backend, backend.url);
  // In-process and file backends: one place for the whole run, removed at the end.
  const place = backend.place();
  return {
    name: backend.name,
    open: (options) => place.open(options),
    ...(backend.kind === "file" ? { url: () => place.url } : {}),
    fuzzScale: backend.fuzzScale,
    teardown: () => place.teardown(),
  };
}

/** A networked backend: its URL (the whole server: the workloads pick their own namespaces),
 *  and the same URL pointed at a fault proxy's port. */
function networked(backend: Backend, url: string): TortureBackend {
  const target = new URL(url.replace(/^etcd:\/\/([^,/]+).*$/, "etcd://$1"));
  const viaPort = (port: number) => {
    const proxied = new URL(target.toString());
    proxied.host = `127.0.0.1:${port}`;
    return proxied.toString();
  };
  return {
    name: backend.name,
    ...(backend.unavailable ? { unavailable: backend.unavailable } : {}),
    open: (options) => openPoisonStore(url, options),
    url: () => url,
    proxy: {
      target: { host: target.hostname, port: Number(target.port) },
      open: (port, options) => openPoisonStore(viaPort(port), options),
    },
    fuzzScale: backend.fuzzScale,
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
