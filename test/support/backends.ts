/**
 * THE registry of backends. Every suite that runs on "each backend" reads it: the conformance
 * suite (test/drivers/<name>.test.ts), the guard suite (test/guard/guard-<name>.test.ts), the
 * CLI command matrix (test/cli/support.ts), torture (torture/backends.ts), bench
 * (bench/backends.ts) and `npm test`'s summary (scripts/test.mjs). A new backend is its driver,
 * one entry in {@link REGISTRY}, and its server in scripts/services.sh (CONTRIBUTING.md has the
 * checklist).
 *
 * Each entry says how to reach its test server (a URL an environment variable overrides, a
 * probe), and how to make a "place" on it: a fresh map, file or key prefix that no other run
 * sees, with a driver factory, a store opener and a teardown that deletes what the run wrote.
 *
 * BACKENDS=memory,sqlite (test/conformance/harness.ts) narrows every consumer; the others are
 * reported "not selected".
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEtcdGateway, parseEtcdLocation } from "../../src/drivers/etcd/gateway.js";
import {
  etcdDriver,
  memoryDriver,
  mysqlDriver,
  openPoisonStore,
  type PoisonDriver,
  type PoisonStoreClient,
  type PoisonStoreOptions,
  postgresDriver,
  redisDriver,
  sqliteDriver,
} from "../../src/index.js";
import type { DriverHarness } from "../conformance/harness.js";
import { isSelected } from "../conformance/harness.js";
import type { GuardHarness } from "../guard/harness.js";
import {
  etcdUnavailable,
  etcdUrl,
  mysqlUnavailable,
  mysqlUrl,
  postgresUnavailable,
  postgresUrl,
  redisUnavailable,
  redisUrl,
  securedEtcdUrl,
  securedMysqlUrl,
  securedPostgresUrl,
  securedRedisUrl,
  securedUnavailable,
  tlsFiles,
  withParams,
} from "./servers.js";

/** One run's own share of a backend: nothing another run writes is visible in it. */
export interface Place {
  /** A URL that opens this place's data (memory: within this process only). */
  url: string;
  /** A new raw driver on the place (the guard suite wraps it in faults). */
  driver(): PoisonDriver;
  /** A new store on the place, sharing its data with every other store of the place. */
  open(options?: PoisonStoreOptions): PoisonStoreClient;
  /** Deletes what the run wrote. Runs once, after the suite. */
  teardown(): Promise<void>;
}

export interface PlaceOptions {
  /** Where a file backend puts its file (default: a new temporary directory it removes). */
  dir?: string;
  /** Only one store opens the place (bench): memory: then uses an unnamed map, freed with the
   *  store, instead of a named one that lives as long as the process. */
  single?: boolean;
}

export interface BackendSpec {
  /**
   * Where the data lives: `process` (one process's memory: no multi-process workloads),
   * `file` (a local file several processes share), `server` (networked: its server is behind
   * `url`, fault proxies stand in front of it, the CLI matrix runs on it).
   */
  kind: "process" | "file" | "server";
  /** The test server's URL (`server` only); a POISON_<NAME>_URL variable overrides it. */
  url?: string;
  /** Why the server cannot be used here, or null (`server` only). */
  unavailable?(): Promise<string | null>;
  /** A fresh place on the backend. */
  place(options?: PlaceOptions): Place;
  /** Share of torture's 100,000 fuzzed calls run on this backend. */
  fuzzScale: number;
  /** The secured twin (scripts/services-tls.sh: TLS and credentials), tested as `<name>-tls`:
   *  its URL, the account in it, the URL parameter naming the CA, and a place on it. */
  secured?: { url: string; user: string; caParam: string; place(): Place };
}

/** A networked place: the store is opened by URL (exactly as a user does) or by a driver with
 *  the run's own prefix, which `teardown` deletes. */
function serverPlace(
  url: string,
  make: (url: string) => PoisonDriver,
  byUrl: boolean,
  teardown: () => Promise<void> = async () => undefined,
): Place {
  return {
    url,
    driver: () => make(url),
    open: (options) => openPoisonStore(byUrl ? url : make(url), options),
    teardown,
  };
}

