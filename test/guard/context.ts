/** SPEC §5: ctx.markConsistent() and ctx.signal. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  type GuardEvent,
  markCleanPoisons,
  markRetryable,
  OperationPoisonedError,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import { type GuardSuiteContext, rejection } from "./harness.js";

/** Resolves when `signal` aborts; rejects with its reason, as a cancellable call would. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

export function context(ctx: GuardSuiteContext): void {
  it("markConsistent deletes the keys mid-body, and a later failure does not poison", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const keys = [ctx.key(), ctx.key()];
    const failure = new Error("notifying the scheduler failed");
    const caught = await rejection(
      guard.run({ keys, token: ctx.token() }, async (run) => {
        await run.markConsistent();
        for (const key of keys) assert.equal(await store.getPoison(key), null);
        await run.markConsistent(); // idempotent
        throw failure;
      }),
    );
    assert.equal(caught, failure, "rethrown as is, not OperationPoisonedError");
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("after markConsistent, another token may take the keys; the run's end leaves them alone", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const value = await guard.run({ keys: [key], token: ctx.token("first") }, async (run) => {
      await run.markConsistent();
      await store.tryPutPoison(key, "second");
      return "done";
    });
    assert.equal(value, "done");
    assert.equal(await store.getPoison(key), "second");
  });

  it("a retry after markConsistent holds the keys again before the body runs", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const token = ctx.token();
    const heldAtStart: (string | null)[] = [];
    await guard.run({ keys: [key], token }, async (run) => {
      heldAtStart.push(await store.getPoison(key));
      if (run.attempt === 1) {
        await run.markConsistent();
        throw markRetryable(new Error("busy"));
      }
    });
    assert.deepEqual(heldAtStart, [token, token]);
    assert.equal(await store.getPoison(key), null);
  });

  it("ctx.signal aborts with the caller's signal; an aborted run poisons like any failure", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const caller = new AbortController();
    const reason = new Error("operator cancelled the procedure");
    const error = await rejectsWith(
      guard.run({ keys: [key], token: ctx.token(), signal: caller.signal }, async (run) => {
        assert.equal(run.signal.aborted, false);
        setTimeout(() => caller.abort(reason), 10);
        await aborted(run.signal);
      }),
      OperationPoisonedError,
    );
    assert.equal(error.cause, reason);
    assert.equal((await store.inspectPoison(key))?.state, "poisoned");
  });

  it("an aborted run the body marks cleanPoisons deletes its keys", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const caller = new AbortController();
    const caught = await rejection(
      guard.run({ keys: [key], token: ctx.token(), signal: caller.signal }, async (run) => {
        setTimeout(() => caller.abort(), 5);
        try {
          await aborted(run.signal);
        } catch (error) {
          // Nothing was changed yet: the resource is consistent.
          throw markCleanPoisons(new Error("cancelled before any change", { cause: error }));
        }
      }),
    );
    assert.equal((caught as Error).message, "cancelled before any change");
    assert.equal(await store.getPoison(key), null);
  });

  it("an abort during the backoff wait ends the run without another attempt", async () => {
    const store = ctx.open();
    const events: GuardEvent[] = [];
    const guard = ctx.guard(store, {
      retry: { maxAttempts: 5, minDelayMs: 60_000, maxDelayMs: 60_000 },
      onEvent: (e) => events.push(e),
    });
    const key = ctx.key();
    const caller = new AbortController();
    let executions = 0;
    const started = Date.now();
    const error = await rejectsWith(
      guard.run({ keys: [key], token: ctx.token(), signal: caller.signal }, () => {
        executions++;
        setTimeout(() => caller.abort(), 10);
        throw markRetryable(new Error("busy"));
      }),
      OperationPoisonedError,
      { attempts: 1 },
    );
    assert.ok(Date.now() - started < 5_000, "the 60 s backoff was cut short");
    assert.equal(executions, 1);
    assert.equal((error.cause as Error).message, "busy");
    assert.deepEqual(
      events.map((e) => e.type),
      ["started", "retried", "poisoned"],
    );
  });

  it("a signal aborted before the run rejects with its reason and writes nothing", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const reason = new Error("too late");
    let ran = false;
    const caught = await rejection(
      guard.run({ keys: [key], token: ctx.token(), signal: AbortSignal.abort(reason) }, () => {
        ran = true;
      }),
    );
    assert.equal(caught, reason);
    assert.equal(ran, false);
    assert.equal(await store.getPoison(key), null);
  });
}
