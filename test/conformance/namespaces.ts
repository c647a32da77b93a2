/** options.namespace: isolation between stores on one backend. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { it } from "node:test";
import { DEFAULT_NAMESPACE, InvalidArgumentError } from "../../src/index.js";
import type { SuiteContext } from "./harness.js";

export function namespaces(ctx: SuiteContext): void {
  it("the default namespace is GreptimeDB's /__procedure_poison/", () => {
    const store = ctx.harness.open();
    assert.equal(DEFAULT_NAMESPACE, "/__procedure_poison/");
    assert.equal(store.namespace, "/__procedure_poison/");
    return store.close();
  });

  it("two stores with different namespaces never see each other's keys", async () => {
    const run = randomUUID();
    const a = ctx.open({ namespace: `/poison-test-a/${run}/` });
    const b = ctx.open({ namespace: `/poison-test-b/${run}/` });
    await a.tryPutPoison("table/1", "ta");
    await b.tryPutPoison("table/1", "tb");
    assert.equal(await a.getPoison("table/1"), "ta");
    assert.equal(await b.getPoison("table/1"), "tb");
    await a.forceDeletePoison("table/1", { actor: "x", reason: "only a" });
    assert.equal(await a.getPoison("table/1"), null);
    assert.equal(await b.getPoison("table/1"), "tb");
    assert.deepEqual(
      (await b.listPoisons()).records.map((r) => [r.key, r.token]),
      [["table/1", "tb"]],
    );
    assert.deepEqual((await b.auditLog()).entries, []);
    assert.equal((await a.auditLog()).entries.length, 1);
    await b.deletePoison("table/1", "tb");
  });

  it("two store objects on one namespace share their keys", async () => {
    const a = ctx.open();
    const b = ctx.open();
    const key = ctx.key();
    await a.tryPutPoison(key, "ta");
    assert.equal(await b.getPoison(key), "ta");
    await b.deletePoison(key, "ta");
    assert.equal(await a.getPoison(key), null);
  });

  it("the namespace must be a well-formed string", () => {
    assert.throws(() => ctx.harness.open({ namespace: 5 as never }), InvalidArgumentError);
    assert.throws(() => ctx.harness.open({ namespace: "a\u0000" }), InvalidArgumentError);
    assert.throws(() => ctx.harness.open({ timeoutMs: 0 }), InvalidArgumentError);
  });
}
