/**
 * The guard's model-based test (torture/guard-model.ts) in its short form: concurrent runs over
 * overlapping keys, interleaved store step by store step by fast-check's scheduler.
 * GUARD_MODEL_RUNS and GUARD_MODEL_SEED override the size and seed (to replay a failure).
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { checkGuardModel } from "../../torture/guard-model.js";

const numRuns = Number(process.env.GUARD_MODEL_RUNS ?? 200);
const seed = process.env.GUARD_MODEL_SEED ? Number(process.env.GUARD_MODEL_SEED) : undefined;

it(`guard model: ${numRuns} generated schedules of concurrent runs keep every invariant`, async (t) => {
  const stats = await checkGuardModel({ numRuns, ...(seed === undefined ? {} : { seed }) });
  t.diagnostic(JSON.stringify({ ...stats, elapsedMs: Math.round(stats.elapsedMs) }));
  assert.equal(stats.properties >= numRuns, true);
  assert.ok(stats.poisoned > 0 && stats.refused > 0 && stats.retries > 0, "every path was taken");
  assert.ok(
    stats.losses > 0 && stats.lost > 0,
    "operators cleared keys of live runs, which ended lost",
  );
});
