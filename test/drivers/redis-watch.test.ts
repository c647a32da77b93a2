/**
 * The Redis driver's native change feed (store.watch, docs/OBSERVABILITY.md "The native feed
 * contract"): a stream appended by the same script as each change, read with XREAD BLOCK on a
 * dedicated connection. Beyond the conformance suite (test/drivers/redis.test.ts runs it with
 * source "native"): resuming from a position, `resync` after the stream was trimmed and after a
 * restart of a private redis-server (no persistence: the stream is lost), the connection released
 * on abort, no key created by a watch, bursts of concurrent changes, and the delay measured.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import {
  type ChangeEvent,
  type DriverWatchEvent,
  openPoisonStore,
  type PoisonDriver,
  redisDriver,
} from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { WatchLog } from "../conformance/watch.js";
import { redisUnavailable, redisUrl } from "../support/servers.js";
import { type PrivateRedis, startPrivateRedis } from "./redis-private.js";

const skip = await backendSkipReason("redis", redisUnavailable);
const NS = "/__procedure_poison/";

/** The driver's feed read in the background: its events, and a way to wait for some. */
class FeedLog {
  readonly events: DriverWatchEvent[] = [];
  readonly controller = new AbortController();
  readonly done: Promise<unknown>;
  failure: unknown = null;

  constructor(driver: PoisonDriver, prefix: string, from: string | null) {
    const feed = driver.watch?.({ prefix, from, signal: this.controller.signal });
    assert.ok(feed, "the redis driver has a native feed");
    this.done = (async () => {
      try {
        for await (const event of feed) this.events.push(event);
      } catch (error) {
        this.failure = error;
      }
    })();
  }

