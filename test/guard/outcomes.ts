/** SPEC §5, after the body: success, cleanPoisons, retryable, anything else. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  type GuardEvent,
  markCleanPoisons,
  markRetryable,
  OperationPoisonedError,
  ResourcePoisonedError,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import { type GuardSuiteContext, rejection } from "./harness.js";

export function outcomes(ctx: GuardSuiteContext): void {
  it("body resolves: the keys are deleted and run resolves with the body's value", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const keys = [ctx.key(), ctx.key()];
    const value = await guard.run({ keys, token: ctx.token() }, async () => ({ altered: 2 }));
    assert.deepEqual(value, { altered: 2 });
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("body throws an error marked cleanPoisons: the keys are deleted and the same error is rethrown", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const keys = [ctx.key(), ctx.key()];
    const thrown = markCleanPoisons(new Error("validation failed before any change"));
    const caught = await rejection(
      guard.run({ keys, token: ctx.token() }, () => {
        throw thrown;
      }),
    );
    assert.equal(caught, thrown);
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("a mark on the cause chain counts, and so does a plain object marked by hand", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const wrapped = new Error("outer", {
      cause: new Error("middle", { cause: { cleanPoisons: true } }),
    });
    assert.equal(
      await rejection(
        guard.run({ keys: [key], token: ctx.token() }, () => {
          throw wrapped;
        }),
      ),
      wrapped,
    );
    assert.equal(await store.getPoison(key), null);

    let executions = 0;
    const value = await guard.run({ keys: [key], token: ctx.token() }, () => {
      executions++;
      if (executions === 1) throw { retryable: true, message: "throttled" };
      return "ok";
    });
    assert.equal(value, "ok");
    assert.equal(executions, 2);
  });

  it("an error marked retryable is retried under the same token, the keys held throughout", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const keys = [ctx.key(), ctx.key()];
    const token = ctx.token();
    const attempts: number[] = [];
    const value = await guard.run({ keys, token }, async (run) => {
      attempts.push(run.attempt);
      assert.equal(run.token, token);
      for (const key of keys) {
        const record = await store.inspectPoison(key);
        assert.equal(record?.token, token);
        assert.equal(record?.state, "in-progress");
      }
      if (run.attempt < 3) throw markRetryable(new Error(`shard busy (${run.attempt})`));
      return run.attempt;
    });
    assert.equal(value, 3);
    assert.deepEqual(attempts, [1, 2, 3]);
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("maxAttempts counts every execution, the first included", async () => {
    const store = ctx.open();
    for (const maxAttempts of [1, 2, 4]) {
      const guard = ctx.guard(store, { retry: { maxAttempts, minDelayMs: 1, maxDelayMs: 2 } });
      const key = ctx.key();
      let executions = 0;
      const error = await rejectsWith(
        guard.run({ keys: [key], token: ctx.token() }, () => {
          executions++;
          throw markRetryable(new Error(`busy ${executions}`));
        }),
        OperationPoisonedError,
        { attempts: maxAttempts },
      );
      assert.equal(executions, maxAttempts);
      assert.equal(
        (error.cause as Error).message,
        `busy ${maxAttempts}`,
        "cause is the last error",
      );
    }
  });

  it("when retries run out, the keys are deleted only if the last error was marked cleanPoisons", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const cleanKey = ctx.key();
    const last = markRetryable(new Error("still busy, nothing changed"), { cleanPoisons: true });
    let n = 0;
    const caught = await rejection(
      guard.run({ keys: [cleanKey], token: ctx.token() }, () => {
        n++;
        throw n < 3 ? markRetryable(new Error("busy")) : last;
      }),
    );
    assert.equal(caught, last);
    assert.equal(await store.getPoison(cleanKey), null);

    // An earlier attempt's cleanPoisons mark does not count: only the last error decides.
    const keptKey = ctx.key();
    const token = ctx.token();
    let m = 0;
    await rejectsWith(
      guard.run({ keys: [keptKey], token }, () => {
        m++;
        throw m < 3
          ? markRetryable(new Error("busy"), { cleanPoisons: true })
          : markRetryable(new Error("busy, half-applied"));
      }),
      OperationPoisonedError,
      { attempts: 3 },
    );
    const record = await store.inspectPoison(keptKey);
    assert.equal(record?.state, "poisoned");
    assert.equal(record?.token, token);
    assert.equal(record?.error?.message, "busy, half-applied");
  });

  it("retries wait with exponential backoff and jitter between minDelayMs and maxDelayMs", async () => {
    const store = ctx.open();
    const events: GuardEvent[] = [];
    const retry = { maxAttempts: 5, minDelayMs: 10, maxDelayMs: 50 };
    const top = ctx.guard(store, { retry, random: () => 0.999999, onEvent: (e) => events.push(e) });
    const started = Date.now();
    await rejectsWith(
      top.run({ keys: [ctx.key()], token: ctx.token() }, () => {
        throw markRetryable(new Error("busy"));
      }),
      OperationPoisonedError,
    );
    const delays = events.flatMap((e) => (e.type === "retried" ? [e.delayMs] : []));
    assert.deepEqual(delays, [10, 20, 40, 50]);
    assert.ok(Date.now() - started >= 115, "the delays were actually waited");

    const low: number[] = [];
    const bottom = ctx.guard(store, {
      retry,
      random: () => 0,
      onEvent: (e) => e.type === "retried" && low.push(e.delayMs),
    });
    await rejection(
      bottom.run({ keys: [ctx.key()], token: ctx.token() }, () => {
        throw markRetryable(new Error("busy"));
      }),
    );
    assert.deepEqual(low, [10, 10, 20, 25], "jitter keeps the upper half, never below minDelayMs");
  });

  it("any other error: the keys stay poisoned with the error, and run rejects with OperationPoisonedError", async () => {
    let now = new Date("2030-06-01T00:00:00.000Z");
    const store = ctx.open({ clock: () => now });
    const guard = ctx.guard(store);
    const keys = [ctx.key("table/1"), ctx.key("table/2")];
    const token = ctx.token();
    const failure = new TypeError("shard 2 rejected the DDL");
    const error = await rejectsWith(
      guard.run({ keys, token, operation: "alter-table" }, () => {
        now = new Date("2030-06-01T00:00:30.000Z");
        throw failure;
      }),
      OperationPoisonedError,
      { code: "OPERATION_POISONED", token, attempts: 1, operation: "alter-table" },
    );
    assert.equal(error.cause, failure);
    assert.deepEqual(error.keys, keys);
    assert.equal(error.recordFailure, undefined);
    assert.match(error.message, /shard 2 rejected the DDL/);
    assert.match(error.message, /poison show /);
    for (const key of keys) {
      const record = await store.inspectPoison(key);
      assert.equal(record?.token, token);
      assert.equal(record?.state, "poisoned");
      assert.equal(record?.error?.name, "TypeError");
      assert.equal(record?.error?.message, "shard 2 rejected the DDL");
      assert.match(record?.error?.stack ?? "", /shard 2 rejected the DDL/);
      assert.equal(record?.error?.at, "2030-06-01T00:00:30.000Z");
    }
    assert.deepEqual(
      error.records.map((r) => r.state),
      ["poisoned", "poisoned"],
    );
    await rejectsWith(
      guard.run({ keys: [keys[1] as string], token: ctx.token() }, () => undefined),
      ResourcePoisonedError,
    );
  });

  it("a thrown non-error value poisons too, recorded as text", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const error = await rejectsWith(
      guard.run({ keys: [key], token: ctx.token() }, () => {
        throw "connection lost to shard 3";
      }),
      OperationPoisonedError,
    );
    assert.equal(error.cause, "connection lost to shard 3");
    assert.equal((await store.inspectPoison(key))?.error?.message, "connection lost to shard 3");
  });

  it("marks set to anything but true, or inherited, do not count", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const inherited = Object.create({ cleanPoisons: true, retryable: true }) as object;
    for (const thrown of [{ cleanPoisons: "true" }, { retryable: 1 }, inherited]) {
      const key = ctx.key();
      await rejectsWith(
        guard.run({ keys: [key], token: ctx.token() }, () => {
          throw thrown;
        }),
        OperationPoisonedError,
        { attempts: 1 },
      );
      assert.equal((await store.inspectPoison(key))?.state, "poisoned");
    }
  });
}
