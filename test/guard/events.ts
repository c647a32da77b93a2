/** Typed events in order, listeners that throw, the logger, and silence by default. */
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
import type { GuardSuiteContext } from "./harness.js";

export function events(ctx: GuardSuiteContext): void {
  it("events are emitted in order for every outcome", async () => {
    const store = ctx.open();
    const seen: GuardEvent[] = [];
    const guard = ctx.guard(store, { onEvent: (e) => seen.push(e) });
    const types = () => seen.splice(0).map((e) => e.type);
    const key = ctx.key();
    const token = ctx.token();

    await guard.run({ keys: [key], token, operation: "alter-table" }, () => "ok");
    const success = [...seen];
    assert.deepEqual(types(), ["started", "cleaned", "succeeded"]);
    for (const event of success) {
      assert.deepEqual(event.keys, [key]);
      assert.equal(event.token, token);
      assert.equal(event.operation, "alter-table");
      assert.match(event.at, /Z$/);
    }
    assert.ok(success[1]?.type === "cleaned" && success[1].reason === "succeeded");
    assert.ok(success[2]?.type === "succeeded" && success[2].attempts === 1);

    let n = 0;
    await guard.run({ keys: [key], token }, () => {
      if (++n < 3) throw markRetryable(new Error("busy"));
    });
    assert.deepEqual(types(), ["started", "retried", "retried", "cleaned", "succeeded"]);

    await assert.rejects(
      guard.run({ keys: [key], token }, () => {
        throw markCleanPoisons(new Error("no change"));
      }),
    );
    assert.deepEqual(types(), ["started", "cleaned", "failed"]);

    await rejectsWith(
      guard.run({ keys: [key], token }, () => {
        throw new Error("half-way");
      }),
      OperationPoisonedError,
    );
    const poisoned = seen.at(-1);
    assert.deepEqual(types(), ["started", "poisoned"]);
    assert.ok(poisoned?.type === "poisoned" && (poisoned.error as Error).message === "half-way");

    await rejectsWith(
      guard.run({ keys: [key], token: "other" }, () => undefined),
      ResourcePoisonedError,
    );
    const refused = seen.at(-1);
    assert.deepEqual(types(), ["refused"]);
    assert.ok(
      refused?.type === "refused" && refused.holder.token === token && refused.token === "other",
    );
    await store.deletePoison(key, token);
  });

  it("guard.on listens to one type; a listener or logger that throws changes nothing", async () => {
    const store = ctx.open();
    const logged: string[] = [];
    const guard = ctx.guard(store, {
      onEvent: () => {
        throw new Error("bad listener");
      },
      logger: {
        info: (message) => {
          logged.push(message);
          throw new Error("bad logger");
        },
      },
    });
    const started: GuardEvent[] = [];
    const off = guard.on("started", (event) => {
      started.push(event);
      throw new Error("bad listener");
    });
    const key = ctx.key();
    assert.equal(await guard.run({ keys: [key], token: ctx.token() }, () => 7), 7);
    off();
    await guard.run({ keys: [key], token: ctx.token() }, () => 8);
    assert.equal(started.length, 1);
    assert.ok(started[0]?.type === "started" && started[0].resumed === false);
    assert.equal(logged.length, 4, "started and succeeded, twice");
    assert.match(logged[0] ?? "", /started/);
  });

  it("nothing is written to the console by default", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store, { heartbeatIntervalMs: 5 });
    const methods = ["log", "info", "warn", "error", "debug", "trace"] as const;
    const saved = methods.map((m) => console[m]);
    const calls: string[] = [];
    for (const m of methods) console[m] = () => calls.push(m);
    try {
      const key = ctx.key();
      await guard.run({ keys: [key], token: ctx.token() }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
      });
      await assert.rejects(
        guard.run({ keys: [key], token: ctx.token() }, () => {
          throw new Error("boom");
        }),
      );
      await assert.rejects(guard.run({ keys: [key], token: ctx.token() }, () => undefined));
    } finally {
      methods.forEach((m, i) => {
        console[m] = saved[i] as (typeof console)[typeof m];
      });
    }
    assert.deepEqual(calls, []);
  });
}
