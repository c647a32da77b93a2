/** Multi-key token-checked updates (markPoisons, touchPoisons) and the holder's record on a
 *  conflict: the steps PoisonGuard builds on. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { InvalidArgumentError, PoisonConflictError, PoisonNotFoundError } from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

export function batches(ctx: SuiteContext): void {
  it("a conflicting put carries the holder's whole record", async () => {
    const store = ctx.open();
    const [free, held] = [ctx.key("free"), ctx.key("held")];
    await store.tryPutPoison(held, "owner", { operation: "alter-table", data: { shard: 7 } });
    await store.markPoisoned(held, "owner", new Error("shard 7 did not answer"));
    const stored = await store.inspectPoison(held);
    const error = await rejectsWith(
      store.tryPutPoisons([free, held], "next"),
      PoisonConflictError,
      {
        key: held,
        holder: "owner",
      },
    );
    assert.deepEqual(error.holderRecord, stored);
    assert.equal(await store.getPoison(free), null, "all or none");
  });

  it("a conflicting batch names every key held by another token, in the caller's order", async () => {
    const store = ctx.open();
    const [a, b, c, d] = [ctx.key("a"), ctx.key("b"), ctx.key("c"), ctx.key("d")];
    await store.tryPutPoison(c, "third");
    await store.tryPutPoison(a, "first");
    const error = await rejectsWith(
      store.tryPutPoisons([b, c, d, a], "next"),
      PoisonConflictError,
      {
        key: c,
        holder: "third",
      },
    );
    assert.deepEqual(
      error.conflicts.map((r) => [r.key, r.token]),
      [
        [c, "third"],
        [a, "first"],
      ],
    );
    for (const key of [b, d]) assert.equal(await store.getPoison(key), null);
  });

  it("deletePoisons says which keys it removed (a key already absent was not)", async () => {
    const store = ctx.open();
    const [a, b] = [ctx.key("a"), ctx.key("b")];
    await store.tryPutPoison(a, "t");
    assert.deepEqual(await store.deletePoisons([a, b], "t"), { removed: [a] });
    assert.deepEqual(await store.deletePoisons([a, b], "t"), { removed: [] });
  });

  it("markPoisons poisons every key in one step, keeping each record's fields", async () => {
    const times = [new Date("2031-01-01T00:00:00.000Z"), new Date("2031-01-01T00:01:00.000Z")];
    let i = 0;
    const store = ctx.open({ clock: () => times[Math.min(i++, 1)] as Date });
    const keys = [ctx.key("a"), ctx.key("b"), ctx.key("c")];
    await store.tryPutPoisons(keys, "t1", { operation: "migrate", data: { n: 1 } });
    const marked = await store.markPoisons(keys, "t1", new TypeError("half-way"));
    assert.deepEqual(
      marked.map((r) => r.key),
      keys,
    );
    for (const key of keys) {
      const record = await store.inspectPoison(key);
      assert.equal(record?.state, "poisoned");
      assert.equal(record?.error?.name, "TypeError");
      assert.equal(record?.error?.message, "half-way");
      assert.match(record?.error?.stack ?? "", /half-way/);
      assert.equal(record?.error?.at, "2031-01-01T00:01:00.000Z");
      assert.equal(record?.updatedAt, "2031-01-01T00:01:00.000Z");
      assert.equal(record?.createdAt, "2031-01-01T00:00:00.000Z");
      assert.equal(record?.operation, "migrate");
      assert.deepEqual(record?.data, { n: 1 });
    }
  });

  it("markPoisons changes nothing when one key is held by another token or absent", async () => {
    const store = ctx.open();
    const [mine, theirs, absent] = [ctx.key("mine"), ctx.key("theirs"), ctx.key("absent")];
    await store.tryPutPoison(mine, "me");
    await store.tryPutPoison(theirs, "them");
    const before = await store.inspectPoison(mine);
    const conflict = await rejectsWith(
      store.markPoisons([mine, theirs], "me", new Error("x")),
      PoisonConflictError,
      { key: theirs, token: "me", holder: "them" },
    );
    assert.equal(conflict.holderRecord?.token, "them");
    await rejectsWith(
      store.markPoisons([mine, absent], "me", new Error("x")),
      PoisonNotFoundError,
      {
        key: absent,
      },
    );
    assert.deepEqual(await store.inspectPoison(mine), before);
    assert.equal((await store.inspectPoison(theirs))?.state, "in-progress");
  });

  it("touchPoisons sets heartbeatAt and updatedAt, and leaves state and error", async () => {
    let now = new Date("2032-01-01T00:00:00.000Z");
    const store = ctx.open({ clock: () => now });
    const keys = [ctx.key("a"), ctx.key("b")];
    await store.tryPutPoisons(keys, "t1");
    assert.equal((await store.inspectPoison(keys[0] as string))?.heartbeatAt, undefined);
    now = new Date("2032-01-01T00:00:10.000Z");
    const touched = await store.touchPoisons(keys, "t1");
    for (const record of touched) {
      assert.equal(record.heartbeatAt, "2032-01-01T00:00:10.000Z");
      assert.equal(record.updatedAt, "2032-01-01T00:00:10.000Z");
      assert.equal(record.state, "in-progress");
      assert.deepEqual(await store.inspectPoison(record.key), record);
    }
    await store.markPoisons(keys, "t1", new Error("boom"));
    now = new Date("2032-01-01T00:00:20.000Z");
    await store.touchPoisons(keys, "t1");
    const record = await store.inspectPoison(keys[1] as string);
    assert.equal(record?.state, "poisoned");
    assert.equal(record?.error?.message, "boom");
    assert.equal(record?.heartbeatAt, "2032-01-01T00:00:20.000Z");
  });

  it("touchPoisons is token-checked, all or none", async () => {
    const store = ctx.open();
    const [mine, theirs, absent] = [ctx.key("mine"), ctx.key("theirs"), ctx.key("absent")];
    await store.tryPutPoison(mine, "me");
    await store.tryPutPoison(theirs, "them");
    await rejectsWith(store.touchPoisons([mine, theirs], "me"), PoisonConflictError, {
      key: theirs,
    });
    await rejectsWith(store.touchPoisons([absent, mine], "me"), PoisonNotFoundError, {
      key: absent,
    });
    assert.equal((await store.inspectPoison(mine))?.heartbeatAt, undefined);
    assert.equal((await store.inspectPoison(theirs))?.heartbeatAt, undefined);
    assert.equal(await store.getPoison(absent), null);
  });

  it("markPoisons and touchPoisons validate their arguments before touching the backend", async () => {
    const store = ctx.open();
    await rejectsWith(store.markPoisons([], "t", new Error("x")), InvalidArgumentError, {
      argument: "keys",
    });
    await rejectsWith(store.touchPoisons(["a", "a"], "t"), InvalidArgumentError, {
      argument: "keys",
    });
    await rejectsWith(store.touchPoisons(["a"], ""), InvalidArgumentError, { argument: "token" });
  });
}
