/** SPEC §2: put, delete, get and their conflicts. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  BackendUnavailableError,
  InvalidArgumentError,
  PoisonConflictError,
  PoisonStoreError,
} from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

export function coreContract(ctx: SuiteContext): void {
  it("put on an absent key writes it, owned by the token", async () => {
    const store = ctx.open();
    const key = ctx.key();
    assert.equal(await store.getPoison(key), null);
    await store.tryPutPoison(key, "t1");
    assert.equal(await store.getPoison(key), "t1");
  });

  it("put again with the same token succeeds and changes nothing", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t1");
    const before = await store.inspectPoison(key);
    await store.tryPutPoison(key, "t1");
    assert.deepEqual(await store.inspectPoison(key), before);
  });

  it("put with another token rejects with PoisonConflictError naming both, and changes nothing", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "owner");
    const before = await store.inspectPoison(key);
    const error = await rejectsWith(store.tryPutPoison(key, "intruder"), PoisonConflictError, {
      key,
      token: "intruder",
      holder: "owner",
      code: "POISON_CONFLICT",
    });
    assert.match(error.message, /held by token/);
    assert.deepEqual(await store.inspectPoison(key), before);
  });

  it("delete by the owner removes the key", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t1");
    await store.deletePoison(key, "t1");
    assert.equal(await store.getPoison(key), null);
    assert.equal(await store.inspectPoison(key), null);
  });

  it("delete of an absent key succeeds", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.deletePoison(key, "anyone");
    await store.tryPutPoison(key, "t1");
    await store.deletePoison(key, "t1");
    await store.deletePoison(key, "t1");
    assert.equal(await store.getPoison(key), null);
  });

  it("delete with another token rejects with PoisonConflictError and the key stays", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "owner");
    await rejectsWith(store.deletePoison(key, "intruder"), PoisonConflictError, {
      key,
      token: "intruder",
      holder: "owner",
    });
    assert.equal(await store.getPoison(key), "owner");
  });

  it("after the owner deletes, another token can put", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "first");
    await store.deletePoison(key, "first");
    await store.tryPutPoison(key, "second");
    assert.equal(await store.getPoison(key), "second");
  });

  it("keys are independent of each other", async () => {
    const store = ctx.open();
    const a = ctx.key("a");
    const b = ctx.key("b");
    await store.tryPutPoison(a, "ta");
    await store.tryPutPoison(b, "tb");
    await store.deletePoison(a, "ta");
    assert.equal(await store.getPoison(a), null);
    assert.equal(await store.getPoison(b), "tb");
  });

  it("a key that is a prefix of another is a different key", async () => {
    const store = ctx.open();
    const long = ctx.key("p");
    const short = long.slice(0, -1);
    await store.tryPutPoison(long, "t-long");
    assert.equal(await store.getPoison(short), null);
    await store.tryPutPoison(short, "t-short");
    assert.equal(await store.getPoison(long), "t-long");
    assert.equal(await store.getPoison(short), "t-short");
  });

  it("error classes carry stable codes and share PoisonStoreError", () => {
    const conflict = new PoisonConflictError("k", "t", "h");
    const invalid = new InvalidArgumentError("key", "must not be empty");
    const down = new BackendUnavailableError("x", "down", new Error("cause"));
    assert.equal(conflict.code, "POISON_CONFLICT");
    assert.equal(invalid.code, "INVALID_ARGUMENT");
    assert.equal(down.code, "BACKEND_UNAVAILABLE");
    for (const error of [conflict, invalid, down]) assert.ok(error instanceof PoisonStoreError);
    assert.equal(down.backend, "x");
    assert.equal((down.cause as Error).message, "cause");
    assert.equal(conflict.name, "PoisonConflictError");
  });
}
