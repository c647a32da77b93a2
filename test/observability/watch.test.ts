/**
 * The watch runtime (src/core/watch.ts) beyond what the conformance suite checks on every
 * backend: the generic path on memory, a native feed that disconnects (resumed from its last
 * position, or `resync` when it cannot be), fatal errors, the polling bound, force-deletes the
 * audit log can no longer vouch for, a consumer that falls behind, shared polling, and onCall.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BackendConfigurationError,
  type ChangeEvent,
  createPoisonStore,
  type DriverWatchEvent,
  type DriverWatchQuery,
  MAX_QUEUED_CHANGES,
  memoryDriver,
  openPoisonStore,
  type PoisonDriver,
  type PoisonStoreClient,
  type StoreCallEvent,
} from "../../src/index.js";
import { runSuite } from "../conformance/harness.js";
import { WatchLog, watch } from "../conformance/watch.js";

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A memory driver without its native feed: the store's watch() polls it. */
function pollingDriver(name?: string): PoisonDriver {
  const { watch: _native, ...driver } = memoryDriver(name === undefined ? {} : { name });
  return driver;
}

// The generic (polling) path on memory: the same behaviours as every backend's.
await runSuite(
  {
    name: "memory",
    durable: false,
    open: (options) => createPoisonStore(pollingDriver("watch-polling-suite"), options),
  },
  { "watch by polling, on memory (SPEC §7)": watch },
);

/**
 * A memory driver whose native feed fails after every `failEvery` events it yields (a
 * connection that drops), and counts the `from` positions it was asked to resume from.
 */
function flakyDriver(failEvery: number, name: string) {
  const inner = memoryDriver({ name });
  const resumedFrom: Array<string | null> = [];
  let open = 0;
  const driver: PoisonDriver = {
    ...inner,
    async *watch(query: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
      resumedFrom.push(query.from);
      open++;
      let yielded = 0;
      try {
        for await (const event of inner.watch?.(query) ?? []) {
          yield event;
          if (event.type !== "ready" && ++yielded >= failEvery) throw new Error("connection reset");
        }
      } finally {
        open--;
      }
    },
  };
  return { driver, resumedFrom, open: () => open };
}

describe("watch: a native feed that disconnects", () => {
  it("resumes from the last position it saw: every change once, in order", async () => {
    const flaky = flakyDriver(2, `flaky-${Math.random()}`);
    const store = createPoisonStore(flaky.driver);
    const errors: unknown[] = [];
    const controller = new AbortController();
    const changes = store.watch({ signal: controller.signal, onError: (e) => errors.push(e) });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of changes) seen.push(`${event.type} ${event.key}`);
    })();
    try {
      assert.equal(changes.source, "native");
      assert.equal(await changes.ready, true);
      for (let i = 0; i < 5; i++) {
        await store.tryPutPoison(`k/${i}`, "t");
        await store.markPoisoned(`k/${i}`, "t", new Error("x"));
        await settle(5);
      }
      const expected = [0, 1, 2, 3, 4].flatMap((i) => [`put k/${i}`, `poisoned k/${i}`]);
      for (let wait = 0; wait < 100 && seen.length < expected.length; wait++) await settle(20);
      assert.deepEqual(seen, expected, "nothing lost, nothing twice");
      assert.ok(errors.length >= 4, `each drop was reported (${errors.length})`);
      assert.equal(flaky.resumedFrom[0], null, "the first subscription starts from now");
      assert.ok(
        flaky.resumedFrom.slice(1).every((from) => typeof from === "string"),
        "every later one resumes from a position",
      );
    } finally {
      controller.abort();
      await reading;
      await store.close();
    }
    assert.equal(flaky.open(), 0, "the driver's feed was released");
  });

  it("yields resync when the feed can no longer resume (its history moved on)", async () => {
    const name = `gap-${Math.random()}`;
    let blocked = false;
    const inner = memoryDriver({ name });
    const driver: PoisonDriver = {
      ...inner,
      async *watch(query: DriverWatchQuery): AsyncGenerator<DriverWatchEvent> {
        if (blocked) throw new Error("server unreachable");
        for await (const event of inner.watch?.(query) ?? []) {
          yield event;
          if (event.type === "put" && event.key.endsWith("trigger")) {
            blocked = true;
            throw new Error("connection reset");
          }
        }
      },
    };
    const store = createPoisonStore(driver);
    const log = new WatchLog(store, "");
    try {
      assert.equal(await log.stream.ready, true);
      await store.tryPutPoison("trigger", "t");
      await log.next((e) => e.key === "trigger");
      // While the feed is down, more changes than the memory feed keeps (256).
      for (let i = 0; i < 300; i++) await store.tryPutPoison(`while-down/${i}`, "t");
      blocked = false;
      await log.next((e) => e.type === "resync", 15_000);
      await store.tryPutPoison("after", "t");
      await log.next((e) => e.key === "after");
      assert.ok(
        !log.events.some((e) => e.key.startsWith("while-down/")),
        "the gap is not papered over with a partial replay",
      );
    } finally {
      log.stop();
      await log.done;
      await store.close();
    }
  });

  it("a misconfigured backend ends the iteration with the error instead of retrying", async () => {
    const inner = memoryDriver();
    const driver: PoisonDriver = {
      ...inner,
      // biome-ignore lint/correctness/useYield: it fails before its first event
      async *watch(): AsyncGenerator<DriverWatchEvent> {
        throw new BackendConfigurationError("memory", "password", "wrong password");
      },
    };
    const store = createPoisonStore(driver);
    const changes = store.watch();
    await assert.rejects(changes[Symbol.asyncIterator]().next(), { code: "BACKEND_CONFIGURATION" });
    assert.equal(await changes.ready, false);
    await store.close();
  });
});

