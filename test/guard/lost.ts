/**
 * SPEC §7: a run that loses a key stops; a live run cannot be force-cleared by accident; a
 * settled context changes nothing; whatever the body throws, the keys end poisoned.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  type GuardEvent,
  HolderAliveError,
  OperationPoisonedError,
  PoisonLostError,
  RunSettledError,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import { revokedProxy, trappingProxy } from "../support/hostile.js";
import type { GuardSuiteContext } from "./harness.js";

const INTERVAL_MS = 60;
/** A heartbeat round trip on a loaded machine, on top of the interval. */
const SLACK_MS = 400;

/** Who is inside a body, per key, and the worst overlap seen. */
class Occupancy {
  readonly #inside = new Map<string, Map<string, number>>();
  maxTogether = 0;
  /** The longest time two bodies were inside one key together, in ms. */
  maxOverlapMs = 0;

  enter(key: string, who: string): void {
    const now = performance.now();
    const inside = this.#inside.get(key) ?? new Map<string, number>();
    inside.set(who, now);
    this.#inside.set(key, inside);
    this.maxTogether = Math.max(this.maxTogether, inside.size);
  }

  leave(key: string, who: string): void {
    const inside = this.#inside.get(key);
    const since = inside?.get(who);
    inside?.delete(who);
    if (inside && since !== undefined && inside.size > 0) {
      // Someone else was inside too: they overlapped since the later of the two entries.
      const others = Math.max(...inside.values());
      this.maxOverlapMs = Math.max(this.maxOverlapMs, performance.now() - Math.max(since, others));
    }
  }
}

/** A body that works on `keys` in small steps until its signal aborts. */
function worker(occupancy: Occupancy, who: string, keys: readonly string[]) {
  return async (run: { signal: AbortSignal }) => {
    for (const key of keys) occupancy.enter(key, who);
    try {
      while (!run.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 2));
    } finally {
      for (const key of keys) occupancy.leave(key, who);
    }
    return who;
  };
}

function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`condition not met within ${ms} ms`));
      setTimeout(poll, 2);
    };
    poll();
  });
}