  async until(count: number, ms = 5000): Promise<DriverWatchEvent[]> {
    const deadline = Date.now() + ms;
    while (this.events.length < count) {
      if (this.failure) throw this.failure;
      assert.ok(Date.now() < deadline, `only ${JSON.stringify(this.events)} within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.events;
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}

const positionOf = (event: DriverWatchEvent | undefined) => {
  assert.ok(event && "position" in event);
  return event.position;
};

describe("redis native watch", { skip: skip ?? false }, () => {
  const keyPrefix = `{poison-watch-${randomUUID()}}:`;
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
    const admin = new Redis(redisUrl);
    const keys = await admin.keys(`${keyPrefix.replace(/[*?[\]\\]/g, "\\$&")}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });
  const open = (prefix = keyPrefix) => {
    const driver = redisDriver({ url: redisUrl, keyPrefix: prefix });
    const store = openPoisonStore(redisDriver({ url: redisUrl, keyPrefix: prefix }));
    cleanup.push(
      () => store.close(),
      () => driver.close(),
    );
    return { driver, store };
  };

  it("store.watch is native, and sees a burst of concurrent changes once each, in order per key", async () => {
    const { store } = open();
    const prefix = `burst/${randomUUID()}/`;
    const log = new WatchLog(store, prefix);
    try {
      assert.equal(log.stream.source, "native");
      assert.equal(await log.stream.ready, true);
      const keys = Array.from({ length: 40 }, (_, i) => `${prefix}${i}`);
      await Promise.all(
        keys.map(async (key) => {
          await store.tryPutPoison(key, "t");
          await store.touchPoisons([key], "t");
          await store.deletePoison(key, "t");
        }),
      );
      await log.next(
        (e) => e.type === "deleted" && log.of(e.key).length === 3 && e.key === keys[39],
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const key of keys) assert.deepEqual(log.of(key), ["put", "touched", "deleted"], key);
      const deleted = log.events.find((e) => e.type === "deleted") as ChangeEvent;
      assert.equal(deleted.record?.token, "t", "a delete carries the record removed");
      assert.ok(!log.events.some((e) => e.type === "resync"));
    } finally {
      log.stop();
      await log.done;
    }
  });

  it("resumes from a position: exactly the changes after it, with their records", async () => {
    const { driver, store } = open();
    await driver.init({ create: false });
    const prefix = `${NS}resume/${randomUUID()}/`;
    const first = new FeedLog(driver, prefix, null);
    const [ready] = await first.until(1);
    assert.equal(ready?.type, "ready");
    await store.tryPutPoison(`resume-a`, "t"); // another prefix: not ours
    const key = `${prefix.slice(NS.length)}k`;
    await store.tryPutPoison(key, "t1", { operation: "op" });
    const [, put] = await first.until(2);
    assert.equal(put?.type, "put");
    await first.stop();
    // While nobody watches: three more changes.
    await store.markPoisoned(key, "t1", new Error("half"));
    await store.forceDeletePoison(key, { actor: "olga", reason: "fixed" });
    await store.tryPutPoison(key, "t2");
    const second = new FeedLog(driver, prefix, positionOf(put));
    const events = await second.until(4);
    await second.stop();
    assert.deepEqual(
      events.map((e) => e.type),
      ["ready", "poisoned", "force-deleted", "put"],
    );
    const [, poisoned, forced, again] = events as Array<DriverWatchEvent & { key: string }>;
    assert.equal(poisoned?.key, NS + key);
    assert.equal(
      (poisoned as { record?: { error?: { message: string } } }).record?.error?.message,
      "half",
    );
    assert.equal((forced as { record?: { token: string } }).record?.token, "t1");
    assert.match((forced as { at?: string }).at ?? "", /Z$/);
    assert.equal((again as { record?: { token: string } }).record?.token, "t2");
    await store.deletePoison(key, "t2");
    await store.deletePoison("resume-a", "t");
  });

  it("resync when the position was trimmed away; never a silent gap", async () => {
    const prefix = `{poison-watch-trim-${randomUUID()}}:`;
    const { driver, store } = open(prefix);
    cleanup.push(async () => {
      const admin = new Redis(redisUrl);
      await admin.del(`${prefix}changes`, `${prefix}index`);
      await admin.quit();
    });
    await driver.init({ create: false });
    // An empty stream: the position names no entry ("0-0").
    const empty = new FeedLog(driver, NS, null);
    const [fromNothing] = await empty.until(1);
    await empty.stop();
    await store.tryPutPoison("k", "t");
    // Still resumable: nothing was trimmed, the change is delivered.
    const resumed = new FeedLog(driver, NS, positionOf(fromNothing));
    const afterNothing = await resumed.until(2);
    await resumed.stop();
    assert.deepEqual(
      afterNothing.map((e) => e.type),
      ["ready", "put"],
    );
    // Other writers fill the stream past its bound: the oldest entries are trimmed.
    const admin = new Redis(redisUrl);
    cleanup.push(() => admin.quit());
    for (let batch = 0; batch < 11; batch++) {
      const pipeline = admin.pipeline();
      for (let i = 0; i < 1000; i++) {
        pipeline.xadd(`${prefix}changes`, "MAXLEN", "~", "10000", "*", "k", "/other/x", "t", "put");
      }
      await pipeline.exec();
    }
    for (const from of [positionOf(fromNothing), positionOf(afterNothing[1])]) {
      const late = new FeedLog(driver, NS, from);
      const [first] = await late.until(1);
      assert.equal(first?.type, "resync", `from ${from}`);
      await store.tryPutPoison("k2", "t");
      const events = await late.until(2);
      await late.stop();
      assert.equal(events[1]?.type, "put", "after the resync, changes follow from now");
      await store.deletePoison("k2", "t");
    }
    await store.deletePoison("k", "t");
  });

  it("a watch creates no key, and costs one blocked XREAD per 10 s while idle", async () => {
    const prefix = `{poison-watch-idle-${randomUUID()}}:`;
    const { store } = open(prefix);
    const admin = new Redis(redisUrl);
    cleanup.push(() => admin.quit());
    const log = new WatchLog(store, "");
    assert.equal(await log.stream.ready, true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(await admin.keys(`${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`), []);
    log.stop();
    await log.done;
  });
});

describe("redis native watch across a restart (private server, no persistence)", {
  skip: skip ?? false,
}, () => {
  let server: PrivateRedis;
  before(async () => {
    server = await startPrivateRedis();
  });
  after(async () => {
    await server?.stop();
  });

  it("after a restart the watch emits resync, then follows the new server", async () => {
    const store = openPoisonStore(redisDriver({ url: server.url, commandTimeoutMs: 700 }), {
      timeoutMs: 1000,
    });
    const errors: unknown[] = [];
    const controller = new AbortController();
    const events: ChangeEvent[] = [];
    const stream = store.watch({ signal: controller.signal, onError: (e) => errors.push(e) });
    const done = (async () => {
      for await (const event of stream) events.push(event);
    })();
    const until = async (match: (e: ChangeEvent) => boolean, ms = 10_000) => {
      const deadline = Date.now() + ms;
      while (!events.some(match)) {
        assert.ok(Date.now() < deadline, `saw ${JSON.stringify(events.map((e) => e.type))}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    try {
      assert.equal(stream.source, "native");
      assert.equal(await stream.ready, true);
      await store.tryPutPoison("before", "t");
      await until((e) => e.type === "put" && e.key === "before");
      await server.restart();
      // The store's client reconnects within a second or so; the watch retries with backoff.
      let written = false;
      for (let i = 0; !written; i++) {
        try {
          await store.tryPutPoison("after", "t");
          written = true;
        } catch {
          assert.ok(i < 100, "the store never came back");
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await until((e) => e.type === "resync");
      // A change made after the watch is back is delivered; one made before it reconnected is
      // covered by the resync (the consumer re-lists).
      await store.tryPutPoison("later", "t");
      await until((e) => e.type === "put" && e.key === "later");
      const resync = events.findIndex((e) => e.type === "resync");
      assert.ok(resync > events.findIndex((e) => e.key === "before"), "resync after the restart");
      assert.ok(errors.length >= 1, "the disconnect was reported to onError");
    } finally {
      controller.abort();
      await done;
      await store.close();
    }
  });

  it("aborting releases the dedicated connection", async () => {
    const admin = new Redis(server.url);
    const store = openPoisonStore(redisDriver({ url: server.url }));
    try {
      await store.getPoison("warm-up");
      const clients = async () =>
        String(await admin.client("LIST"))
          .trim()
          .split("\n").length;
      const idle = await clients();
      const controller = new AbortController();
      const stream = store.watch({ signal: controller.signal });
      const done = (async () => {
        for await (const _ of stream) {
          // nothing happens
        }
      })();
      assert.equal(await stream.ready, true);
      assert.equal(await clients(), idle + 1, "one dedicated connection while watching");
      controller.abort();
      await done;
      const deadline = Date.now() + 2000;
      while ((await clients()) !== idle) {
        assert.ok(Date.now() < deadline, "the watch's connection is still open");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await store.close();
      admin.disconnect();
    }
  });
});
