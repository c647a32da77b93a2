/** SPEC §3: the record written with a key, inspectPoison and markPoisoned. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { PoisonConflictError, PoisonNotFoundError } from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function records(ctx: SuiteContext): void {
  it("a put writes the record atomically with the key", async () => {
    const store = ctx.open();
    const key = ctx.key();
    const data = { shards: [1, 2, 3], note: "über 表 🙂", nested: { ok: true, n: null } };
    await store.tryPutPoison(key, "t1", { operation: "alter-table", owner: "host-a:42", data });
    const record = await store.inspectPoison(key);
    assert.ok(record);
    assert.equal(record.key, key);
    assert.equal(record.token, "t1");
    assert.equal(record.state, "in-progress");
    assert.equal(record.operation, "alter-table");
    assert.equal(record.owner, "host-a:42");
    assert.deepEqual(record.data, data);
    assert.match(record.createdAt, ISO_UTC);
    assert.equal(record.updatedAt, record.createdAt);
    assert.equal(record.error, undefined);
  });

  it("a put without info stores no optional fields", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t1");
    const record = await store.inspectPoison(key);
    assert.ok(record);
    assert.deepEqual(Object.keys(record).sort(), [
      "createdAt",
      "key",
      "state",
      "token",
      "updatedAt",
    ]);
  });

  it("data is stored as its JSON round trip", async () => {
    const store = ctx.open();
    const key = ctx.key();
    const when = new Date("2026-01-02T03:04:05.000Z");
    await store.tryPutPoison(key, "t1", { data: { when, skip: undefined, list: [1, "two"] } });
    assert.deepEqual((await store.inspectPoison(key))?.data, {
      when: when.toISOString(),
      list: [1, "two"],
    });
  });

  it("timestamps come from the store's clock, in UTC", async () => {
    const fixed = new Date("2030-05-06T07:08:09.123Z");
    const store = ctx.open({ clock: () => fixed });
    const key = ctx.key();
    await store.tryPutPoison(key, "t1");
    const record = await store.inspectPoison(key);
    assert.equal(record?.createdAt, "2030-05-06T07:08:09.123Z");
  });

  it("an idempotent put leaves the first record as it was", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t1", { operation: "first", data: { v: 1 } });
    await store.tryPutPoison(key, "t1", { operation: "second", data: { v: 2 } });
    const record = await store.inspectPoison(key);
    assert.equal(record?.operation, "first");
    assert.deepEqual(record?.data, { v: 1 });
  });

  it("inspect of an absent key is null", async () => {
    const store = ctx.open();
    assert.equal(await store.inspectPoison(ctx.key()), null);
  });

  it("markPoisoned records the error and turns the state to poisoned", async () => {
    const times = [new Date("2030-01-01T00:00:00.000Z"), new Date("2030-01-01T00:00:05.000Z")];
    let i = 0;
    const store = ctx.open({ clock: () => times[Math.min(i++, 1)] as Date });
    const key = ctx.key();
    await store.tryPutPoison(key, "t1", { operation: "migrate" });
    const failure = new RangeError("shard 7 did not answer");
    const marked = await store.markPoisoned(key, "t1", failure);
    assert.equal(marked.state, "poisoned");
    assert.equal(marked.key, key);
    const record = await store.inspectPoison(key);
    assert.deepEqual(record, marked);
    assert.equal(record?.error?.name, "RangeError");
    assert.equal(record?.error?.message, "shard 7 did not answer");
    assert.match(record?.error?.stack ?? "", /shard 7 did not answer/);
    assert.equal(record?.error?.at, "2030-01-01T00:00:05.000Z");
    assert.equal(record?.updatedAt, "2030-01-01T00:00:05.000Z");
    assert.equal(record?.createdAt, "2030-01-01T00:00:00.000Z");
    assert.equal(record?.operation, "migrate");
    assert.equal(await store.getPoison(key), "t1");
  });

  it("markPoisoned accepts anything thrown, not only errors", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t1");
    await store.markPoisoned(key, "t1", "plain string \u0000 with NUL");
    const record = await store.inspectPoison(key);
    assert.equal(record?.error?.name, "Error");
    assert.match(record?.error?.message ?? "", /^plain string/);
    await store.markPoisoned(key, "t1", { message: "an object", name: "Custom" });
    assert.equal((await store.inspectPoison(key))?.error?.name, "Custom");
  });

  it("markPoisoned is token-checked and changes nothing on a conflict", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "owner");
    const before = await store.inspectPoison(key);
    await rejectsWith(store.markPoisoned(key, "intruder", new Error("x")), PoisonConflictError, {
      key,
      token: "intruder",
      holder: "owner",
    });
    assert.deepEqual(await store.inspectPoison(key), before);
  });

  it("markPoisoned on an absent key rejects with PoisonNotFoundError", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await rejectsWith(store.markPoisoned(key, "t1", new Error("x")), PoisonNotFoundError, {
      key,
      code: "POISON_NOT_FOUND",
    });
    assert.equal(await store.getPoison(key), null);
  });

  it("a poisoned key still conflicts with other tokens and is deleted by its owner", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "owner");
    await store.markPoisoned(key, "owner", new Error("boom"));
    await rejectsWith(store.tryPutPoison(key, "next"), PoisonConflictError, { holder: "owner" });
    await store.tryPutPoison(key, "owner");
    assert.equal((await store.inspectPoison(key))?.state, "poisoned");
    await store.deletePoison(key, "owner");
    assert.equal(await store.getPoison(key), null);
  });
}
