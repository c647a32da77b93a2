/** Racing runs over overlapping key sets: at most one body per key, all or none, nothing left. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { ResourcePoisonedError } from "../../src/index.js";
import type { GuardSuiteContext } from "./harness.js";

const RUNS = 32;
const POOL = 8;
const KEYS_PER_RUN = 3;

/** A small deterministic PRNG, so a failing interleaving's key sets can be reproduced. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function concurrency(ctx: GuardSuiteContext): void {
  it(`${RUNS} runs racing over overlapping key sets: one body per key at a time, no key left behind`, async (t) => {
    // Two store objects, so networked backends race over separate connections too.
    const stores = [ctx.open(), ctx.open()];
    const guards = stores.map((store) => ctx.guard(store));
    const random = mulberry32(20261127);
    const pool = Array.from({ length: POOL }, (_, i) => ctx.key(`shard-${i}`));
    const sets = Array.from({ length: RUNS }, () => {
      const picked = new Set<string>();
      while (picked.size < KEYS_PER_RUN) picked.add(pool[Math.floor(random() * POOL)] as string);
      return [...picked];
    });
    const occupant = new Map<string, number>();
    let maxConcurrentBodies = 0;
    let running = 0;
    let refusals = 0;

    const runner = async (i: number) => {
      const keys = sets[i] as string[];
      const token = `racer-${i}`;
      const guard = guards[i % 2] as (typeof guards)[0];
      const store = stores[(i + 1) % 2] as (typeof stores)[0];
      for (let round = 0; ; round++) {
        try {
          await guard.run({ keys, token, operation: "race" }, async () => {
            for (const key of keys) {
              const other = occupant.get(key);
              assert.equal(other, undefined, `racer ${i} entered ${key} held by racer ${other}`);
              occupant.set(key, i);
            }
            running++;
            maxConcurrentBodies = Math.max(maxConcurrentBodies, running);
            await new Promise((resolve) => setTimeout(resolve, 2 + Math.floor(random() * 8)));
            running--;
            for (const key of keys) occupant.delete(key);
          });
          return round;
        } catch (error) {
          if (!(error instanceof ResourcePoisonedError)) throw error;
          refusals++;
          assert.notEqual(error.record.token, token);
          // All or none: a refused run holds none of its keys. Nobody else writes this token,
          // so this check is exact despite the race.
          for (const key of keys) assert.notEqual(await store.getPoison(key), token);
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 5)));
          if (round > 2000) assert.fail(`racer ${i} starved`);
        }
      }
    };

    await Promise.all(Array.from({ length: RUNS }, (_, i) => runner(i)));
    assert.ok(refusals > 0, "the runs did contend");
    // Whether disjoint runs overlapped depends on the backend's latency; report it, the
    // assertions above are the contract.
    t.diagnostic(`max bodies at once: ${maxConcurrentBodies}, refusals: ${refusals}`);
    for (const key of pool)
      assert.equal(await stores[0]?.getPoison(key), null, `${key} left behind`);
    const { records } = await (stores[0] as (typeof stores)[0]).listPoisons({ prefix: "shard-" });
    assert.deepEqual(records, []);
  });
}
