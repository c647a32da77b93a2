/**
 * The Redis driver's scripts are ioredis `defineCommand`s (EVALSHA, EVAL on a connection's first
 * use or after NOSCRIPT): a server that lost its script cache — SCRIPT FLUSH, a restart — costs
 * the call that meets it one extra round trip at most, and never a wrong answer. Run against a
 * private redis-server (restarted here), never the shared one.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { openPoisonStore, PoisonConflictError, redisDriver } from "../../src/index.js";
import { backendSkipReason } from "../conformance/index.js";
import { redisUnavailable } from "../support/servers.js";
import {
  countCommands,
  type PrivateRedis,
  startPrivateRedis,
  untilReady,
} from "./redis-private.js";

const skip = await backendSkipReason("redis", redisUnavailable);

describe("redis scripts: a lost script cache", { skip: skip ?? false }, () => {
  let server: PrivateRedis;
  before(async () => {
    server = await startPrivateRedis();
  });
  after(async () => {
    await server?.stop();
  });

  /** A store on a client whose commands are counted (every command written is a round trip). */
  function countedStore() {
    const client = new Redis(server.url, { lazyConnect: true });
    client.on("error", () => undefined);
    const commands = countCommands(client);
    const store = openPoisonStore(redisDriver({ client, keyPrefix: `{t-${randomUUID()}}:` }));
    const count = async (call: () => Promise<unknown>) => {
      const before = commands();
      const result = await call().catch((error: unknown) => error);
      return { result, trips: commands() - before };
    };
    return { client, store, count };
  }

  it("SCRIPT FLUSH: the next call of each script takes two round trips at most, right answers", async (t) => {
    const { client, store, count } = countedStore();
    t.after(async () => {
      await store.close();
      client.disconnect();
    });
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    await store.tryPutPoison("warm", "w");
    await store.deletePoison("warm", "w");
    assert.equal((await count(() => store.tryPutPoison("a", "t1"))).trips, 1);

    await admin.script("FLUSH");
    const put = await count(() => store.tryPutPoison("b", "t1"));
    assert.equal(put.result, undefined);
    // Exactly two: EVALSHA met NOSCRIPT (the flush took effect), then EVAL loaded it again.
    assert.equal(put.trips, 2, `put after a flush took ${put.trips} round trips`);
    const conflict = await count(() => store.tryPutPoison("a", "t2"));
    assert.ok(conflict.result instanceof PoisonConflictError);
    assert.equal(conflict.result.holder, "t1");
    assert.ok(conflict.trips <= 1, "the put script is loaded again already");
    const removed = await count(() => store.deletePoison("a", "t1"));
    assert.equal(removed.result, undefined);
    assert.ok(removed.trips <= 2, `delete after a flush took ${removed.trips} round trips`);
    assert.equal(await store.getPoison("a"), null);
    assert.equal(await store.getPoison("b"), "t1");
    const touched = await count(() => store.touchPoisons(["b"], "t1"));
    assert.ok(touched.trips <= 2);
    // Once reloaded, every call is one round trip again.
    assert.equal((await count(() => store.tryPutPoison("c", "t1"))).trips, 1);
    assert.equal((await count(() => store.deletePoison("c", "t1"))).trips, 1);
  });

  it("a restarted server (script cache and data gone): one round trip per call, right answers", async (t) => {
    const { client, store, count } = countedStore();
    t.after(async () => {
      await store.close();
      client.disconnect();
    });
    await store.tryPutPoison("x", "t1");
    await server.restart();
    await untilReady(client);
    // Nothing was saved: the key is gone, and a new connection sends each script as EVAL first.
    const put = await count(() => store.tryPutPoison("x", "t2"));
    assert.equal(put.result, undefined, "the key was lost with the server's memory");
    assert.ok(put.trips <= 2, `put after a restart took ${put.trips} round trips`);
    const conflict = await count(() => store.tryPutPoison("x", "t1"));
    assert.ok(conflict.result instanceof PoisonConflictError);
    assert.equal(conflict.result.holder, "t2");
    const removed = await count(() => store.deletePoison("x", "t2"));
    assert.equal(removed.result, undefined);
    assert.ok(removed.trips <= 2);
    assert.equal(await store.getPoison("x"), null);
  });

  it("the driver's own client after a restart: calls fail typed or answer right, then recover", async (t) => {
    const store = openPoisonStore(
      redisDriver({ url: server.url, keyPrefix: `{t-${randomUUID()}}:`, commandTimeoutMs: 700 }),
      { timeoutMs: 1000 },
    );
    t.after(() => store.close());
    await store.tryPutPoison("y", "t1");
    await server.restart();
    const deadline = Date.now() + 8000;
    let answered = false;
    while (!answered) {
      assert.ok(Date.now() < deadline, "the store never answered after the restart");
      try {
        await store.tryPutPoison("y", "t2");
        answered = true;
      } catch (error) {
        assert.equal((error as { code?: string }).code, "BACKEND_UNAVAILABLE", String(error));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    assert.equal(await store.getPoison("y"), "t2");
    await store.deletePoison("y", "t2");
  });
});