describe("watch: the polling fallback", () => {
  it("compares at most maxKeys keys a poll, and says resync each time it hits the bound", async () => {
    const store = createPoisonStore(pollingDriver());
    await store.tryPutPoisons(["k/1", "k/2", "k/3", "k/4", "k/5"], "t");
    const controller = new AbortController();
    const changes = store.watch({ signal: controller.signal, pollIntervalMs: 30, maxKeys: 3 });
    const events: ChangeEvent[] = [];
    const reading = (async () => {
      for await (const event of changes) events.push(event);
    })();
    try {
      assert.equal(await changes.ready, true);
      await store.touchPoisons(["k/1"], "t");
      await store.deletePoisons(["k/5"], "t");
      await settle(150);
      assert.ok(events.some((e) => e.type === "touched" && e.key === "k/1"));
      assert.ok(events.some((e) => e.type === "resync" && e.key === ""));
      assert.ok(!events.some((e) => e.key === "k/5"), "keys past the bound are not compared");
    } finally {
      controller.abort();
      await reading;
      await store.close();
    }
  });

  it("a force-delete the bounded audit read cannot vouch for is a delete plus resync", async () => {
    const store = createPoisonStore(pollingDriver());
    await store.tryPutPoison("w/victim", "t");
    const controller = new AbortController();
    const changes = store.watch({ prefix: "w/", signal: controller.signal, pollIntervalMs: 400 });
    const events: ChangeEvent[] = [];
    const reading = (async () => {
      for await (const event of changes) events.push(event);
    })();
    try {
      assert.equal(await changes.ready, true);
      // Within one poll: the forced delete, then more audited writes than one poll reads back.
      await store.forceDeletePoison("w/victim", { actor: "olga", reason: "r" });
      const audit = { actor: "olga", reason: "maintenance" };
      for (let i = 0; i < 1100; i++) await store.tryPutPoison(`other/${i}`, "m", { audit });
      for (let wait = 0; wait < 50 && events.length < 2; wait++) await settle(50);
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.key}`),
        ["deleted w/victim", "resync "],
      );
    } finally {
      controller.abort();
      await reading;
      await store.close();
    }
  });

  it("one polling loop serves every watch of the same prefix, and stops with the last", async () => {
    const store = createPoisonStore(pollingDriver());
    const calls: StoreCallEvent[] = [];
    store.onCall((call) => calls.push(call));
    const controllers = [1, 2, 3].map(() => new AbortController());
    const streams = controllers.map((c) =>
      store.watch({ prefix: "p/", signal: c.signal, pollIntervalMs: 40 }),
    );
    const readers = streams.map(async (stream) => {
      const seen: ChangeEvent[] = [];
      for await (const event of stream) seen.push(event);
      return seen;
    });
    await Promise.all(streams.map((s) => s.ready));
    const before = calls.filter((c) => c.op === "listPoisons").length;
    await settle(400);
    const lists = calls.filter((c) => c.op === "listPoisons").length - before;
    assert.ok(lists >= 5 && lists <= 13, `${lists} listings in 400 ms for three watches`);
    await store.tryPutPoison("p/1", "t");
    await settle(120);
    for (const c of controllers) c.abort();
    for (const seen of await Promise.all(readers))
      assert.deepEqual(
        seen.map((e) => e.type),
        ["put"],
      );
    const after = calls.length;
    await settle(150);
    assert.equal(calls.length, after, "no polling once every watch ended");
    await store.close();
  });

  it("an abort before the first listing ends the watch: ready is false, the store is left alone", async () => {
    const store = createPoisonStore(pollingDriver());
    let lists = 0;
    store.onCall((call) => {
      if (call.op === "listPoisons") lists++;
    });
    const changes = store.watch({ signal: AbortSignal.abort() });
    assert.equal(await changes.ready, false);
    assert.deepEqual(await changes[Symbol.asyncIterator]().next(), {
      value: undefined,
      done: true,
    });
    await settle(50);
    assert.equal(lists, 0);
    await store.close();
  });
});

describe("watch: the consumer", () => {
  it("a consumer that falls behind gets one resync instead of an unbounded queue", async () => {
    const store = openPoisonStore("memory:");
    const controller = new AbortController();
    const changes = store.watch({ signal: controller.signal });
    assert.equal(await changes.ready, true);
    const keys = Array.from({ length: 1000 }, (_, i) => `k/${i}`);
    for (let round = 0; round <= MAX_QUEUED_CHANGES / 1000; round++) {
      await store.tryPutPoisons(keys, `t${round}`);
      await store.deletePoisons(keys, `t${round}`);
    }
    await settle(200); // the feed is drained into the watch's queue while nobody reads it
    const iterator = changes[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.value?.type, "resync");
    let rest = 0;
    controller.abort();
    while (!(await iterator.next()).done) rest++;
    assert.ok(rest < MAX_QUEUED_CHANGES, `${rest} events after the resync`);
    await store.close();
  });

  it("rejects bad options when iterated", async () => {
    const store = openPoisonStore("memory:");
    for (const options of [
      { prefix: 42 },
      { pollIntervalMs: -1 },
      { maxKeys: 0 },
      { signal: "no" },
      { onError: 1 },
    ]) {
      const changes = store.watch(options as never);
      await assert.rejects(changes[Symbol.asyncIterator]().next(), { code: "INVALID_ARGUMENT" });
      assert.equal(await changes.ready, false);
    }
    await store.close();
  });

  it("close() and leaving a for-await loop end the watch", async () => {
    const store = openPoisonStore("memory:");
    const changes = store.watch();
    assert.equal(await changes.ready, true);
    await store.tryPutPoison("a", "t");
    for await (const event of changes) {
      assert.equal(event.key, "a");
      break;
    }
    assert.deepEqual(await changes[Symbol.asyncIterator]().next(), {
      value: undefined,
      done: true,
    });
    const other = store.watch();
    other.close();
    assert.equal(await other.ready, false);
    await store.close();
  });
});

describe("store.onCall", () => {
  it("reports every public call: method, duration, outcome (ok or the error code)", async () => {
    const store: PoisonStoreClient = openPoisonStore("memory:");
    const calls: StoreCallEvent[] = [];
    const stop = store.onCall((call) => calls.push(call));
    store.onCall(() => {
      throw new Error("a broken listener changes nothing");
    });
    await store.tryPutPoison("a", "t1");
    await assert.rejects(store.tryPutPoison("a", "t2"), { code: "POISON_CONFLICT" });
    await assert.rejects(store.getPoison(""), { code: "INVALID_ARGUMENT" });
    await store.listPoisons();
    await settle(0);
    assert.deepEqual(
      calls.map((c) => `${c.backend} ${c.op} ${c.outcome}`),
      [
        "memory tryPutPoison ok",
        "memory tryPutPoison POISON_CONFLICT",
        "memory getPoison INVALID_ARGUMENT",
        "memory listPoisons ok",
      ],
    );
    assert.ok(calls.every((c) => c.durationMs >= 0 && c.durationMs < 1000));
    assert.equal((calls[1]?.error as { code?: string } | undefined)?.code, "POISON_CONFLICT");
    stop();
    await store.getPoison("a");
    await settle(0);
    assert.equal(calls.length, 4, "a removed listener hears nothing");
    await store.close();
  });
});
