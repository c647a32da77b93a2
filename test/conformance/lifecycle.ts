/** close(): pending calls settle, later calls reject with a typed error. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { StoreClosedError } from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

export function lifecycle(ctx: SuiteContext): void {
  it("calls after close() reject with StoreClosedError", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t");
    await store.close();
    await store.close(); // closing twice is fine
    const calls = [
      store.tryPutPoison(key, "t"),
      store.deletePoison(key, "t"),
      store.getPoison(key),
      store.inspectPoison(key),
      store.listPoisons(),
      store.markPoisoned(key, "t", new Error("x")),
      store.forceDeletePoison(key, { actor: "a", reason: "r" }),
      store.auditLog(),
      store.tryPutPoisons([key], "t"),
      store.deletePoisons([key], "t"),
    ];
    for (const call of calls) await rejectsWith(call, StoreClosedError, { code: "STORE_CLOSED" });
    const other = ctx.open();
    assert.equal(await other.getPoison(key), "t", "close() must not lose what was written");
    await other.deletePoison(key, "t");
  });

  it("close() lets pending calls settle first", async () => {
    const store = ctx.open();
    const keys = Array.from({ length: 20 }, (_, i) => ctx.key(`pending-${i}`));
    const puts = keys.map((key) => store.tryPutPoison(key, "t"));
    await store.close();
    const results = await Promise.allSettled(puts);
    assert.ok(results.every((r) => r.status === "fulfilled"));
    const other = ctx.open();
    for (const key of keys) assert.equal(await other.getPoison(key), "t");
  });

  it("a store that was never used closes cleanly", async () => {
    await ctx.harness.open().close();
  });

  it("a store says where it is, without a password, and whether it holds storage", async () => {
    const store = ctx.open();
    assert.equal(typeof store.location, "string");
    assert.ok(store.location.length > 0);
    // A password shows as *** (the secured servers' URLs carry one), never as itself.
    assert.doesNotMatch(store.location, /:(?!\*\*\*@)[^:@/]+@/, "no password in the location");
    await store.tryPutPoison(ctx.key(), "t");
    assert.equal(await store.exists(), true);
    // Reads on a namespace never written answer empty, whatever the backend.
    const untouched = ctx.open({ namespace: `${ctx.namespace}untouched/` });
    assert.deepEqual(await untouched.listPoisons(), { records: [], cursor: null });
    assert.deepEqual(await untouched.auditLog(), { entries: [], cursor: null });
  });
}
