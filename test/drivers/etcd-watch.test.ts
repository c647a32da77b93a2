/**
 * The etcd driver's native change feed beyond the conformance suite: across a restart of the
 * server (a PRIVATE etcd, own data dir and ports, killed and started again: the shared one is
 * never touched), after a compaction (`resync`, never a silent gap), with auth tokens that
 * expire between two streams, and its delay and idle cost, measured.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type ChangeEvent,
  type DriverWatchEvent,
  type DriverWatchQuery,
  type EtcdTransport,
  etcdDriver,
  openPoisonStore,
  type PoisonDriver,
  type PoisonStoreClient,
} from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { WatchLog } from "../conformance/watch.js";
import { startFaultProxy } from "../support/fault-proxy.js";
import { freePort, type PrivateProcess, startPrivateEtcd } from "../support/private-server.js";
import {
  etcdEndpoint,
  etcdUnavailable,
  etcdUrl,
  securedEtcdUrl,
  securedUnavailable,
} from "../support/servers.js";

const etcdBinary = spawnSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" }).stdout.trim();

/** One private etcd member: its data dir survives `kill()`, so `start()` brings the same
 *  history back. */
class PrivateEtcd {
  readonly dir = mkdtempSync(join(tmpdir(), "poison-etcd-watch-"));
  clientPort = 0;
  peerPort = 0;
  #child: PrivateProcess | null = null;

