/**
 * The workload and the checker together catch a real race: a driver that checks and then acts
 * in two steps is found non-linearizable, the memory driver is not.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { createPoisonStore, memoryDriver, type PoisonDriver } from "../../src/index.js";
import { checkHistory } from "../../torture/lin/check.js";
import { runWorkload } from "../../torture/workload.js";

/** The memory driver with a check-then-act race in put: the bug a non-atomic backend has. */
function racyDriver(name: string): PoisonDriver {
  const inner = memoryDriver({ name });
  return {
    ...inner,
    async put(records, audit) {
      const conflicts = [];
      for (const record of records) {
        const held = await inner.get(record.key);
        if (held && held.token !== record.token) conflicts.push(held);
      }
      if (conflicts.length > 0) return { ok: false, conflicts };
      await yieldToEventLoop();
      await inner.remove(
        records.map((record) => record.key),
        null,
      );
      return inner.put(records, audit);
    },
  };
}

async function run(driver: (name: string) => PoisonDriver) {
  const name = `workload-test-${randomUUID()}`;
  const stores = Array.from({ length: 16 }, () => createPoisonStore(driver(name)));
  const { history, stats } = await runWorkload({
    stores,
    operations: 3000,
    keys: 4,
    tokensPerKey: 3,
    seed: 11,
  });
  await Promise.all(stores.map((store) => store.close()));
  return { stats, check: checkHistory(history) };
}

describe("torture workload", () => {
  it("finds no violation on the memory driver, with real contention", async () => {
    const { stats, check } = await run((name) => memoryDriver({ name }));
    assert.equal(stats.operations, 3000);
    assert.deepEqual(stats.anomalies, []);
    assert.ok(stats.conflicts > 300, `only ${stats.conflicts} conflicts`);
    assert.equal(check.ok, true, check.violations.map((v) => v.explanation).join("\n"));
  });

  it("finds the check-then-act race of a non-atomic put", async () => {
    const { check } = await run(racyDriver);
    assert.equal(check.ok, false);
    assert.ok(check.violations.length > 0);
    assert.match(check.violations[0]?.explanation ?? "", /cannot linearize/);
  });
});
