/**
 * `GET /api/v1/events`: every stream is a `store.watch()`. Its polling fallback on a real store
 * whose driver has no native feed (every change type, prefixes, the bound on keys per poll, the
 * settings passed through), the memory driver's native feed, the stream limit and close().
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ChangeEvent,
  type ChangeStream,
  createPoisonAdmin,
  createPoisonStore,
  memoryDriver,
  type PoisonStoreClient,
} from "../../src/index.js";
import {
  call,
  memoryStore,
  OPERATOR_SECRET,
  type RunningAdmin,
  startAdmin,
  TOKENS,
  VIEWER_SECRET,
} from "./support.js";

/** An open event stream and the events read from it so far. */
class Stream {
  readonly events: ChangeEvent[] = [];
  readonly #controller = new AbortController();
  #waiters: Array<() => void> = [];
  ended = false;
  status = 0;

  static async open(running: RunningAdmin, query = ""): Promise<Stream> {
    const stream = new Stream();
    const response = await fetch(`${running.url}/api/v1/events${query}`, {
      headers: { authorization: `Bearer ${VIEWER_SECRET}` },
      signal: stream.#controller.signal,
    });
    stream.status = response.status;
    if (!response.ok || !response.body) return stream;
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    void stream.#read(response.body);
    return stream;
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data: "))
            .map((line) => line.slice(6))
            .join("\n");
          if (data) this.events.push(JSON.parse(data) as ChangeEvent);
        }
        this.#wake();
      }
    } catch {
      // Aborted by close().
    }
    this.ended = true;
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Wait until an event matches, or fail after `ms`. */
  async next(match: (event: ChangeEvent) => boolean, ms = 3000): Promise<ChangeEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (this.ended) throw new Error(`the stream ended; events: ${JSON.stringify(this.events)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching event in ${ms} ms: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#controller.abort();
  }
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A memory store whose driver has no native change feed: its watch() polls. */
function pollingStore(): PoisonStoreClient {
  const { watch: _native, ...driver } = memoryDriver();
  return createPoisonStore(driver);
}

describe("admin events by polling", () => {
  it("reports puts, poisonings, heartbeats, deletes and force-deletes, under the prefix", async () => {
    const store = pollingStore();
    await store.tryPutPoison("table/1", "t1");
    const running = await startAdmin(store, { events: { intervalMs: 40 } });
    const all = await Stream.open(running);
    const tables = await Stream.open(running, "?prefix=table%2F");
    try {
      assert.equal(all.status, 200);
      await settle(120); // the first poll takes the snapshot; what follows is change
      await store.tryPutPoison("table/2", "t2", { operation: "alter" });
      const put = await all.next((e) => e.type === "put" && e.key === "table/2");
      assert.equal(put.record?.operation, "alter");
      await store.markPoisoned("table/2", "t2", new Error("half-applied"));
      await all.next((e) => e.type === "poisoned" && e.key === "table/2");
      await settle(20);
      await store.touchPoisons(["table/1"], "t1");
      await all.next((e) => e.type === "touched" && e.key === "table/1");
      await store.deletePoison("table/1", "t1");
      await all.next((e) => e.type === "deleted" && e.key === "table/1");
      await store.forceDeletePoison("table/2", { actor: "olga", reason: "repaired" });
      await all.next((e) => e.type === "force-deleted" && e.key === "table/2");
      await store.tryPutPoison("region/1", "t3");
      await all.next((e) => e.key === "region/1");
      await tables.next((e) => e.type === "force-deleted" && e.key === "table/2");
      assert.ok(
        tables.events.every((e) => e.key.startsWith("table/")),
        "a prefixed stream sees only its keys",
      );
    } finally {
      all.close();
      tables.close();
      await running.close();
      await store.close();
    }
  });

  it("compares at most maxKeys keys a poll, says resync when it hits the bound", async () => {
    const store = pollingStore();
    await store.tryPutPoisons(["k/1", "k/2", "k/3", "k/4", "k/5"], "t");
    let lists = 0;
    store.onCall((call) => {
      if (call.op === "listPoisons") lists++;
    });
    const running = await startAdmin(store, { events: { intervalMs: 40, maxKeys: 3 } });
    const stream = await Stream.open(running);
    try {
      await stream.next((e) => e.type === "resync");
      await store.touchPoisons(["k/1"], "t");
      await stream.next((e) => e.type === "touched" && e.key === "k/1");
      await store.deletePoisons(["k/5"], "t");
      await settle(150);
      assert.ok(
        !stream.events.some((e) => e.key === "k/5"),
        "keys past the bound are not compared",
      );
      const polls = lists;
      assert.ok(polls > 2);
      // Each poll lists at most ⌈maxKeys / 1000⌉ pages: here one.
      stream.close();
      await settle(150);
      const after = lists;
      await settle(150);
      assert.equal(lists, after, "no polling while no stream is open");
    } finally {
      stream.close();
      await running.close();
      await store.close();
    }
  });

  it("shares one polling loop between the streams of one prefix", async () => {
    const store = pollingStore();
    let lists = 0;
    store.onCall((call) => {
      if (call.op === "listPoisons") lists++;
    });
    const running = await startAdmin(store, { events: { intervalMs: 50 } });
    const streams = await Promise.all([1, 2, 3, 4].map(() => Stream.open(running)));
    try {
      await settle(200);
      const before = lists;
      await settle(500);
      const polls = lists - before;
      // About 10 polls in 500 ms for the four streams together, not 40.
      assert.ok(polls >= 4 && polls <= 14, `${polls} listings in 500 ms`);
      await store.tryPutPoison("shared/1", "t");
      for (const stream of streams) await stream.next((e) => e.key === "shared/1");
    } finally {
      for (const stream of streams) stream.close();
      await running.close();
      await store.close();
    }
  });

  it("limits the streams open at once, and close() ends them", async () => {
    const store = memoryStore();
    const running = await startAdmin(store, { events: { intervalMs: 40, maxStreams: 1 } });
    const first = await Stream.open(running);
    try {
      const second = await Stream.open(running);
      assert.equal(second.status, 429);
      await running.admin.close();
      await first.next(() => false, 2000).catch(() => undefined);
      assert.equal(first.ended, true, "close() ended the open stream");
    } finally {
      first.close();
      await running.close();
      await store.close();
    }
  });
});

describe("admin events through the fetch face", () => {
  it("frees a stream's slot when the body is cancelled, even if request.signal never aborts", async () => {
    const store = memoryStore();
    const admin = createPoisonAdmin(store, {
      tokens: TOKENS,
      events: { intervalMs: 40, maxStreams: 1 },
    });
    const open = () =>
      admin.fetch(
        new Request("http://svc.internal/api/v1/events", {
          headers: { authorization: `Bearer ${VIEWER_SECRET}` },
        }),
      );
    try {
      const first = await open();
      assert.equal(first.status, 200);
      const reader = first.body?.getReader();
      await reader?.read();
      assert.equal((await open()).status, 429, "the only slot is taken");
      await reader?.cancel();
      await settle(50);
      const second = await open();
      assert.equal(second.status, 200, "the cancelled stream gave its slot back");
      await second.body?.cancel();
    } finally {
      await admin.close();
      await store.close();
    }
  });
});

describe("admin events from the store's watch()", () => {
  it("relays the memory driver's native feed, every change as it happens", async () => {
    const store = memoryStore();
    assert.equal(store.watch({ signal: AbortSignal.abort() }).source, "native");
    const running = await startAdmin(store, { events: { intervalMs: 60_000 } });
    const stream = await Stream.open(running, "?prefix=n%2F");
    try {
      await settle(50);
      await store.tryPutPoison("n/1", "t");
      await store.markPoisoned("n/1", "t", new Error("half-applied"));
      await store.forceDeletePoison("n/1", { actor: "olga", reason: "repaired" });
      await store.tryPutPoison("other/1", "t");
      await stream.next((e) => e.type === "force-deleted", 2000);
      assert.deepEqual(
        stream.events.map((e) => `${e.type} ${e.key}`),
        ["put n/1", "poisoned n/1", "force-deleted n/1"],
        "no polling interval to wait for (60 s), and no change coalesced",
      );
    } finally {
      stream.close();
      await running.close();
      await store.close();
    }
  });

  it("relays watch() events and never polls", async () => {
    const store = memoryStore();
    let lists = 0;
    const watched: Array<{ prefix?: string }> = [];
    const watching = Object.create(store) as PoisonStoreClient;
    watching.listPoisons = (options) => {
      lists++;
      return store.listPoisons(options);
    };
    watching.watch = (options = {}) => {
      watched.push({ prefix: options.prefix });
      const events = (async function* () {
        yield { type: "put", key: "w/1", at: new Date().toISOString() } as ChangeEvent;
        yield { type: "force-deleted", key: "w/1", at: new Date().toISOString() } as ChangeEvent;
        await new Promise((resolve) => options.signal?.addEventListener("abort", resolve));
      })();
      const stream: ChangeStream = Object.assign(events, {
        ready: Promise.resolve(true),
        source: "native" as const,
        close() {},
      });
      return stream;
    };
    const running = await startAdmin(watching, { events: { intervalMs: 20 } });
    const stream = await Stream.open(running, "?prefix=w%2F");
    try {
      await stream.next((e) => e.type === "force-deleted");
      assert.deepEqual(
        stream.events.map((e) => e.type),
        ["put", "force-deleted"],
      );
      assert.deepEqual(watched, [{ prefix: "w/" }]);
      await settle(100);
      assert.equal(lists, 0, "no polling when the store can watch");
    } finally {
      stream.close();
      await running.close();
      await store.close();
    }
  });

  it("refuses unknown parameters", async () => {
    const store = memoryStore();
    const running = await startAdmin(store);
    try {
      const answer = await call(`${running.url}/api/v1/events?since=5`, { token: OPERATOR_SECRET });
      assert.equal(answer.status, 400);
    } finally {
      await running.close();
      await store.close();
    }
  });
});
