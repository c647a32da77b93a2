/**
 * Checks every networked SQL driver runs besides the conformance suite: the number of statements
 * and of network round trips each core call takes, and behaviour through an outage (a fault
 * proxy in front of the real server, never stopping the shared server itself).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  type AuditPage,
  BackendUnavailableError,
  PoisonConflictError,
  type PoisonStoreClient,
} from "../../src/index.js";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.js";
import { checkCloseDuringOutage, checkTightRetryLoop } from "./outage.js";
import { measureCorePaths } from "./round-trips.js";

export interface NetworkedHarness {
  name: string;
  /** Why the checks are skipped, or null to run them. */
  skip: string | null;
  /** The real server's URL; the proxy stands in front of its host and port. */
  url: string;
  /** The port when `url` names none. */
  defaultPort: number;
  /** A store whose driver counts the statements it sends (through `counter.statements`),
   *  reaching the server at `url` (the proxy's). */
  openCounting(url: string, counter: { statements: number }): PoisonStoreClient;
  /** A store on the real server using these table names. */
  openWithTables(tables: { table: string; auditTable: string }): PoisonStoreClient;
  /** Drop those tables (and whatever else the driver created for them). */
  dropTables(tables: { table: string; auditTable: string }): Promise<void>;
  /** A store through the proxy at `url` with the given bounds. */
  openThrough(
    url: string,
    bounds: { timeoutMs: number; clientTimeoutMs: number },
  ): PoisonStoreClient;
}

/** `url` with its host and port replaced: the same server reached through a proxy on `port`. */
function viaPort(url: string, port: number): string {
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(port);
  return proxied.toString();
}

/** `store`, whose close also runs `end` (the pool a test made for it) once the store is closed. */
export function closingAlso(
  store: PoisonStoreClient,
  end: () => Promise<unknown>,
): PoisonStoreClient {
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      await end();
    },
  });
}

/** The proxy's added latency per direction while measuring round trips. */
const DELAY_MS = 150;

