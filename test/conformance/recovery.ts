/** forceDeletePoison, manual puts and deletes, and the audit log. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { InvalidArgumentError, PoisonConflictError } from "../../src/index.js";
import { rejectsWith, type SuiteContext } from "./harness.js";

export function recovery(ctx: SuiteContext): void {
  it("forceDeletePoison removes the key whoever holds it and audits it in the same step", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "dead-owner", { operation: "alter-table" });
    await store.markPoisoned(key, "dead-owner", new Error("half-way"));
    const removed = await store.forceDeletePoison(key, {
      actor: "alice",
      reason: "repaired shard 7 by hand",
    });
    assert.equal(removed?.token, "dead-owner");
    assert.equal(removed?.state, "poisoned");
    assert.equal(removed?.key, key);
    assert.equal(await store.getPoison(key), null);
    const { entries } = await store.auditLog({ key });
    assert.equal(entries.length, 1);
    const entry = entries[0];
    assert.equal(entry?.action, "force-delete");
    assert.equal(entry?.key, key);
    assert.equal(entry?.actor, "alice");
    assert.equal(entry?.reason, "repaired shard 7 by hand");
    assert.equal(entry?.token, undefined);
    assert.deepEqual(entry?.record, removed);
    assert.match(entry?.at ?? "", /Z$/);
  });

  it("forceDeletePoison with expectedToken refuses a different holder and audits nothing", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "actual");
    await rejectsWith(
      store.forceDeletePoison(key, { actor: "bob", reason: "r", expectedToken: "expected" }),
      PoisonConflictError,
      { key, token: "expected", holder: "actual" },
    );
    assert.equal(await store.getPoison(key), "actual");
    assert.deepEqual((await store.auditLog({ key })).entries, []);
    const removed = await store.forceDeletePoison(key, {
      actor: "bob",
      reason: "r",
      expectedToken: "actual",
    });
    assert.equal(removed?.token, "actual");
    assert.equal((await store.auditLog({ key })).entries[0]?.token, "actual");
  });

  it("forceDeletePoison of an absent key resolves null and audits nothing", async () => {
    const store = ctx.open();
    const key = ctx.key();
    assert.equal(await store.forceDeletePoison(key, { actor: "a", reason: "r" }), null);
    assert.deepEqual((await store.auditLog({ key })).entries, []);
  });

  it("forceDeletePoison requires an actor and a reason", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "t");
    await rejectsWith(store.forceDeletePoison(key, { actor: "a" } as never), InvalidArgumentError, {
      argument: "options.reason",
    });
    await rejectsWith(
      store.forceDeletePoison(key, { actor: "", reason: "r" }),
      InvalidArgumentError,
      {
        argument: "options.actor",
      },
    );
    await rejectsWith(store.forceDeletePoison(key, undefined as never), InvalidArgumentError, {
      argument: "options",
    });
    assert.equal(await store.getPoison(key), "t");
  });

  it("manual puts and deletes are audited; ordinary ones are not", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await store.tryPutPoison(key, "ops-1", {
      audit: { actor: "carol", reason: "maintenance window" },
    });
    await store.tryPutPoison(key, "ops-1", { audit: { actor: "carol", reason: "again" } });
    await store.deletePoison(key, "ops-1", {
      audit: { actor: "carol", reason: "maintenance done" },
    });
    const plain = ctx.key();
    await store.tryPutPoison(plain, "t");
    await store.deletePoison(plain, "t");
    const { entries } = await store.auditLog({ key });
    assert.deepEqual(
      entries.map((e) => [e.action, e.actor, e.reason, e.token]),
      [
        ["delete", "carol", "maintenance done", "ops-1"],
        ["put", "carol", "maintenance window", "ops-1"],
      ],
      "newest first; the idempotent second put wrote nothing",
    );
    assert.equal(entries[1]?.record?.token, "ops-1");
    assert.deepEqual((await store.auditLog({ key: plain })).entries, []);
  });

  it("the audit log pages newest first and filters by key", async () => {
    const store = ctx.open({ namespace: `${ctx.namespace}${ctx.key("audit-ns")}/` });
    for (const n of [1, 2, 3, 4, 5]) {
      await store.tryPutPoison(`k${n}`, "t");
      await store.forceDeletePoison(`k${n}`, { actor: "ops", reason: `r${n}` });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.auditLog({ limit: 2, cursor });
      seen.push(...page.entries.map((e) => e.reason));
      cursor = page.cursor;
    } while (cursor !== null);
    assert.deepEqual(seen, ["r5", "r4", "r3", "r2", "r1"]);
    assert.deepEqual(
      (await store.auditLog({ key: "k3" })).entries.map((e) => e.reason),
      ["r3"],
    );
    await rejectsWith(store.auditLog({ cursor: "junk" }), InvalidArgumentError, {
      argument: "options.cursor",
    });
    await rejectsWith(store.auditLog({ limit: 0 }), InvalidArgumentError, {
      argument: "options.limit",
    });
  });

  it("the audit log is durable with the backend", async (t) => {
    if (!ctx.harness.durable) {
      t.skip("this backend keeps nothing after its stores close");
      return;
    }
    const namespace = `${ctx.namespace}${ctx.key("durable")}/`;
    const first = ctx.harness.open({ namespace });
    await first.tryPutPoison("k", "t");
    await first.forceDeletePoison("k", { actor: "dave", reason: "after restart" });
    await first.close();
    const second = ctx.open({ namespace });
    assert.deepEqual(
      (await second.auditLog()).entries.map((e) => [e.key, e.actor, e.reason]),
      [["k", "dave", "after restart"]],
    );
  });
}
