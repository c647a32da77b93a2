/** Store failures inside the guard are never silent, and never free a resource. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  BackendUnavailableError,
  type GuardEvent,
  markCleanPoisons,
  OperationPoisonedError,
  PoisonCleanupError,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import type { GuardSuiteContext } from "./harness.js";

export function faults(ctx: GuardSuiteContext): void {
  it("cleanup after success cannot reach the backend: typed error, and the same token finishes it later", async () => {
    const { store, faults } = ctx.openFaulty();
    const events: GuardEvent[] = [];
    const guard = ctx.guard(store, { onEvent: (e) => events.push(e) });
    const keys = [ctx.key(), ctx.key()];
    const token = ctx.token();
    const error = await rejectsWith(
      guard.run({ keys, token }, () => {
        faults.remove = true; // the backend goes away while the body finishes
        return { rows: 42 };
      }),
      PoisonCleanupError,
      { code: "POISON_CLEANUP_FAILED", token, outcome: "succeeded", keys },
    );
    assert.deepEqual(error.result, { rows: 42 });
    assert.ok(error.cause instanceof BackendUnavailableError);
    assert.match(error.message, /succeeded/);
    assert.match(error.message, /may still be present/);
    assert.match(error.message, /later run with the same token finishes the cleanup/);
    assert.deepEqual(
      events.map((e) => e.type),
      ["started", "cleanup-failed"],
    );
    for (const key of keys) {
      const record = await store.inspectPoison(key);
      assert.equal(record?.token, token);
      assert.equal(record?.state, "in-progress", "not poisoned: the body succeeded");
    }

    faults.remove = false;
    const resumed = await guard.run({ keys, token }, (run) => run.resumed);
    assert.equal(resumed, true);
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("cleanup after an error marked cleanPoisons that cannot reach the backend is typed too", async () => {
    const { store, faults } = ctx.openFaulty();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const token = ctx.token();
    const bodyError = markCleanPoisons(new Error("nothing changed"));
    const error = await rejectsWith(
      guard.run({ keys: [key], token }, () => {
        faults.remove = true;
        throw bodyError;
      }),
      PoisonCleanupError,
      { outcome: "error-marked-clean" },
    );
    assert.equal(error.bodyError, bodyError);
    assert.equal(await store.getPoison(key), token);
    faults.remove = false;
    await guard.run({ keys: [key], token }, () => undefined);
    assert.equal(await store.getPoison(key), null);
  });

  it("a failure that cannot be recorded still rejects with OperationPoisonedError and keeps the keys", async () => {
    const { store, faults } = ctx.openFaulty();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const token = ctx.token();
    const failure = new Error("half-way");
    const error = await rejectsWith(
      guard.run({ keys: [key], token }, () => {
        faults.update = true;
        faults.remove = true;
        throw failure;
      }),
      OperationPoisonedError,
    );
    assert.equal(error.cause, failure);
    assert.ok(error.recordFailure instanceof BackendUnavailableError);
    assert.match(error.message, /could not be recorded/);
    faults.update = false;
    faults.remove = false;
    assert.equal(await store.getPoison(key), token, "the key stays: fail safe");
  });

  it("a heartbeat failure does not crash the run; it is reported as an event", async () => {
    const { store, faults } = ctx.openFaulty();
    const events: GuardEvent[] = [];
    const guard = ctx.guard(store, { heartbeatIntervalMs: 10, onEvent: (e) => events.push(e) });
    const key = ctx.key();
    faults.update = true;
    const value = await guard.run({ keys: [key], token: ctx.token() }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 80));
      faults.update = false;
      return "done";
    });
    assert.equal(value, "done");
    const failed = events.filter((e) => e.type === "heartbeat-failed");
    assert.ok(failed.length >= 1, "heartbeat-failed reported");
    assert.ok(
      failed[0]?.type === "heartbeat-failed" && failed[0].error instanceof BackendUnavailableError,
    );
    assert.equal(await store.getPoison(key), null);
  });

  it("a put whose outcome is unknown rejects with BackendUnavailableError; the same token resumes", async () => {
    const { store, faults } = ctx.openFaulty();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const token = ctx.token();
    faults.put = true;
    let ran = false;
    await rejectsWith(
      guard.run({ keys: [key], token }, () => {
        ran = true;
      }),
      BackendUnavailableError,
    );
    assert.equal(ran, false);
    faults.put = false;
    await guard.run({ keys: [key], token }, () => undefined);
    assert.equal(await store.getPoison(key), null);
  });

  it("transient store failures of the guard's own writes are retried", async () => {
    const { store, faults } = ctx.openFaulty();
    const guard = ctx.guard(store, {
      storeRetry: { maxAttempts: 5, minDelayMs: 20, maxDelayMs: 20 },
    });
    const key = ctx.key();
    const value = await guard.run({ keys: [key], token: ctx.token() }, () => {
      faults.remove = true;
      setTimeout(() => {
        faults.remove = false;
      }, 30);
      return "ok";
    });
    assert.equal(value, "ok");
    assert.equal(await store.getPoison(key), null);
  });
}