  get url(): string {
    return `etcd://127.0.0.1:${this.clientPort}`;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  async start(): Promise<void> {
    if (this.clientPort === 0) {
      this.clientPort = await freePort();
      this.peerPort = await freePort();
    }
    this.#child = await startPrivateEtcd({
      name: "watch-test",
      dataDir: join(this.dir, "data"),
      clientPort: this.clientPort,
      peerPort: this.peerPort,
      timeoutMs: 20_000,
    });
  }

  /** SIGKILL: no clean shutdown, as a crash. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    await child?.kill();
  }

  async post(path: string, body: object): Promise<Record<string, unknown>> {
    const response = await fetch(`${this.endpoint}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as Record<string, unknown>;
  }

  async revision(): Promise<string> {
    const reply = await this.post("/v3/kv/range", { key: "AA==", count_only: true });
    return (reply.header as { revision: string }).revision;
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function feedOf(driver: PoisonDriver, query: DriverWatchQuery): AsyncIterable<DriverWatchEvent> {
  assert.ok(driver.watch, "the etcd driver has a native feed");
  return driver.watch(query);
}

/** Collect a driver feed's events until `until` says stop (or 10 s pass). */
async function collect(
  feed: AsyncIterable<DriverWatchEvent>,
  controller: AbortController,
  until: (events: DriverWatchEvent[]) => boolean,
): Promise<DriverWatchEvent[]> {
  const events: DriverWatchEvent[] = [];
  const timer = setTimeout(() => controller.abort(), 10_000);
  try {
    for await (const event of feed) {
      events.push(event);
      if (until(events)) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

/** A feed of `prefix` from now, ended at its first event, which must be ready: its position. */
async function positionNow(driver: PoisonDriver, prefix: string): Promise<string> {
  const controller = new AbortController();
  const opened = await collect(
    feedOf(driver, { prefix, from: null, signal: controller.signal }),
    controller,
    (events) => events.length >= 1,
  );
  assert.equal(opened[0]?.type, "ready");
  return (opened[0] as { position: string }).position;
}

const privateSkip =
  etcdBinary === "" ? "no etcd binary on PATH (a private server is started)" : false;

describe("etcd watch: a private server killed and restarted", { skip: privateSkip }, () => {
  const server = new PrivateEtcd();
  const stores: PoisonStoreClient[] = [];
  const open = (namespace: string) => {
    const store = openPoisonStore(etcdDriver({ url: server.url, requestTimeoutMs: 1000 }), {
      namespace,
      timeoutMs: 2000,
    });
    stores.push(store);
    return store;
  };
  before(() => server.start());
  after(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
    await server.dispose();
  });

  it("loses no event across a crash of the server: every change once, in order, no resync", async () => {
    const namespace = `/watch-restart/${randomUUID()}/`;
    const writer = open(namespace);
    const watcher = open(namespace);
    const log = new WatchLog(watcher, "");
    try {
      assert.equal(log.stream.source, "native");
      assert.equal(await log.stream.ready, true);
      await writer.tryPutPoison("a", "t1");
      await writer.markPoisoned("a", "t1", new Error("half-applied"));
      await log.next((e) => e.type === "poisoned");
      await server.kill();
      await server.start();
      // Written at once after the restart, while the watch is still reconnecting (its backoff
      // starts at 100 ms): it resumes from the last revision it saw and replays them.
      await writer.deletePoison("a", "t1");
      await writer.tryPutPoison("b", "t2");
      await writer.touchPoisons(["b"], "t2");
      await writer.forceDeletePoison("b", { actor: "olga", reason: "after the restart" });
      await log.next((e) => e.type === "force-deleted" && e.key === "b", 15_000);
      assert.deepEqual(log.of("a"), ["put", "poisoned", "deleted"]);
      assert.deepEqual(log.of("b"), ["put", "touched", "force-deleted"]);
      assert.ok(!log.events.some((e) => e.type === "resync"), JSON.stringify(log.summary()));
    } finally {
      log.stop();
      await log.done;
    }
    assert.equal(log.failure, null);
  });

  it("a position etcd compacted away yields resync first, then watches from now", async () => {
    const namespace = `/watch-compact/${randomUUID()}/`;
    const writer = open(namespace);
    const driver = etcdDriver({ url: server.url });
    try {
      // A position, as a watch that went away would have kept it.
      const position = await positionNow(driver, namespace);
      await writer.tryPutPoison("lost", "t1");
      await writer.deletePoison("lost", "t1");
      await server.post("/v3/kv/compaction", { revision: await server.revision(), physical: true });

      const again = new AbortController();
      const resumed = feedOf(driver, { prefix: namespace, from: position, signal: again.signal });
      const events = collect(resumed, again, (seen) =>
        seen.some((e) => e.type === "put" && e.key === `${namespace}after`),
      );
      // Give the watch time to subscribe, then one change after the compaction.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await writer.tryPutPoison("after", "t2");
      const seen = await events;
      assert.equal(seen[0]?.type, "resync", JSON.stringify(seen));
      assert.ok(
        BigInt((seen[0] as { position: string }).position) > BigInt(position),
        "resync reports the current revision",
      );
      assert.deepEqual(
        seen.slice(1).map((e) => `${e.type} ${"key" in e ? e.key : ""}`),
        [`put ${namespace}after`],
        "no partial replay of the compacted history",
      );
    } finally {
      await driver.close();
    }
  });

  it("the store's watch, cut off while its history is compacted, yields resync and goes on", async () => {
    const namespace = `/watch-compact-store/${randomUUID()}/`;
    const writer = open(namespace);
    // The watcher reaches the server through a proxy, so its connection can be cut and held
    // down while the writer goes on and etcd compacts.
    const proxy = await startFaultProxy({ host: "127.0.0.1", port: server.clientPort });
    const watcher = openPoisonStore(etcdDriver({ url: `etcd://127.0.0.1:${proxy.port}` }), {
      namespace,
      timeoutMs: 2000,
    });
    stores.push(watcher);
    const errors: string[] = [];
    const controller = new AbortController();
    const stream = watcher.watch({
      signal: controller.signal,
      onError: (error) => errors.push(error.message),
    });
    const events: ChangeEvent[] = [];
    const reading = (async () => {
      for await (const event of stream) events.push(event);
    })();
    const until = async (match: (event: ChangeEvent) => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!events.some(match)) {
        assert.ok(Date.now() < deadline, `not seen: ${JSON.stringify(events)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    try {
      assert.equal(await stream.ready, true);
      await writer.tryPutPoison("k", "t1");
      await until((e) => e.type === "put" && e.key === "k");
      proxy.mode = "reset";
      proxy.resetAll();
      await writer.deletePoison("k", "t1");
      await server.post("/v3/kv/compaction", { revision: await server.revision(), physical: true });
      await new Promise((resolve) => setTimeout(resolve, 300)); // a reconnection or two fails
      proxy.mode = "pass";
      await until((e) => e.type === "resync");
      await writer.tryPutPoison("k2", "t2");
      await until((e) => e.type === "put" && e.key === "k2");
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.key}`),
        ["put k", "resync ", "put k2"],
        "the delete compacted away is not replayed: resync stands for it",
      );
      assert.ok(errors.length > 0, "the cut was reported through onError");
    } finally {
      controller.abort();
      await reading;
      await proxy.close();
    }
  });
});

const sharedSkip = await backendSkipReason("etcd", etcdUnavailable);

describe("etcd watch on the shared server", { skip: sharedSkip ?? false }, () => {
  it("a poison key written and deleted by another tool (GreptimeDB) is seen too", async () => {
    const namespace = `/watch-foreign/${randomUUID()}/`;
    const metaPrefix = `/poison-test-meta/${randomUUID()}/`;
    const store = openPoisonStore(etcdDriver({ url: etcdUrl, metaPrefix }), { namespace });
    const raw = async (path: string, body: object) => {
      const response = await fetch(`${etcdEndpoint}${path}`, {
        method: "POST",
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(response.status, 200);
    };
    const key = Buffer.from(`${namespace}table-1`).toString("base64");
    const log = new WatchLog(store, "");
    try {
      assert.equal(await log.stream.ready, true);
      await raw("/v3/kv/put", {
        key,
        value: Buffer.from('{"token":"greptime"}').toString("base64"),
      });
      const put = await log.next((e) => e.type === "put" && e.key === "table-1");
      assert.equal(put.record?.token, "greptime");
      assert.equal(put.record?.state, "poisoned", "no record: poisoned, as the driver reads it");
      await store.tryPutPoison("ours", "t");
      await raw("/v3/kv/deleterange", { key });
      await store.deletePoison("ours", "t");
      await log.next((e) => e.type === "deleted" && e.key === "ours");
      assert.deepEqual(log.of("table-1"), ["put", "deleted"]);
      assert.deepEqual(log.of("ours"), ["put", "deleted"]);
      assert.deepEqual(
        log.events.map((e) => e.key),
        ["table-1", "ours", "table-1", "ours"],
        "in commit order across keys",
      );
    } finally {
      log.stop();
      await log.done;
      await store.close();
    }
  });

  it("delay from a write's resolution to its event, and no request while idle", async () => {
    let requests = 0;
    const counting: EtcdTransport = (request, send) => {
      requests++;
      return send(request);
    };
    const namespace = `/watch-delay/${randomUUID()}/`;
    const metaPrefix = `/poison-test-meta/${randomUUID()}/`;
    const writer = openPoisonStore(etcdDriver({ url: etcdUrl, metaPrefix }), { namespace });
    const watcher = openPoisonStore(etcdDriver({ url: etcdUrl, metaPrefix, transport: counting }), {
      namespace,
    });
    const controller = new AbortController();
    const stream = watcher.watch({ signal: controller.signal });
    const seen = new Map<string, number>();
    const waiters = new Map<string, () => void>();
    const reading = (async () => {
      for await (const event of stream as AsyncIterable<ChangeEvent>) {
        if (event.type !== "put") continue;
        seen.set(event.key, performance.now());
        waiters.get(event.key)?.();
      }
    })();
    try {
      assert.equal(await stream.ready, true);
      const idleFrom = requests;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const idleRequests = requests - idleFrom;
      assert.equal(idleRequests, 0, "an idle native watch sends nothing");
      const delays: number[] = [];
      const sinceStart: number[] = [];
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 50));
        const key = `k${i}`;
        const arrived = new Promise<void>((resolve) => waiters.set(key, resolve));
        const startedAt = performance.now();
        await writer.tryPutPoison(key, "t");
        const resolvedAt = performance.now();
        await arrived;
        // Often negative: etcd sends the event before the writer has read its answer.
        delays.push((seen.get(key) as number) - resolvedAt);
        sinceStart.push((seen.get(key) as number) - startedAt);
      }
      delays.sort((a, b) => a - b);
      sinceStart.sort((a, b) => a - b);
      const p50 = delays[Math.floor(delays.length / 2)] as number;
      const max = delays.at(-1) as number;
      process.stderr.write(
        `etcd native watch: from the write's resolution p50 ${p50.toFixed(2)} ms, max ${max.toFixed(2)} ms; from its start p50 ${(sinceStart[10] as number).toFixed(2)} ms, max ${(sinceStart.at(-1) as number).toFixed(2)} ms (20 writes); ${idleRequests} requests in 3 s idle\n`,
      );
      assert.ok(max < 1000, `the slowest event took ${max} ms`);
      for (let i = 0; i < 20; i++) await writer.deletePoison(`k${i}`, "t");
    } finally {
      controller.abort();
      await reading;
      await writer.close();
      await watcher.close();
    }
  });
});

const securedSkip = await backendSkipReason("etcd-tls", () => securedUnavailable(securedEtcdUrl));

describe("etcd watch with TLS and auth", { skip: securedSkip ?? false }, () => {
  it("a new stream after the token expired logs in again (the server's token TTL is 2 s)", async () => {
    const namespace = `/watch-auth/${randomUUID()}/`;
    const metaPrefix = `/poison-test-meta/${randomUUID()}/`;
    const driver = etcdDriver({ url: securedEtcdUrl, metaPrefix });
    const store = openPoisonStore(etcdDriver({ url: securedEtcdUrl, metaPrefix }), { namespace });
    try {
      const position = await positionNow(driver, namespace);
      await new Promise((resolve) => setTimeout(resolve, 3000)); // the token expires
      await store.tryPutPoison("k", "t");
      const again = new AbortController();
      const seen = await collect(
        feedOf(driver, { prefix: namespace, from: position, signal: again.signal }),
        again,
        (events) => events.some((e) => e.type === "put"),
      );
      assert.deepEqual(
        seen.map((e) => e.type),
        ["ready", "put"],
      );
      await store.deletePoison("k", "t");
    } finally {
      await driver.close();
      await store.close();
    }
  });
});