export function lost(ctx: GuardSuiteContext): void {
  it("the accident: a live run cannot be force-cleared; with evenIfAlive it stops within one interval", async () => {
    const store = ctx.open();
    const operator = ctx.open();
    const events: GuardEvent[] = [];
    const guard = ctx.guard(store, {
      heartbeatIntervalMs: INTERVAL_MS,
      onEvent: (e) => events.push(e),
    });
    const key = ctx.key("table");
    const occupancy = new Occupancy();
    let signal: AbortSignal | undefined;
    const first = guard.run({ keys: [key], token: "run-a", operation: "alter" }, (run) => {
      signal = run.signal;
      return worker(occupancy, "a", [key])(run);
    });
    const outcome = first.then(
      () => null,
      (error: unknown) => error,
    );
    await until(() => signal !== undefined);
    // Alive and heartbeating: the operator is refused, and nothing changes.
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS * 2));
    const refused = await rejectsWith(
      operator.forceDeletePoison(key, { actor: "oncall", reason: "looks stuck" }),
      HolderAliveError,
      { key },
    );
    assert.equal(refused.record.token, "run-a");
    assert.equal(signal?.aborted, false);
    assert.equal(await operator.getPoison(key), "run-a");

    // The override: the key goes, and the run notices at its next heartbeat.
    const clearedAt = performance.now();
    await operator.forceDeletePoison(key, { actor: "oncall", reason: "wedged", evenIfAlive: true });
    // A second operation starts at once, as an impatient scheduler would.
    const second = ctx.guard(ctx.open()).run({ keys: [key], token: "run-b" }, async (run) => {
      await worker(occupancy, "b", [key])({ signal: AbortSignal.timeout(INTERVAL_MS * 3) });
      return run.token;
    });
    await until(() => signal?.aborted === true);
    const detectedMs = performance.now() - clearedAt;
    assert.ok(
      detectedMs < INTERVAL_MS + SLACK_MS,
      `the run noticed the loss after ${Math.round(detectedMs)} ms (interval ${INTERVAL_MS} ms)`,
    );
    assert.ok(signal?.reason instanceof PoisonLostError);
    const error = await outcome;
    assert.ok(error instanceof PoisonLostError, `run rejected with ${String(error)}`);
    assert.equal(error.code, "POISON_LOST");
    assert.equal(error.key, key);
    assert.equal(error.token, "run-a");
    assert.equal(await second, "run-b");
    // The documented window: two bodies overlap only until the lost run sees its loss.
    assert.ok(
      occupancy.maxOverlapMs < INTERVAL_MS + SLACK_MS,
      `bodies overlapped for ${Math.round(occupancy.maxOverlapMs)} ms`,
    );
    const lostEvent = events.find((e) => e.type === "lost");
    assert.ok(lostEvent && lostEvent.type === "lost" && lostEvent.key === key);
    assert.ok(
      !events.some((e) => e.type === "heartbeat-failed"),
      "a loss is not a failed heartbeat",
    );
    // The lost run wrote nothing after its loss: the second run's key came and went cleanly.
    assert.equal(await operator.getPoison(key), null);
    const [entry] = (await operator.auditLog({ key })).entries;
    assert.equal(entry?.evenIfAlive, true);
  });

  it("an operator who waits for the lost run to stop never has two bodies on one key", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store, { heartbeatIntervalMs: INTERVAL_MS });
    const key = ctx.key();
    const occupancy = new Occupancy();
    let signal: AbortSignal | undefined;
    const first = guard
      .run({ keys: [key], token: "run-a" }, (run) => {
        signal = run.signal;
        return worker(occupancy, "a", [key])(run);
      })
      .catch((error: unknown) => error);
    await until(() => signal !== undefined);
    await store.forceDeletePoison(key, { actor: "oncall", reason: "r", evenIfAlive: true });
    assert.ok((await first) instanceof PoisonLostError);
    await ctx.guard(store).run({ keys: [key], token: "run-b" }, async () => {
      occupancy.enter(key, "b");
      occupancy.leave(key, "b");
    });
    assert.equal(occupancy.maxTogether, 1);
  });

  it("keys still held are poisoned; a key taken over is never written again", async () => {
    const store = ctx.open();
    const operator = ctx.open();
    const guard = ctx.guard(store, { heartbeatIntervalMs: INTERVAL_MS });
    const [taken, kept] = [ctx.key("taken"), ctx.key("kept")];
    let signal: AbortSignal | undefined;
    const run = guard
      .run({ keys: [taken, kept], token: "run-a", operation: "migrate" }, async (ctxRun) => {
        signal = ctxRun.signal;
        await new Promise((_, reject) =>
          ctxRun.signal.addEventListener("abort", () => reject(new Error("interrupted")), {
            once: true,
          }),
        );
      })
      .catch((error: unknown) => error);
    await until(() => signal !== undefined);
    await operator.forceDeletePoison(taken, { actor: "oncall", reason: "r", evenIfAlive: true });
    await operator.tryPutPoison(taken, "run-c", { operation: "other" });
    const before = await operator.inspectPoison(taken);
    const error = await run;
    assert.ok(error instanceof PoisonLostError, String(error));
    assert.equal(error.key, taken);
    // A heartbeat between the operator's delete and its put finds the key absent (no holder);
    // one after the put finds run-c. Either way the run never names anyone else.
    if (error.holder !== null) assert.equal(error.holder.token, "run-c");
    assert.deepEqual(await operator.inspectPoison(taken), before, "the taken key is untouched");
    const still = await operator.inspectPoison(kept);
    assert.equal(still?.token, "run-a");
    assert.equal(still?.state, "poisoned");
    assert.equal(still?.error?.message, "interrupted");
  });

  it("ctx.assertHeld checks every key in one step, and rejects once one is gone", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const keys = [ctx.key(), ctx.key()];
    const caught = await guard
      .run({ keys, token: "run-a" }, async (run) => {
        const before = await store.inspectPoison(keys[1] as string);
        await run.assertHeld();
        const after = await store.inspectPoison(keys[1] as string);
        assert.ok((after?.heartbeatAt ?? "") >= (before?.heartbeatAt ?? ""), "refreshed");
        await store.forceDeletePoison(keys[1] as string, {
          actor: "oncall",
          reason: "r",
          evenIfAlive: true,
        });
        const error = await rejectsWith(run.assertHeld(), PoisonLostError, {
          key: keys[1],
          holder: null,
        });
        assert.equal(run.signal.aborted, true);
        assert.equal(run.signal.reason, error);
        return "irreversible step skipped";
      })
      .catch((error: unknown) => error);
    assert.ok(caught instanceof PoisonLostError);
    assert.equal((await store.inspectPoison(keys[0] as string))?.state, "poisoned");
    assert.equal(await store.getPoison(keys[1] as string), null);
  });

  it("a context whose run settled refuses every method and changes nothing (issue 11)", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key("db");
    let saved: { markConsistent(): Promise<void>; assertHeld(): Promise<void> } | undefined;
    await rejectsWith(
      guard.run({ keys: [key], token: "op-1" }, async (run) => {
        saved = run;
        throw new Error("half-altered");
      }),
      OperationPoisonedError,
    );
    const before = await store.inspectPoison(key);
    assert.equal(before?.state, "poisoned");
    await rejectsWith((saved ?? assert.fail()).markConsistent(), RunSettledError, {
      code: "RUN_SETTLED",
    });
    await rejectsWith((saved ?? assert.fail()).assertHeld(), RunSettledError);
    assert.deepEqual(await store.inspectPoison(key), before, "the poisoned key stays as it was");
    // A run by another token is still refused.
    await assert.rejects(ctx.guard(store).run({ keys: [key], token: "op-2" }, () => "ran"));
  });

  it("an attempt's context is dead once the attempt settled, even while the run retries", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    let first: { markConsistent(): Promise<void> } | undefined;
    const value = await guard.run({ keys: [key], token: ctx.token() }, async (run) => {
      if (run.attempt === 1) {
        first = run;
        const error = new Error("lock timeout") as Error & { retryable: boolean };
        error.retryable = true;
        throw error;
      }
      await rejectsWith((first ?? assert.fail()).markConsistent(), RunSettledError);
      assert.notEqual(await store.getPoison(key), null, "the stale branch released nothing");
      return run.attempt;
    });
    assert.equal(value, 2);
  });

  it("whatever the body throws (a hostile Proxy, a revoked one), the keys end poisoned (issue 11)", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    for (const thrown of [trappingProxy(), revokedProxy(), Symbol("odd"), undefined]) {
      const key = ctx.key();
      const error = await rejectsWith(
        guard.run({ keys: [key], token: ctx.token() }, () => {
          throw thrown;
        }),
        OperationPoisonedError,
      );
      assert.equal(typeof error.message, "string");
      const record = await store.inspectPoison(key);
      assert.equal(record?.state, "poisoned", `keys end poisoned for ${typeof thrown}`);
      assert.equal(typeof record?.error?.message, "string");
    }
  });
}
