/** SPEC §5: resume under the same token; heartbeats without expiry. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { type GuardEvent, ResourcePoisonedError } from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import type { GuardSuiteContext } from "./harness.js";

/** Poll `check` until it returns a value, or fail after `ms`. */
async function eventually<T>(check: () => Promise<T | undefined>, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function liveness(ctx: GuardSuiteContext): void {
  it("in-progress keys left by a dead run are resumed by a run with the same token, then cleaned", async () => {
    const store = ctx.open();
    const keys = [ctx.key("a"), ctx.key("b")];
    const token = ctx.token("procedure");
    // What a process that died mid-body leaves behind: one key held, in-progress.
    await store.tryPutPoisons([keys[0] as string], token, { operation: "alter-table" });
    const guard = ctx.guard(store);
    await rejectsWith(
      guard.run({ keys, token: ctx.token("other") }, () => undefined),
      ResourcePoisonedError,
    );
    const resumed = await guard.run({ keys, token, operation: "alter-table" }, async (run) => {
      for (const key of keys) assert.equal(await store.getPoison(key), token);
      return run.resumed;
    });
    assert.equal(resumed, true);
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("the guard refreshes heartbeatAt of its in-progress records while the body runs", async () => {
    const store = ctx.open();
    const events: GuardEvent[] = [];
    const guard = ctx.guard(store, { heartbeatIntervalMs: 20, onEvent: (e) => events.push(e) });
    const keys = [ctx.key(), ctx.key()];
    await guard.run({ keys, token: ctx.token() }, async () => {
      // Live from the start: the put writes the interval and a first heartbeat.
      const put = await store.inspectPoison(keys[0] as string);
      assert.equal(put?.heartbeatIntervalMs, 20);
      assert.equal(put?.heartbeatAt, put?.createdAt);
      const first = put?.heartbeatAt as string;
      const later = await eventually(async () => {
        const record = await store.inspectPoison(keys[1] as string);
        return record?.heartbeatAt && record.heartbeatAt > first ? record : undefined;
      });
      const again = await eventually(async () => {
        const record = await store.inspectPoison(keys[1] as string);
        return record?.heartbeatAt && record.heartbeatAt > (later.heartbeatAt as string)
          ? record
          : undefined;
      });
      assert.equal(again.state, "in-progress");
      assert.equal(again.updatedAt, again.heartbeatAt);
      assert.equal(again.heartbeatIntervalMs, 20);
    });
    assert.ok(events.filter((e) => e.type === "heartbeat").length >= 2);
    const types = events.map((e) => e.type).filter((t) => t !== "heartbeat");
    assert.deepEqual(types, ["started", "cleaned", "succeeded"], "no heartbeat after the end");
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("heartbeats can be turned off", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store, { heartbeatIntervalMs: false });
    const key = ctx.key();
    await guard.run({ keys: [key], token: ctx.token() }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 60));
      assert.equal((await store.inspectPoison(key))?.heartbeatAt, undefined);
    });
  });

  it("no heartbeat touches the keys after the run ended, even when the body outlives a tick", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store, { heartbeatIntervalMs: 5 });
    const key = ctx.key();
    const token = ctx.token();
    await guard.run({ keys: [key], token }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
    });
    // Someone else takes the key; a late heartbeat of the ended run would conflict or touch it.
    await store.tryPutPoison(key, "next");
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal((await store.inspectPoison(key))?.heartbeatAt, undefined);
    await store.deletePoison(key, "next");
  });
}
