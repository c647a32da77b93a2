/**
 * store.watch() (SPEC §7, Observability) on every backend: through the driver's native change
 * feed where it has one, else the runtime's polling fallback (here every 40 ms). Every change
 * type is seen, in order per key; a watch ends and lets go when its signal aborts or the store
 * closes. A native feed must also report changes made back to back (no coalescing).
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { ChangeEvent, ChangeStream, PoisonStoreClient } from "../../src/index.js";
import type { SuiteContext } from "./harness.js";

const POLL_MS = 40;

/** A watch being read in the background, and what it has yielded. */
export class WatchLog {
  readonly events: ChangeEvent[] = [];
  readonly stream: ChangeStream;
  readonly done: Promise<unknown>;
  readonly #controller = new AbortController();
  #waiters: Array<() => void> = [];
  failure: unknown = null;

  constructor(store: PoisonStoreClient, prefix: string, pollIntervalMs = POLL_MS) {
    const stream = store.watch({ prefix, signal: this.#controller.signal, pollIntervalMs });
    this.stream = stream;
    this.done = (async () => {
      try {
        for await (const event of stream) {
          this.events.push(event);
          this.#wake();
        }
      } catch (error) {
        this.failure = error;
      }
      this.#wake();
    })();
  }

  /** Wait until an event matches; fail after `ms`. */
  async next(match: (event: ChangeEvent) => boolean, ms = 5000): Promise<ChangeEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching event within ${ms} ms; saw ${JSON.stringify(this.summary())}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  summary(): string[] {
    return this.events.map((e) => `${e.type} ${e.key}`);
  }

  of(key: string): string[] {
    return this.events.filter((e) => e.key === key).map((e) => e.type);
  }

  stop(): void {
    this.#controller.abort();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

export function watch(ctx: SuiteContext): void {
  it("sees every change type, in order per key, with the record", async () => {
    const store = ctx.open();
    const prefix = `${ctx.key()}/`;
    const a = `${prefix}a`;
    const b = `${prefix}b`;
    const log = new WatchLog(store, prefix);
    try {
      assert.equal(await log.stream.ready, true);
      await store.tryPutPoison(a, "owner-a", { operation: "alter-table", owner: "node-1" });
      const put = await log.next((e) => e.type === "put" && e.key === a);
      assert.equal(put.record?.token, "owner-a");
      assert.equal(put.record?.operation, "alter-table");
      assert.equal(put.record?.key, a, "records carry the key without the namespace");
      await store.markPoisoned(a, "owner-a", new Error("half-applied"));
      const poisoned = await log.next((e) => e.type === "poisoned" && e.key === a);
      assert.equal(poisoned.record?.state, "poisoned");
      assert.equal(poisoned.record?.error?.message, "half-applied");
      await store.tryPutPoison(b, "owner-b", { heartbeatIntervalMs: 60_000 });
      await log.next((e) => e.type === "put" && e.key === b);
      await new Promise((resolve) => setTimeout(resolve, 5)); // a heartbeat with a new time
      await store.touchPoisons([b], "owner-b");
      const touched = await log.next((e) => e.type === "touched" && e.key === b);
      assert.ok(touched.record?.heartbeatAt);
      await store.deletePoison(b, "owner-b");
      await log.next((e) => e.type === "deleted" && e.key === b);
      await store.forceDeletePoison(a, { actor: "olga", reason: "repaired shard 4" });
      const forced = await log.next((e) => e.type === "force-deleted" && e.key === a);
      assert.equal(forced.record?.token, "owner-a", "a force-delete carries the record removed");
      assert.deepEqual(log.of(a), ["put", "poisoned", "force-deleted"]);
      assert.deepEqual(log.of(b), ["put", "touched", "deleted"]);
      assert.ok(
        log.events.every((e) => e.key.startsWith(prefix) && /Z$/.test(e.at)),
        `only keys under the prefix, with an ISO time: ${JSON.stringify(log.summary())}`,
      );
      assert.ok(!log.events.some((e) => e.type === "resync"), "nothing was missed");
    } finally {
      log.stop();
      await log.done;
    }
  });

  it("a key cleared and put again by another token is seen as its removal, then the put", async () => {
    const store = ctx.open();
    const prefix = `${ctx.key()}/`;
    const key = `${prefix}k`;
    await store.tryPutPoison(key, "first");
    const log = new WatchLog(store, prefix);
    try {
      assert.equal(await log.stream.ready, true);
      await store.forceDeletePoison(key, { actor: "olga", reason: "dead holder" });
      await store.tryPutPoison(key, "second");
      const put = await log.next((e) => e.type === "put" && e.key === key);
      assert.equal(put.record?.token, "second");
      assert.deepEqual(log.of(key), ["force-deleted", "put"]);
    } finally {
      log.stop();
      await log.done;
    }
  });

  it("a native change feed reports changes made back to back, none coalesced", async (t) => {
    const store = ctx.open();
    const prefix = `${ctx.key()}/`;
    const log = new WatchLog(store, prefix);
    try {
      if (log.stream.source !== "native") {
        t.skip(`${store.backend} is watched by polling: changes between two polls coalesce`);
        return;
      }
      assert.equal(await log.stream.ready, true);
      const key = `${prefix}k`;
      await store.tryPutPoison(key, "t1");
      await store.touchPoisons([key], "t1");
      await store.markPoisoned(key, "t1", new Error("x"));
      await store.deletePoison(key, "t1");
      await store.tryPutPoison(key, "t2");
      await store.forceDeletePoison(key, { actor: "a", reason: "r" });
      await log.next((e) => e.type === "force-deleted");
      assert.deepEqual(log.of(key), [
        "put",
        "touched",
        "poisoned",
        "deleted",
        "put",
        "force-deleted",
      ]);
    } finally {
      log.stop();
      await log.done;
    }
  });

  it("aborting the signal ends the iteration; closing the store ends every watch", async () => {
    const store = ctx.open();
    const prefix = `${ctx.key()}/`;
    const first = new WatchLog(store, prefix);
    assert.equal(await first.stream.ready, true);
    first.stop();
    await first.done;
    assert.equal(first.failure, null, "an abort ends the iteration without an error");

    const second = new WatchLog(store, prefix);
    assert.equal(await second.stream.ready, true);
    await store.close();
    await second.done;
    assert.equal(second.failure, null);
    // A watch opened on a closed store rejects at once.
    const late = store.watch({ prefix });
    assert.equal(await late.ready, false);
    await assert.rejects(late[Symbol.asyncIterator]().next(), { code: "STORE_CLOSED" });
  });
}