/** Every backend, in report order. */
export const REGISTRY = {
  memory: {
    kind: "process",
    fuzzScale: 1,
    place(options = {}) {
      if (options.single) {
        return {
          url: "memory:",
          driver: () => memoryDriver(),
          open: (storeOptions) => openPoisonStore("memory:", storeOptions),
          teardown: async () => undefined,
        };
      }
      // One named map per place, so every store of the place shares it.
      const name = `test-${randomUUID()}`;
      return {
        url: `memory:${name}`,
        driver: () => memoryDriver({ name }),
        open: (options) => openPoisonStore(`memory:${name}`, options),
        teardown: async () => undefined,
      };
    },
  },
  sqlite: {
    kind: "file",
    fuzzScale: 0.1,
    place(options = {}) {
      // Created on first use: a place of a backend that is not selected leaves nothing behind.
      let dir = options.dir ?? null;
      const own = options.dir === undefined;
      const path = () => {
        dir ??= mkdtempSync(join(tmpdir(), "poison-sqlite-"));
        return join(dir, own ? "test.db" : `test-${randomUUID()}.db`);
      };
      let file: string | null = null;
      const location = () => {
        file ??= path();
        return file;
      };
      return {
        get url() {
          return `sqlite:${location()}`;
        },
        driver: () => sqliteDriver({ path: location() }),
        open: (storeOptions) => openPoisonStore(`sqlite:${location()}`, storeOptions),
        async teardown() {
          if (own && dir !== null) rmSync(dir, { recursive: true, force: true });
          if (own) dir = null;
          file = null;
        },
      };
    },
  },
  postgres: {
    kind: "server",
    url: postgresUrl,
    unavailable: postgresUnavailable,
    fuzzScale: 0.01,
    place: () => serverPlace(postgresUrl, (url) => postgresDriver({ url }), true),
    secured: {
      url: securedPostgresUrl,
      user: "poison_tls",
      caParam: "sslrootcert",
      place: () => serverPlace(securedPostgresUrl, (url) => postgresDriver({ url }), true),
    },
  },
  mysql: {
    kind: "server",
    url: mysqlUrl,
    unavailable: mysqlUnavailable,
    fuzzScale: 0.01,
    place: () => serverPlace(mysqlUrl, (url) => mysqlDriver({ url }), true),
    secured: {
      url: securedMysqlUrl,
      user: "poison",
      caParam: "ssl-ca",
      place: () => serverPlace(securedMysqlUrl, (url) => mysqlDriver({ url }), true),
    },
  },
  redis: {
    kind: "server",
    url: redisUrl,
    unavailable: redisUnavailable,
    fuzzScale: 0.01,
    place: () => redisPlace(redisUrl),
    secured: {
      url: securedRedisUrl,
      user: "poison",
      caParam: "ca",
      place: () => redisPlace(securedRedisUrl),
    },
  },
  etcd: {
    kind: "server",
    url: etcdUrl,
    unavailable: etcdUnavailable,
    fuzzScale: 0.01,
    place: () => etcdPlace(etcdUrl),
    secured: {
      url: securedEtcdUrl,
      user: "poison",
      caParam: "ca",
      place: () => etcdPlace(securedEtcdUrl),
    },
  },
} satisfies Record<string, BackendSpec>;

export type BackendName = keyof typeof REGISTRY;
/** A secured twin's name. */
export type SecuredName = `${BackendName}-tls`;

export interface Backend extends BackendSpec {
  name: BackendName;
}

/** Every backend, in report order, whether BACKENDS selects it or not. */
export const ALL_BACKENDS: readonly Backend[] = Object.entries(REGISTRY).map(([name, spec]) => ({
  name: name as BackendName,
  ...(spec as BackendSpec),
}));

/** Every name a test may report: each backend, then each secured twin. */
export const ALL_NAMES: readonly string[] = [
  ...ALL_BACKENDS.map((b) => b.name),
  ...ALL_BACKENDS.filter((b) => b.secured).map((b) => `${b.name}-tls`),
];

/** The backends BACKENDS selects (all by default), in report order. */
export function selectedBackends(): Backend[] {
  return ALL_BACKENDS.filter((backend) => isSelected(backend.name));
}

export function backend(name: BackendName): Backend {
  return { name, ...(REGISTRY[name] as BackendSpec) };
}

/** The conformance suite's harness for a backend or its secured twin, on a fresh place. */
export function conformanceHarness(name: BackendName | SecuredName): DriverHarness {
  const { here, unavailable, teardown } = lazyPlace(name);
  return {
    name,
    durable: true, // every backend here keeps what a closed store wrote (memory: in-process)
    ...(unavailable ? { unavailable } : {}),
    open: (options) => here().open(options),
    teardown,
  };
}