export function networkedChecks(harness: NetworkedHarness): void {
  const options = harness.skip ? { skip: harness.skip } : {};
  const server = new URL(harness.url);
  const target = { host: server.hostname, port: Number(server.port || harness.defaultPort) };

  describe(`${harness.name}: tables`, options, () => {
    it("a fresh audit table: 12 entries come back newest first, page by page, none skipped", async () => {
      // Ids start at 1 in a fresh table, so they cross from 9 to 10: an audit ordered by the
      // id as text would put 10, 11, 12 after 9.
      const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
      const tables = {
        table: `poison_audit_order_${suffix}`,
        auditTable: `poison_ao_audit_${suffix}`,
      };
      const store = harness.openWithTables(tables);
      try {
        const keys = Array.from({ length: 12 }, (_, i) => `order/${String(i).padStart(2, "0")}`);
        for (const key of keys) {
          await store.tryPutPoison(key, "t", { audit: { actor: "test", reason: "order" } });
        }
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page: AuditPage = await store.auditLog({ limit: 5, ...(cursor ? { cursor } : {}) });
          seen.push(...page.entries.map((entry) => entry.key));
          cursor = page.cursor;
        } while (cursor);
        assert.deepEqual(seen, [...keys].reverse());
        const byKey = await store.auditLog({ key: "order/11" });
        assert.deepEqual(
          byKey.entries.map((entry) => entry.key),
          ["order/11"],
        );
      } finally {
        await store.close();
        await harness.dropTables(tables);
      }
    });

    it("eight stores creating fresh tables at once all succeed and share them", async () => {
      const suffix = randomUUID().replaceAll("-", "").slice(0, 12);
      const tables = { table: `poison_race_${suffix}`, auditTable: `poison_race_audit_${suffix}` };
      const stores = Array.from({ length: 8 }, () => harness.openWithTables(tables));
      try {
        const key = `init/${randomUUID()}`;
        const results = await Promise.allSettled(
          stores.map((store, i) => store.tryPutPoison(key, `t${i}`)),
        );
        const failures = results.filter((r) => r.status === "rejected");
        assert.ok(
          failures.every((r) => r.reason instanceof PoisonConflictError),
          `init raced: ${failures.map((r) => String(r.reason)).join("; ")}`,
        );
        assert.equal(failures.length, 7, "exactly one put wins on the fresh table");
        const holder = await stores[0]?.getPoison(key);
        for (const store of stores) assert.equal(await store.getPoison(key), holder);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
        await harness.dropTables(tables);
      }
    });
  });

  describe(`${harness.name}: one round trip per core call`, options, () => {
    let proxy: FaultProxy;
    let store: PoisonStoreClient;
    const counter = { statements: 0 };
    before(async () => {
      proxy = await startFaultProxy(target);
      store = harness.openCounting(viaPort(harness.url, proxy.port), counter);
    });
    after(async () => {
      await store.close();
      await proxy.close();
    });

    it("each tryPutPoison / deletePoison / getPoison path is one statement and one round trip", async () => {
      const key = `round-trip/${randomUUID()}`;
      // Warm up: create the tables and open the pooled connection with a write on another
      // key (reads never create tables); none of it counts.
      await store.tryPutPoison(`${key}/warm-up`, "warm-up");
      await store.deletePoison(`${key}/warm-up`, "warm-up");
      proxy.delayMs = DELAY_MS;
      const measured = await measureCorePaths(store, key, () => counter.statements);
      proxy.delayMs = 0;
      process.stderr.write(
        `${harness.name} round trips (proxy adds ${DELAY_MS} ms each way):\n${measured
          .map(({ label, count, ms }) => `  ${label}: ${count} statement(s), ${ms} ms\n`)
          .join("")}`,
      );
      for (const { label, count, ms } of measured) {
        assert.equal(count, 1, `${label}: ${count} statements`);
        // One round trip costs 2 × DELAY_MS through the proxy; two would cost at least 4 ×.
        assert.ok(ms < 3 * DELAY_MS, `${label}: ${ms} ms, more than one round trip`);
      }
      assert.equal(await store.getPoison(key), null);
    });
  });

  describe(`${harness.name}: outages`, options, () => {
    let proxy: FaultProxy;
    before(async () => {
      proxy = await startFaultProxy(target);
    });
    after(async () => {
      await proxy.close();
    });

    const TIMEOUT_MS = 1000;
    const everyCall = (store: PoisonStoreClient, key: string) => ({
      tryPutPoison: () => store.tryPutPoison(key, "other"),
      deletePoison: () => store.deletePoison(key, "other"),
      getPoison: () => store.getPoison(key),
      inspectPoison: () => store.inspectPoison(key),
      listPoisons: () => store.listPoisons(),
      markPoisoned: () => store.markPoisoned(key, "owner", new Error("x")),
      forceDeletePoison: () => store.forceDeletePoison(key, { actor: "a", reason: "r" }),
      auditLog: () => store.auditLog(),
      tryPutPoisons: () => store.tryPutPoisons([key, `${key}/2`], "other"),
      deletePoisons: () => store.deletePoisons([key], "other"),
    });

    const expectUnavailable = async (store: PoisonStoreClient, key: string, mode: string) => {
      const calls = Object.entries(everyCall(store, key));
      await Promise.all(
        calls.map(async ([name, call]) => {
          const started = performance.now();
          let caught: unknown;
          try {
            await call();
          } catch (error) {
            caught = error;
          }
          const elapsed = performance.now() - started;
          assert.ok(
            caught instanceof BackendUnavailableError,
            `${mode}: ${name} must reject with BackendUnavailableError, got ${String(caught)}`,
          );
          assert.equal(caught.backend, harness.name);
          assert.ok(caught.cause !== undefined, `${mode}: ${name}: the cause is attached`);
          assert.ok(elapsed < TIMEOUT_MS + 500, `${mode}: ${name} took ${Math.round(elapsed)} ms`);
        }),
      );
    };

    it("black-holed or reset: every call rejects in time; afterwards the same store works", async () => {
      const store = harness.openThrough(viaPort(harness.url, proxy.port), {
        timeoutMs: TIMEOUT_MS,
        clientTimeoutMs: 800,
      });
      const key = `outage/${randomUUID()}`;
      try {
        await store.tryPutPoison(key, "owner");

        proxy.mode = "blackhole";
        await expectUnavailable(store, key, "blackhole");

        proxy.mode = "reset";
        proxy.resetAll();
        await expectUnavailable(store, key, "reset");

        // Connections cut while idle in the pool must not be reused either.
        proxy.mode = "pass";
        await store.getPoison(key);
        proxy.resetAll();
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(await store.getPoison(key), "owner", "a reset idle connection is discarded");

        proxy.mode = "pass";
        assert.equal(await store.getPoison(key), "owner", "the same store works again");
        await assert.rejects(store.tryPutPoison(key, "other"), PoisonConflictError);
        await store.deletePoison(key, "owner");
        assert.equal(await store.getPoison(key), null);
      } finally {
        proxy.mode = "pass";
        await store.close();
      }
    });

    it("close() while the server is away releases the pool, in time", async () => {
      const store = harness.openThrough(viaPort(harness.url, proxy.port), {
        timeoutMs: TIMEOUT_MS,
        clientTimeoutMs: 800,
      });
      try {
        await checkCloseDuringOutage(store, proxy, TIMEOUT_MS);
      } finally {
        proxy.mode = "pass";
      }
    });

    it("a tight retry loop while the server is away never starves reconnection", async () => {
      const store = harness.openThrough(viaPort(harness.url, proxy.port), {
        timeoutMs: TIMEOUT_MS,
        clientTimeoutMs: 800,
      });
      try {
        await checkTightRetryLoop(store, proxy);
      } finally {
        proxy.mode = "pass";
        await store.close();
      }
    });

    it("a server that never answers the handshake: the first call rejects in time", async () => {
      proxy.mode = "blackhole";
      const store = harness.openThrough(viaPort(harness.url, proxy.port), {
        timeoutMs: TIMEOUT_MS,
        clientTimeoutMs: 800,
      });
      try {
        await expectUnavailable(store, `never/${randomUUID()}`, "blackhole from the start");
        proxy.mode = "pass";
        assert.equal(await store.getPoison(`never/${randomUUID()}`), null);
      } finally {
        proxy.mode = "pass";
        await store.close();
      }
    });
  });
}
