/**
 * The PostgreSQL native watch (LISTEN/NOTIFY + change log, src/drivers/postgres/watch.ts) beyond
 * the conformance suite: it creates nothing on a database never written; across a restart of a
 * PRIVATE server (initdb + pg_ctl in a temp dir, never the shared one) no change is lost, those
 * made while it was away included; a log trimmed past its position yields `resync`; and the
 * delay from change to event, measured.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { postgresTables } from "../../src/drivers/postgres/statements.js";
import { NOTIFY_SPACING_MS } from "../../src/drivers/postgres/watch.js";
import {
  type ChangeEvent,
  openPoisonStore,
  type PoisonStoreError,
  postgresDriver,
} from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { WatchLog } from "../conformance/watch.js";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.js";
import { freePort, userIds } from "../support/private-server.js";
import { postgresUnavailable, postgresUrl } from "../support/servers.js";

const BIN = "/usr/lib/postgresql/15/bin";
const skip = await backendSkipReason("postgres", postgresUnavailable);

const suffix = () => randomUUID().replaceAll("-", "").slice(0, 12);
const tablesFor = (id: string) => ({
  table: `poison_w_${id}`,
  auditTable: `poison_w_audit_${id}`,
  changesTable: `poison_w_changes_${id}`,
});

async function dropTables(url: string, tables: ReturnType<typeof tablesFor>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `DROP TABLE IF EXISTS "${tables.table}", "${tables.auditTable}", "${tables.changesTable}"`,
    );
  } finally {
    await client.end();
  }
}

test(
  "postgres watch: on a database never written it creates nothing, then sees the first write",
  skip ? { skip } : {},
  async () => {
    const tables = tablesFor(suffix());
    const store = openPoisonStore(postgresDriver({ url: postgresUrl, ...tables }));
    const log = new WatchLog(store, "");
    try {
      assert.equal(log.stream.source, "native");
      assert.equal(await log.stream.ready, true);
      const admin = new pg.Client({ connectionString: postgresUrl });
      await admin.connect();
      const { rows } = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_class WHERE relname = ANY($1)",
        [Object.values(tables)],
      );
      await admin.end();
      assert.equal(rows[0]?.n, 0, "a watch created a table");
      await store.tryPutPoison("first", "t1");
      const put = await log.next((e) => e.type === "put" && e.key === "first");
      assert.equal(put.record?.token, "t1");
    } finally {
      log.stop();
      await log.done;
      await store.close();
      await dropTables(postgresUrl, tables);
    }
  },
);

// ---- a private server --------------------------------------------------------------------

interface PrivateServer {
  url: string;
  port: number;
  stop(): void;
  start(): void;
  remove(): void;
}

function privateServerSkip(): string | null {
  if (!existsSync(join(BIN, "initdb"))) return `no ${BIN}/initdb`;
  if (process.getuid?.() !== 0) return "needs root to run initdb as user postgres";
  if (!existsSync("/usr/sbin/runuser")) return "no runuser";
  return null;
}

async function startPrivateServer(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), "poison-pg-watch-"));
  const { uid, gid } = userIds("postgres");
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  const asPostgres = (command: string, args: string[]) =>
    execFileSync("runuser", ["-u", "postgres", "--", join(BIN, command), ...args], {
      stdio: "pipe",
      timeout: 60_000,
    });
  asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c autovacuum=off`;
  const start = () =>
    asPostgres("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => asPostgres("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]),
    start,
    remove() {
      try {
        asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test(
  "postgres: a busy writer's NOTIFYs are spaced, its last change is still announced, and close() does not wait out the spacing",
  skip ? { skip } : {},
  async () => {
    const tables = tablesFor(suffix());
    const listener = new pg.Client({ connectionString: postgresUrl });
    await listener.connect();
    const heard: number[] = [];
    listener.on("notification", () => heard.push(performance.now()));
    await listener.query(`LISTEN ${postgresTables(tables).channel}`);
    const store = openPoisonStore(postgresDriver({ url: postgresUrl, ...tables }));
    let closed = false;
    try {
      await store.tryPutPoison("warm", "t");
      await store.deletePoison("warm", "t");
      await new Promise((resolve) => setTimeout(resolve, 5 * NOTIFY_SPACING_MS));
      heard.length = 0;
      const start = performance.now();
      const writes = 60;
      for (let i = 0; i < writes / 2; i++) {
        await store.tryPutPoison(`burst/${i}`, "t");
        await store.deletePoison(`burst/${i}`, "t");
      }
      const lastWrite = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 5 * NOTIFY_SPACING_MS));
      // One NOTIFY at once, then at most one per spacing (one per write before the spacing).
      const allowed = Math.ceil((lastWrite - start) / NOTIFY_SPACING_MS) + 2;
      assert.ok(heard.length >= 1, "the burst was announced");
      assert.ok(
        heard.length <= Math.min(allowed, writes / 2),
        `${heard.length} NOTIFYs for ${writes} writes in ${Math.round(lastWrite - start)} ms`,
      );
      assert.ok((heard.at(-1) as number) >= lastWrite, "a NOTIFY followed the last write");

      // Two writes in a row: the second's NOTIFY waits out the spacing, and close() sends it
      // at once instead of waiting.
      heard.length = 0;
      await store.tryPutPoison("closing", "t");
      await store.deletePoison("closing", "t");
      const closeStart = performance.now();
      await store.close();
      closed = true;
      assert.ok(performance.now() - closeStart < 1_000, "close() returned promptly");
      await new Promise((resolve) => setTimeout(resolve, 5 * NOTIFY_SPACING_MS));
      assert.ok(heard.length >= 1, "the writes before close() were announced");
    } finally {
      if (!closed) await store.close();
      await listener.end();
      await dropTables(postgresUrl, tables);
    }
  },
);

const privateSkip = skip ?? privateServerSkip();

describe("postgres watch on a private server", privateSkip ? { skip: privateSkip } : {}, () => {
  let server: PrivateServer;
  let proxy: FaultProxy;
  before(async () => {
    server = await startPrivateServer();
    proxy = await startFaultProxy({ host: "127.0.0.1", port: server.port });
  });
  after(async () => {
    await proxy?.close();
    server?.remove();
  });

  /** The watcher reaches the server through the proxy (to keep it away at will); the writer
   *  directly. */
  const open = (through: "proxy" | "direct", errors?: PoisonStoreError[]) => {
    const url =
      through === "proxy" ? `postgres://postgres@127.0.0.1:${proxy.port}/postgres` : server.url;
    // The watcher gives up fast on a server that went away; the writer's batches of a thousand
    // keys take seconds on a loaded machine.
    const ms = through === "proxy" ? 2000 : 60_000;
    const store = openPoisonStore(
      postgresDriver({ url, connectTimeoutMs: 1000, queryTimeoutMs: ms }),
      { timeoutMs: ms + 1000, namespace: "/w/" },
    );
    return { store, errors: errors ?? [] };
  };

  const watching = (
    store: ReturnType<typeof openPoisonStore>,
    prefix: string,
    errors: PoisonStoreError[],
  ) => {
    const controller = new AbortController();
    const events: ChangeEvent[] = [];
    const stream = store.watch({
      prefix,
      signal: controller.signal,
      onError: (error) => errors.push(error),
    });
    const done = (async () => {
      for await (const event of stream) events.push(event);
    })();
    const until = async (match: (events: ChangeEvent[]) => boolean, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!match(events)) {
        if (Date.now() > deadline)
          throw new Error(
            `timed out; saw ${JSON.stringify(events.map((e) => `${e.type} ${e.key}`))}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    return { stream, events, done, until, stop: () => controller.abort() };
  };

  test("a server restart loses no change: those made while the watch was away arrive after", async () => {
    const writer = open("direct").store;
    const errors: PoisonStoreError[] = [];
    const watcher = open("proxy", errors).store;
    const prefix = `restart-${suffix()}/`;
    await writer.tryPutPoison(`${prefix}a`, "ta"); // creates the tables
    const watch = watching(watcher, prefix, errors);
    try {
      assert.equal(watch.stream.source, "native");
      assert.equal(await watch.stream.ready, true);
      await writer.tryPutPoison(`${prefix}b`, "tb");
      await watch.until((events) => events.some((e) => e.key === `${prefix}b`));

      // The watch loses its server: the proxy refuses it, and the server restarts.
      proxy.mode = "reset";
      proxy.resetAll();
      server.stop();
      server.start();
      await watch.until(() => errors.length > 0);
      // Changes while the watch is away (the writer reconnects by itself).
      await writer.markPoisoned(`${prefix}a`, "ta", new Error("half-applied"));
      await writer.deletePoison(`${prefix}b`, "tb");
      await writer.tryPutPoison(`${prefix}c`, "tc");
      await writer.forceDeletePoison(`${prefix}a`, { actor: "olga", reason: "repaired" });
      const seenWhileAway = watch.events.length;
      proxy.mode = "pass";
      await watch.until((events) => events.some((e) => e.type === "force-deleted"));
      assert.equal(seenWhileAway, 1, "nothing arrived while the watch was away");
      const summary = watch.events.map((e) => `${e.type} ${e.key.slice(prefix.length)}`);
      assert.deepEqual(summary, ["put b", "poisoned a", "deleted b", "put c", "force-deleted a"]);
      assert.ok(errors.length > 0, "the outage was reported to onError");
    } finally {
      proxy.mode = "pass";
      watch.stop();
      await watch.done;
      await watcher.close();
      await writer.close();
    }
  });

  test("a log trimmed past the watch's position yields resync, then the watch goes on", async () => {
    const writer = open("direct").store;
    const errors: PoisonStoreError[] = [];
    const watcher = open("proxy", errors).store;
    const prefix = `trim-${suffix()}/`;
    await writer.tryPutPoison(`${prefix}first`, "t");
    const watch = watching(watcher, prefix, errors);
    try {
      assert.equal(await watch.stream.ready, true);
      await writer.tryPutPoison(`${prefix}seen`, "t");
      await watch.until((events) => events.some((e) => e.key === `${prefix}seen`));
      proxy.mode = "reset";
      proxy.resetAll();
      await watch.until(() => errors.length > 0);
      // Twelve batches of a thousand puts: more than the log keeps; each batch triggers a trim.
      for (let batch = 0; batch < 12; batch++) {
        const keys = Array.from({ length: 1000 }, (_, i) => `${prefix}bulk/${batch}/${i}`);
        await writer.tryPutPoisons(keys, "bulk");
        // Let the background trim of this batch finish before the next one starts.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await writer.close(); // waits for a trim in flight
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      const { rows } = await admin.query<{ n: number; horizons: number }>(
        "SELECT count(*)::int AS n, count(*) FILTER (WHERE type = 'horizon')::int AS horizons FROM poison_changes",
      );
      await admin.end();
      // 12,002 changes written; the trim keeps the newest 10,000 (and what came after the last
      // trim: one batch at most) plus its horizon row.
      assert.ok((rows[0]?.n ?? 0) <= 11_001, `the log was not trimmed: ${rows[0]?.n} rows`);
      assert.equal(rows[0]?.horizons, 1, "one horizon row");
      proxy.mode = "pass";
      await watch.until((events) => events.some((e) => e.type === "resync"));
      const after = open("direct").store;
      await after.tryPutPoison(`${prefix}later`, "t");
      await watch.until((events) => events.some((e) => e.key === `${prefix}later`));
      await after.close();
    } finally {
      proxy.mode = "pass";
      watch.stop();
      await watch.done;
      await watcher.close();
    }
  });

  test("delay from change to event (reported, bounded)", async () => {
    const writer = open("direct").store;
    const watcher = open("direct").store;
    const prefix = `delay-${suffix()}/`;
    await writer.tryPutPoison(`${prefix}warm`, "t");
    const log = new WatchLog(watcher, prefix);
    try {
      assert.equal(await log.stream.ready, true);
      const fromCall: number[] = [];
      const fromAck: number[] = [];
      for (let i = 0; i < 40; i++) {
        const key = `${prefix}k${i}`;
        const started = performance.now();
        await writer.tryPutPoison(key, "t");
        const acked = performance.now();
        await log.next((e) => e.key === key);
        const seen = performance.now();
        fromCall.push(seen - started);
        fromAck.push(seen - acked);
      }
      const stats = (values: number[]) => {
        const sorted = [...values].sort((a, b) => a - b);
        const at = (q: number) =>
          sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
        return `p50 ${at(0.5)?.toFixed(1)} ms, p99 ${at(0.99)?.toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms`;
      };
      console.log(`postgres watch delay, from the write's call: ${stats(fromCall)}`);
      console.log(`postgres watch delay, after the write resolved: ${stats(fromAck)}`);
      assert.ok(Math.max(...fromAck) < 2000, "an event took more than 2 s");
    } finally {
      log.stop();
      await log.done;
      await watcher.close();
      await writer.close();
    }
  });
});