/** The guard suite's harness for a backend, on a fresh place. */
export function guardHarness(name: BackendName): GuardHarness {
  const { here, unavailable, teardown } = lazyPlace(name);
  return {
    name,
    ...(unavailable ? { unavailable } : {}),
    driver: () => here().driver(),
    teardown,
  };
}

/** A harness's place, made on its first use (a suite that is skipped makes none), and a
 *  teardown of the place if one was made. */
function lazyPlace(name: BackendName | SecuredName): {
  here(): Place;
  unavailable?: () => Promise<string | null>;
  teardown(): Promise<void>;
} {
  const { place, unavailable } = resolve(name);
  let current: Place | null = null;
  return {
    here: () => {
      current ??= place();
      return current;
    },
    ...(unavailable ? { unavailable } : {}),
    teardown: async () => current?.teardown(),
  };
}

function resolve(name: BackendName | SecuredName): {
  place(): Place;
  unavailable?: () => Promise<string | null>;
} {
  const secured = name.endsWith("-tls");
  const entry = backend(name.replace(/-tls$/, "") as BackendName);
  if (!secured) {
    return {
      place: () => entry.place(),
      ...(entry.unavailable ? { unavailable: entry.unavailable } : {}),
    };
  }
  const twin = entry.secured;
  if (!twin) throw new Error(`${entry.name} has no secured twin in the registry`);
  return { place: () => twin.place(), unavailable: () => securedUnavailable(twin.url) };
}

/** Redis: a key prefix of its own (one hash slot), deleted key by key afterwards. */
function redisPlace(url: string): Place {
  const keyPrefix = `{poison-test-${randomUUID()}}:`;
  return serverPlace(
    url,
    (driverUrl) => redisDriver({ url: driverUrl, keyPrefix }),
    false,
    async () => {
      const { Redis } = await import("ioredis");
      // ioredis does not read ca/cert/key from the URL: the secured server gets them as options.
      const secured = url.startsWith("rediss:");
      const redis = secured
        ? new Redis(withParams(url, { ca: null, cert: null, key: null }), {
            tls: {
              ca: readFileSync(tlsFiles.ca),
              cert: readFileSync(tlsFiles.cert),
              key: readFileSync(tlsFiles.key),
            },
          })
        : new Redis(url);
      try {
        const keys = await redis.keys(`${keyPrefix.replace(/[*?[\]\\]/g, "\\$&")}*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        await redis.quit();
      }
    },
  );
}

/** etcd: a meta prefix of its own; the teardown deletes every poison key a record under it
 *  names, then the prefix (through the driver's gateway, as the test user on a secured server). */
function etcdPlace(url: string): Place {
  const metaPrefix = `/poison-test-meta/${randomUUID()}/`;
  return serverPlace(
    url,
    (driverUrl) => etcdDriver({ url: driverUrl, metaPrefix }),
    false,
    () => deleteEtcdRun(url, metaPrefix),
  );
}

/** Deletes what a run wrote under `metaPrefix`, and only that (other runs may share the server):
 *  every poison key a record under it names, then the prefix itself. */
export async function deleteEtcdRun(url: string, metaPrefix: string): Promise<void> {
  const gateway = createEtcdGateway(parseEtcdLocation({ url }), { requestTimeoutMs: 4000 });
  const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
  try {
    const recordPrefix = `${metaPrefix}record/`;
    const reply = await gateway.post("/v3/kv/range", {
      key: b64(recordPrefix),
      range_end: b64(`${metaPrefix}record0`),
      keys_only: true,
    });
    const keys = ((reply.kvs as Array<{ key: string }> | undefined) ?? []).map((kv) =>
      Buffer.from(kv.key, "base64").toString("utf8").slice(recordPrefix.length),
    );
    // 40 per transaction: under etcd's default --max-txn-ops (128).
    for (let i = 0; i < keys.length; i += 40) {
      await gateway.post("/v3/kv/txn", {
        success: keys.slice(i, i + 40).map((key) => ({ request_delete_range: { key: b64(key) } })),
      });
    }
    await gateway.post("/v3/kv/deleterange", {
      key: b64(metaPrefix),
      range_end: b64(`${metaPrefix.slice(0, -1)}0`),
    });
  } finally {
    await gateway.close();
  }
}
