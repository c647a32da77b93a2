/**
 * SQLite's native change feed (store.watch() through the change log): every change type in
 * order with positions, back-to-back changes not coalesced, another process's writes seen,
 * resume from a position, `resync` once trimming removed the changes after it, and a watch on a
 * store never written creates nothing.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { DriverChange, DriverWatchEvent } from "../../src/core/watch.js";
import { SQLITE_CHANGE_LOG_KEEP, sqliteDriver } from "../../src/drivers/sqlite.js";
import { createPoisonStore, openPoisonStore } from "../../src/index.js";
import { WatchLog } from "../conformance/watch.js";
import { spawnTs } from "../support/child.js";

const CHILD = "test/fixtures/sqlite-child.ts";

/** Read a driver feed in the background until `count` changes arrived (after ready/resync). */
function readFeed(
  driver: ReturnType<typeof sqliteDriver>,
  prefix: string,
  from: string | null,
): {
  events: DriverWatchEvent[];
  until(match: (events: DriverWatchEvent[]) => boolean, ms?: number): Promise<void>;
  stop(): Promise<void>;
} {
  const controller = new AbortController();
  const events: DriverWatchEvent[] = [];
  const done = (async () => {
    for await (const event of driver.watch?.({ prefix, from, signal: controller.signal }) ?? [])
      events.push(event);
  })();
  return {
    events,
    async until(match, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!match(events)) {
        if (Date.now() > deadline)
          throw new Error(`timed out; saw ${JSON.stringify(events.map((e) => e.type))}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async stop() {
      controller.abort();
      await done;
    },
  };
}

const changes = (events: DriverWatchEvent[]) =>
  events.filter((e): e is DriverChange => e.type !== "ready" && e.type !== "resync");

describe("sqlite: the native change feed", () => {
  const dir = mkdtempSync(join(tmpdir(), "poison-watch-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is the store's source, and reports every change type in order with increasing positions", async () => {
    const store = openPoisonStore(`sqlite:${join(dir, "types.db")}`);
    const log = new WatchLog(store, "k/");
    try {
      assert.equal(log.stream.source, "native");
      assert.equal(await log.stream.ready, true);
      await store.tryPutPoison("k/a", "t");
      await store.touchPoisons(["k/a"], "t");
      await store.markPoisoned("k/a", "t", new Error("boom"));
      await store.forceDeletePoison("k/a", { actor: "op", reason: "repaired" });
      await store.tryPutPoison("k/b", "t");
      await store.deletePoison("k/b", "t");
      await store.tryPutPoison("other", "t");
      await log.next((e) => e.key === "k/b" && e.type === "deleted");
      assert.deepEqual(log.summary(), [
        "put k/a",
        "touched k/a",
        "poisoned k/a",
        "force-deleted k/a",
        "put k/b",
        "deleted k/b",
      ]);
      const poisoned = log.events[2];
      assert.equal(poisoned?.record?.state, "poisoned");
      assert.equal(poisoned?.record?.error?.message, "boom");
      assert.equal(log.events[5]?.record?.token, "t", "a delete carries the removed record");
    } finally {
      log.stop();
      await log.done;
      await store.close();
    }
  });

  it("reports back-to-back changes of one key one by one, and each position resumes after it", async () => {
    const path = join(dir, "positions.db");
    const driver = sqliteDriver({ path });
    const store = createPoisonStore(driver, { namespace: "/ns/" });
    await store.tryPutPoison("seed", "t");
    const feed = readFeed(driver, "/ns/", null);
    try {
      await feed.until((events) => events.length > 0);
      assert.equal(feed.events[0]?.type, "ready");
      for (let i = 0; i < 5; i++) {
        await store.tryPutPoison("k", `t${i}`);
        await store.deletePoison("k", `t${i}`);
      }
      await feed.until((events) => changes(events).length === 10);
      const seen = changes(feed.events);
      assert.deepEqual(
        seen.map((e) => `${e.type} ${e.record?.token}`),
        [0, 1, 2, 3, 4].flatMap((i) => [`put t${i}`, `deleted t${i}`]),
      );
      const positions = seen.map((e) => Number(e.position));
      assert.deepEqual(
        positions,
        positions.map((_, i) => (positions[0] as number) + i),
        "one position per change, in commit order",
      );
      // Resume from the fourth change: the six after it, nothing before.
      const resumed = readFeed(driver, "/ns/", seen[3]?.position ?? null);
      try {
        await resumed.until((events) => changes(events).length === 6);
        assert.deepEqual(resumed.events[0], { type: "ready", position: seen[3]?.position });
        assert.deepEqual(
          changes(resumed.events).map((e) => e.position),
          seen.slice(4).map((e) => e.position),
        );
      } finally {
        await resumed.stop();
      }
    } finally {
      await feed.stop();
      await store.close();
    }
  });

  it("sees another process's writes", async () => {
    const path = join(dir, "shared.db");
    const store = openPoisonStore(`sqlite:${path}`, { namespace: "/child/" });
    const log = new WatchLog(store, "");
    const writer = spawnTs(CHILD, ["writer", path]);
    try {
      assert.equal(await log.stream.ready, true);
      for (let acked = -1; acked < 4; ) {
        const match = /^ack (\d+)$/.exec(await writer.nextLine());
        assert.ok(match);
        acked = Number(match[1]);
      }
      const started = Date.now();
      await log.next((e) => e.key === "key-4");
      const delay = Date.now() - started;
      assert.deepEqual(
        log.summary().slice(0, 5),
        [0, 1, 2, 3, 4].map((i) => `put key-${i}`),
      );
      assert.ok(delay < 2000, `seen after ${delay} ms`);
    } finally {
      writer.process.kill("SIGKILL");
      await writer.exited;
      log.stop();
      await log.done;
      await store.close();
    }
  });

  it("yields resync for a position the trimmed log no longer covers", async () => {
    const path = join(dir, "trimmed.db");
    const driver = sqliteDriver({ path });
    const store = createPoisonStore(driver);
    await store.tryPutPoison("first", "t");
    const first = readFeed(driver, "", "0");
    await first.until((events) => changes(events).length === 1);
    await first.stop();
    const position = changes(first.events)[0]?.position ?? null;
    assert.equal(position, "1");
    // More changes than the log keeps, in batches of 1000 (one transaction each).
    const batches = Math.ceil((SQLITE_CHANGE_LOG_KEEP + 1000) / 1000);
    for (let b = 0; b < batches; b++) {
      const keys = Array.from({ length: 1000 }, (_, i) => `bulk/${b}/${i}`);
      await store.tryPutPoisons(keys, "t");
    }
    const late = readFeed(driver, "", position);
    try {
      await late.until((events) => events.length > 0);
      const head = late.events[0];
      assert.equal(head?.type, "resync", "never a silent gap");
      await store.tryPutPoison("after", "t");
      await late.until((events) =>
        changes(events).some((e) => e.key === "/__procedure_poison/after"),
      );
      assert.equal(changes(late.events).length, 1, "nothing replayed across the gap");
      // A position still in the log resumes.
      const recent = readFeed(driver, "", String(Number(head?.position) - 5));
      try {
        await recent.until((events) => changes(events).length >= 6);
        assert.equal(recent.events[0]?.type, "ready");
      } finally {
        await recent.stop();
      }
    } finally {
      await late.stop();
      await store.close();
    }
  });

  it("a watch on a store never written creates nothing, and sees the first write", async () => {
    const path = join(dir, "never.db");
    const reader = openPoisonStore(`sqlite:${path}`);
    const log = new WatchLog(reader, "");
    try {
      assert.equal(await log.stream.ready, true);
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal(existsSync(path), false, "the watch created no file");
      const writer = openPoisonStore(`sqlite:${path}`);
      await writer.tryPutPoison("k", "t");
      await log.next((e) => e.key === "k" && e.type === "put");
      await writer.close();
    } finally {
      log.stop();
      await log.done;
      await reader.close();
    }
  });
});
