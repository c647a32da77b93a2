/** SPEC §7: live holders are never force-deleted by accident; stale ones are; the override is
 *  audited; the decision and the delete are one compare-and-delete. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  HolderAliveError,
  InvalidArgumentError,
  livenessOf,
  PoisonConflictError,
  PoisonNotFoundError,
} from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

const HOUR = 3_600_000;

export function liveness(ctx: SuiteContext): void {
  /** A store whose clock is `offsetMs` away from now. */
  const openAt = (offsetMs: number) => ctx.open({ clock: () => new Date(Date.now() + offsetMs) });

  it("a put with heartbeatIntervalMs is live at once; without it, never", async () => {
    const store = ctx.open();
    const live = ctx.key("live");
    const plain = ctx.key("plain");
    await store.tryPutPoison(live, "holder", { heartbeatIntervalMs: 1000 });
    await store.tryPutPoison(plain, "holder");
    const record = await store.inspectPoison(live);
    assert.equal(record?.heartbeatIntervalMs, 1000);
    assert.equal(record?.heartbeatAt, record?.createdAt);
    assert.equal(livenessOf(record ?? assert.fail(), new Date()).live, true);
    const other = await store.inspectPoison(plain);
    assert.equal(other?.heartbeatIntervalMs, undefined);
    assert.equal(livenessOf(other ?? assert.fail(), new Date()).stale, true);
  });

  it("a fractional heartbeatIntervalMs is kept rounded up to a whole millisecond, the same on every backend", async () => {
    const store = ctx.open();
    const key = ctx.key("fractional");
    // Found by the torture fuzzer: PostgreSQL's integer column refused 120802.9 (CI, stop 19).
    await store.tryPutPoison(key, "holder", { heartbeatIntervalMs: 120_802.904 });
    assert.equal((await store.inspectPoison(key))?.heartbeatIntervalMs, 120_803);
    await store.touchPoisons([key], "holder", { heartbeatIntervalMs: 1.5 });
    assert.equal((await store.inspectPoison(key))?.heartbeatIntervalMs, 2);
  });

  it("forceDeletePoison refuses a live holder with HolderAliveError and changes nothing", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "running", { heartbeatIntervalMs: 1000, owner: "host-a:1" });
    const error = await rejectsWith(
      store.forceDeletePoison(key, { actor: "oncall", reason: "looks stuck" }),
      HolderAliveError,
      { code: "HOLDER_ALIVE", key },
    );
    assert.equal(error.record.token, "running");
    assert.match(error.message, /last heartbeat .* ago, every 1s/);
    assert.match(error.message, /evenIfAlive/);
    assert.equal(await store.getPoison(key), "running");
    assert.deepEqual((await store.auditLog({ key })).entries, []);
  });

  it("evenIfAlive overrides, and the audit entry says so", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "running", { heartbeatIntervalMs: 1000 });
    const removed = await store.forceDeletePoison(key, {
      actor: "oncall",
      reason: "the owner is wedged",
      evenIfAlive: true,
    });
    assert.equal(removed?.token, "running");
    assert.equal(await store.getPoison(key), null);
    const [entry] = (await store.auditLog({ key })).entries;
    assert.equal(entry?.action, "force-delete");
    assert.equal(entry?.evenIfAlive, true);
    // A stale holder needs no override, and its entry carries none.
    const stale = ctx.key();
    await openAt(-HOUR).tryPutPoison(stale, "dead", { heartbeatIntervalMs: 1000 });
    await store.forceDeletePoison(stale, { actor: "oncall", reason: "r", evenIfAlive: true });
    assert.equal((await store.auditLog({ key: stale })).entries[0]?.evenIfAlive, undefined);
  });

  it("a holder whose heartbeats stopped is stale, and is force-deleted without an override", async () => {
    const key = ctx.key();
    await openAt(-HOUR).tryPutPoison(key, "dead", { heartbeatIntervalMs: 1000 });
    const store = ctx.open();
    const record = await store.inspectPoison(key);
    assert.equal(livenessOf(record ?? assert.fail(), new Date()).stale, true);
    const removed = await store.forceDeletePoison(key, { actor: "oncall", reason: "r" });
    assert.equal(removed?.token, "dead");
    assert.equal((await store.auditLog({ key })).entries.length, 1);
  });

  it("a few seconds of clock skew never make a live holder look dead; a heartbeat from the future is live", async () => {
    const key = ctx.key();
    // The holder's clock runs 3.5 s behind: its fresh heartbeat looks 3.5 s old, past the
    // 3 × 1000 ms window, but within the allowed skew.
    await openAt(-3500).tryPutPoison(key, "running", { heartbeatIntervalMs: 1000 });
    const store = ctx.open();
    await rejectsWith(store.forceDeletePoison(key, { actor: "a", reason: "r" }), HolderAliveError);
    const ahead = ctx.key();
    await openAt(+HOUR).tryPutPoison(ahead, "running", { heartbeatIntervalMs: 1000 });
    await rejectsWith(
      store.forceDeletePoison(ahead, { actor: "a", reason: "r" }),
      HolderAliveError,
    );
    // With the allowance turned off, the late clock is taken at its word.
    const strict = ctx.open({ clockSkewMs: 0 });
    assert.equal(
      (await strict.forceDeletePoison(key, { actor: "a", reason: "r" }))?.token,
      "running",
    );
  });

  it("a heartbeat racing a forced delete: never both succeed (one compare-and-delete)", async () => {
    const operator = ctx.open();
    const holder = ctx.open();
    let deletes = 0;
    let touches = 0;
    for (let round = 0; round < 30; round++) {
      const key = ctx.key("race");
      // Stale as written: its last heartbeat is an hour old.
      await openAt(-HOUR).tryPutPoison(key, "holder", { heartbeatIntervalMs: 1000 });
      // Start the heartbeat a varying number of ticks after the delete, so that on in-process
      // backends too it lands before, between and after the delete's read and its write.
      const del0 = operator.forceDeletePoison(key, { actor: "oncall", reason: "race" });
      const touch0 = (async () => {
        for (let tick = 0; tick < round % 10; tick++) await Promise.resolve();
        if (round % 3 === 2) await new Promise((resolve) => setImmediate(resolve));
        return holder.touchPoisons([key], "holder");
      })();
      const [touch, del] = await Promise.allSettled([touch0, del0]);
      if (touch.status === "fulfilled") touches++;
      if (del.status === "fulfilled") deletes++;
      // The heartbeat landed first (the delete then saw a live holder and refused), or the
      // delete removed the stale record first (the heartbeat then found no key): never both.
      assert.ok(
        !(touch.status === "fulfilled" && del.status === "fulfilled"),
        "a fresh heartbeat landed between the liveness check and the delete",
      );
      if (del.status === "fulfilled") {
        assert.ok(touch.status === "rejected" && touch.reason instanceof PoisonNotFoundError);
        assert.equal(del.value?.heartbeatAt, del.value?.createdAt, "removed the stale version");
      } else {
        assert.ok(del.reason instanceof HolderAliveError, String(del.reason));
        assert.equal(await holder.getPoison(key), "holder");
      }
    }
    assert.equal(touches + deletes, 30);
  });

  it("forceDeletePoisons removes several keys in one audited step, or none", async () => {
    const store = ctx.open();
    const old = openAt(-HOUR);
    const keys = [ctx.key("a"), ctx.key("b"), ctx.key("c")];
    for (const key of keys) await old.tryPutPoison(key, "op-1", { heartbeatIntervalMs: 1000 });
    const absent = ctx.key("absent");
    // One live key refuses the whole batch.
    const live = ctx.key("live");
    await store.tryPutPoison(live, "op-1", { heartbeatIntervalMs: 1000 });
    await rejectsWith(
      store.forceDeletePoisons([...keys, live], { actor: "a", reason: "r" }),
      HolderAliveError,
      { key: live },
    );
    for (const key of keys) assert.equal(await store.getPoison(key), "op-1");
    // Another holder refuses it when a token is expected.
    const other = ctx.key("other");
    await old.tryPutPoison(other, "op-2");
    const conflict = await rejectsWith(
      store.forceDeletePoisons([...keys, other], {
        actor: "a",
        reason: "r",
        expectedToken: "op-1",
      }),
      PoisonConflictError,
      { key: other, holder: "op-2" },
    );
    assert.deepEqual(
      conflict.conflicts.map((r) => r.key),
      [other],
    );
    for (const key of keys) assert.equal(await store.getPoison(key), "op-1");
    const removed = await store.forceDeletePoisons([...keys, absent], {
      actor: "a",
      reason: "all of op-1",
      expectedToken: "op-1",
    });
    assert.deepEqual(
      removed.map((r) => r.key),
      keys,
    );
    for (const key of keys) {
      assert.equal(await store.getPoison(key), null);
      const [entry] = (await store.auditLog({ key })).entries;
      assert.equal(entry?.action, "force-delete");
      assert.equal(entry?.reason, "all of op-1");
      assert.equal(entry?.token, "op-1");
    }
    assert.deepEqual((await store.auditLog({ key: absent })).entries, []);
  });

  it("forceDeletePoison(s) validate evenIfAlive and the batch", async () => {
    const store = ctx.open();
    await rejectsWith(
      store.forceDeletePoison(ctx.key(), {
        actor: "a",
        reason: "r",
        evenIfAlive: "yes" as unknown as boolean,
      }),
      InvalidArgumentError,
      { argument: "options.evenIfAlive" },
    );
    await rejectsWith(
      store.forceDeletePoisons([], { actor: "a", reason: "r" }),
      InvalidArgumentError,
    );
  });
}
