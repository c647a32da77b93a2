/** Races: exactly one winner, wrong tokens never delete, batches are all or none. */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { PoisonStoreClient } from "../../src/index.js";
import { PoisonConflictError } from "../../src/index.js";
import type { SuiteContext } from "./harness.js";

const CONTENDERS = 64;
const ROUNDS = 200;

export function concurrency(ctx: SuiteContext): void {
  it(`${CONTENDERS} concurrent puts with distinct tokens: exactly one wins, ${ROUNDS} rounds`, async () => {
    // Two store objects, so networked backends race over separate connections too.
    const stores = [ctx.open(), ctx.open()];
    for (let round = 0; round < ROUNDS; round++) {
      const key = ctx.key(`race-${round}`);
      const tokens = Array.from({ length: CONTENDERS }, (_, i) => `r${round}-c${i}`);
      const results = await Promise.allSettled(
        tokens.map((token, i) => (stores[i % 2] as (typeof stores)[0]).tryPutPoison(key, token)),
      );
      const winners = tokens.filter((_, i) => results[i]?.status === "fulfilled");
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
      const winner = winners[0] as string;
      assert.equal(await stores[0]?.getPoison(key), winner);
      results.forEach((result, i) => {
        if (result.status === "fulfilled") return;
        const error = result.reason as PoisonConflictError;
        assert.ok(error instanceof PoisonConflictError, `round ${round}: ${String(error)}`);
        assert.equal(error.holder, winner);
        assert.equal(error.token, tokens[i]);
      });
    }
  });

  it(`${CONTENDERS} concurrent deletes with wrong tokens never remove the key`, async () => {
    const stores = [ctx.open(), ctx.open()];
    for (let round = 0; round < 20; round++) {
      const key = ctx.key(`wrong-delete-${round}`);
      await stores[0]?.tryPutPoison(key, "owner");
      const results = await Promise.allSettled(
        Array.from({ length: CONTENDERS }, (_, i) =>
          (stores[i % 2] as (typeof stores)[0]).deletePoison(key, `wrong-${i}`),
        ),
      );
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(result.reason instanceof PoisonConflictError);
        assert.equal(result.reason.holder, "owner");
      }
      assert.equal(await stores[1]?.getPoison(key), "owner");
      await stores[1]?.deletePoison(key, "owner");
    }
  });

  it("concurrent puts with the same token all succeed", async () => {
    const store = ctx.open();
    const key = ctx.key();
    const results = await Promise.allSettled(
      Array.from({ length: CONTENDERS }, () => store.tryPutPoison(key, "same")),
    );
    assert.ok(results.every((r) => r.status === "fulfilled"));
    assert.equal(await store.getPoison(key), "same");
  });

  it("a batch put is all or none: one held key leaves the others absent", async () => {
    const store = ctx.open();
    const [a, b, c] = [ctx.key("a"), ctx.key("b"), ctx.key("c")];
    await store.tryPutPoison(b, "other");
    await assert.rejects(store.tryPutPoisons([a, b, c], "mine"), (error: unknown) => {
      assert.ok(error instanceof PoisonConflictError);
      assert.equal(error.key, b);
      assert.equal(error.holder, "other");
      return true;
    });
    assert.equal(await store.getPoison(a), null);
    assert.equal(await store.getPoison(c), null);
    const first = await store.tryPutPoisons([a, c], "mine", { operation: "op" });
    assert.deepEqual(
      first.records.map((r) => [r.key, r.token, r.operation]),
      [
        [a, "mine", "op"],
        [c, "mine", "op"],
      ],
    );
    assert.deepEqual(first.created, [a, c]);
    // Again with one more key: only that one is written; the others are reported as they stand.
    const d = ctx.key("d");
    const again = await store.tryPutPoisons([c, d, a], "mine", { operation: "again" });
    assert.deepEqual(again.created, [d]);
    assert.deepEqual(
      again.records.map((r) => [r.key, r.operation]),
      [
        [c, "op"],
        [d, "again"],
        [a, "op"],
      ],
    );
    const none = await store.tryPutPoisons([a, d], "mine");
    assert.deepEqual(none.created, []);
  });

  it("a batch delete is all or none", async () => {
    const store = ctx.open();
    const [a, b] = [ctx.key("a"), ctx.key("b")];
    await store.tryPutPoisons([a], "mine");
    await store.tryPutPoison(b, "other");
    await assert.rejects(store.deletePoisons([a, b], "mine"), PoisonConflictError);
    assert.equal(await store.getPoison(a), "mine");
    await store.deletePoisons([a, ctx.key("absent")], "mine");
    assert.equal(await store.getPoison(a), null);
    assert.equal(await store.getPoison(b), "other");
  });

  it("racing batches over overlapping keys: winners are disjoint, losers leave nothing", async () => {
    const stores = [ctx.open(), ctx.open()];
    for (let round = 0; round < 10; round++) {
      const pool = Array.from({ length: 8 }, (_, i) => ctx.key(`pool-${round}-${i}`));
      const runs = Array.from({ length: 32 }, (_, i) => {
        const size = 1 + (i % 3);
        return {
          token: `run-${round}-${i}`,
          keys: Array.from({ length: size }, (_, j) => pool[(i * 3 + j * 5) % 8] as string),
        };
      });
      const results = await Promise.allSettled(
        runs.map((run, i) =>
          (stores[i % 2] as (typeof stores)[0]).tryPutPoisons([...new Set(run.keys)], run.token),
        ),
      );
      const held = new Map<string, string>();
      results.forEach((result, i) => {
        const run = runs[i] as (typeof runs)[0];
        if (result.status === "rejected") {
          assert.ok(result.reason instanceof PoisonConflictError);
          return;
        }
        for (const key of run.keys) {
          const other = held.get(key);
          assert.ok(
            other === undefined || other === run.token,
            `${key} won by ${other} and ${run.token}`,
          );
          held.set(key, run.token);
        }
      });
      assert.ok(held.size > 0, "some run must win");
      for (const key of pool)
        assert.equal(await stores[0]?.getPoison(key), held.get(key) ?? null, key);
    }
  });

  it("audited writes on distinct keys never fail for each other: 64 puts, 64 forced deletes (issue 11)", async () => {
    const stores = [ctx.open(), ctx.open()];
    const keys = Array.from({ length: 64 }, (_, i) => ctx.key(`audited-${i}`));
    const audit = { actor: "load", reason: "64 at once" };
    const puts = await Promise.allSettled(
      keys.map((key, i) =>
        (stores[i % 2] as PoisonStoreClient).tryPutPoison(key, `t${i}`, { audit }),
      ),
    );
    const putFailures = puts.filter((r) => r.status === "rejected");
    assert.deepEqual(
      putFailures.map((r) => String((r as PromiseRejectedResult).reason)),
      [],
      "every audited put on its own key succeeds",
    );
    const deletes = await Promise.allSettled(
      keys.map((key, i) => (stores[i % 2] as PoisonStoreClient).forceDeletePoison(key, audit)),
    );
    assert.deepEqual(
      deletes
        .filter((r) => r.status === "rejected")
        .map((r) => String((r as PromiseRejectedResult).reason)),
      [],
      "every forced delete of its own key succeeds",
    );
    for (const key of keys) {
      assert.equal(await stores[0]?.getPoison(key), null);
      const entries = (await stores[0]?.auditLog({ key }))?.entries ?? [];
      assert.deepEqual(
        entries.map((e) => e.action),
        ["force-delete", "put"],
        "both writes audited, newest first",
      );
    }
  });
}
