/** SPEC §5, before the body: all keys held, all or none; refusals; assertHealthy. */
import assert from "node:assert/strict";
import { it } from "node:test";
import {
  InvalidArgumentError,
  type PoisonRecord,
  ResourcePoisonedError,
  shellQuote,
  storeFlags,
} from "../../src/index.js";
import { rejectsWith } from "../conformance/index.js";
import type { GuardSuiteContext } from "./harness.js";

export function beforeBody(ctx: GuardSuiteContext): void {
  it("every key is held by the token, in-progress, before the body runs", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store, { owner: "host-a:4242" });
    const keys = [ctx.key("table/1024"), ctx.key("table/1025"), ctx.key("table/1026")];
    const token = ctx.token("proc");
    const seen: (PoisonRecord | null)[] = [];
    await guard.run(
      { keys, token, operation: "alter-table", data: { column: "ts" } },
      async (run) => {
        assert.deepEqual(run.keys, keys);
        assert.equal(run.token, token);
        assert.equal(run.attempt, 1);
        assert.equal(run.resumed, false);
        assert.deepEqual(
          run.records.map((r) => r.key),
          keys,
        );
        for (const key of keys) seen.push(await store.inspectPoison(key));
      },
    );
    for (const [i, record] of seen.entries()) {
      assert.equal(record?.key, keys[i]);
      assert.equal(record?.token, token);
      assert.equal(record?.state, "in-progress");
      assert.equal(record?.operation, "alter-table");
      assert.equal(record?.owner, "host-a:4242");
      assert.deepEqual(record?.data, { column: "ts" });
    }
  });

  it("a key held by another token refuses the run before the body, writing nothing", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const [free1, held, free2] = [ctx.key("free"), ctx.key("held"), ctx.key("free")];
    await store.tryPutPoison(held, "other-procedure", { operation: "migrate-region" });
    const holder = await store.inspectPoison(held);
    let ran = false;
    const error = await rejectsWith(
      guard.run({ keys: [free1, held, free2], token: ctx.token() }, () => {
        ran = true;
      }),
      ResourcePoisonedError,
      { code: "RESOURCE_POISONED", key: held, reason: "held-by-another-token" },
    );
    assert.equal(ran, false);
    assert.deepEqual(error.record, holder);
    assert.equal(await store.getPoison(free1), null, "all or none: nothing written");
    assert.equal(await store.getPoison(free2), null, "all or none: nothing written");
    assert.deepEqual(await store.inspectPoison(held), holder, "the holder's record is untouched");
  });

  it("a key poisoned by this same token refuses the run; resumePoisoned lets repair code run", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const token = ctx.token();
    const [poisoned, free] = [ctx.key("poisoned"), ctx.key("free")];
    await store.tryPutPoison(poisoned, token);
    await store.markPoisoned(poisoned, token, new Error("shard 7 half-altered"));
    let ran = false;
    const error = await rejectsWith(
      guard.run({ keys: [free, poisoned], token }, () => {
        ran = true;
      }),
      ResourcePoisonedError,
      { key: poisoned, token, reason: "poisoned-by-this-token" },
    );
    assert.equal(ran, false);
    assert.equal(error.record.state, "poisoned");
    assert.match(error.message, /resumePoisoned: true/);
    assert.equal(await store.getPoison(free), null);
    assert.equal((await store.inspectPoison(poisoned))?.state, "poisoned");

    const value = await guard.run(
      { keys: [free, poisoned], token, resumePoisoned: true },
      async (run) => {
        assert.equal(run.resumed, true);
        return "repaired";
      },
    );
    assert.equal(value, "repaired");
    assert.equal(await store.getPoison(poisoned), null);
    assert.equal(await store.getPoison(free), null);
  });

  it("the refusal tells an operator what holds the key and the exact commands to recover", async () => {
    const times = [new Date("2030-03-04T05:06:07.000Z"), new Date("2030-03-04T05:16:07.000Z")];
    let i = 0;
    const writer = ctx.open({ clock: () => times[Math.min(i++, 1)] as Date });
    const key = ctx.key("table 1024's shard");
    await writer.tryPutPoison(key, "proc-42", { operation: "alter-table", owner: "host-a:4242" });
    await writer.markPoisoned(key, "proc-42", new RangeError("shard 7 did not answer"));
    const guard = ctx.guard(ctx.open());
    const error = await rejectsWith(
      guard.run({ keys: [key], token: "proc-99" }, () => undefined),
      ResourcePoisonedError,
    );
    const quoted = `'${key.replace("'", `'\\''`)}'`;
    // The store is not in the default namespace, so every command names it (and the store,
    // when its location is one a command can reach).
    const ns = storeFlags({ location: guard.store.location, namespace: guard.store.namespace });
    assert.match(ns, / --namespace /);
    for (const part of [
      JSON.stringify(key),
      'token "proc-42"',
      '"proc-99"',
      "state: poisoned since 2030-03-04T05:16:07.000Z",
      'operation "alter-table"',
      "host-a:4242",
      "recorded error: RangeError: shard 7 did not answer",
      `poison show ${quoted}${ns}\n`,
      `poison clear ${quoted} --token proc-42 --reason "what was repaired"${ns}\n`,
      `poison clear ${quoted} --force --reason "what was repaired"${ns}`,
      /^memory:/.test(guard.store.location)
        ? "--store URL"
        : ` --store ${shellQuote(guard.store.location)}`,
    ]) {
      assert.ok(error.message.includes(part), `message lacks ${part}:\n${error.message}`);
    }
  });

  it("the refusal of an in-progress key says since when and whether a heartbeat was seen", async () => {
    const store = ctx.open({ clock: () => new Date("2029-01-01T00:00:00.000Z") });
    const key = ctx.key();
    await store.tryPutPoison(key, "running");
    const guard = ctx.guard(ctx.open());
    const first = await rejectsWith(
      guard.run({ keys: [key], token: "next" }, () => undefined),
      ResourcePoisonedError,
    );
    assert.match(first.message, /state: in-progress since 2029-01-01T00:00:00\.000Z/);
    assert.match(first.message, /no heartbeat recorded/);
    assert.match(first.message, /recorded error: none/);
    await store.touchPoisons([key], "running");
    const second = await rejectsWith(
      guard.run({ keys: [key], token: "next" }, () => undefined),
      ResourcePoisonedError,
    );
    assert.match(second.message, /last heartbeat: 2029-01-01T00:00:00\.000Z/);
  });

  it("an old heartbeat never frees a key: the run is still refused and the key stays", async () => {
    const ancient = ctx.open({ clock: () => new Date("2001-01-01T00:00:00.000Z") });
    const key = ctx.key();
    await ancient.tryPutPoison(key, "died-long-ago");
    await ancient.touchPoisons([key], "died-long-ago");
    const guard = ctx.guard(ctx.open(), { heartbeatIntervalMs: 5 });
    await rejectsWith(
      guard.run({ keys: [key], token: ctx.token() }, () => undefined),
      ResourcePoisonedError,
      { reason: "held-by-another-token" },
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal((await ancient.inspectPoison(key))?.heartbeatAt, "2001-01-01T00:00:00.000Z");
    assert.equal(await ancient.getPoison(key), "died-long-ago");
  });

  it("arguments are validated before anything is written", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const key = ctx.key();
    const body = () => undefined;
    await rejectsWith(guard.run({ keys: [], token: "t" }, body), InvalidArgumentError, {
      argument: "run.keys",
    });
    await rejectsWith(guard.run({ keys: [key, key], token: "t" }, body), InvalidArgumentError);
    await rejectsWith(guard.run({ keys: [key], token: "" }, body), InvalidArgumentError, {
      argument: "run.token",
    });
    await rejectsWith(
      guard.run({ keys: [key], token: "t", data: { big: "x".repeat(70_000) } }, body),
      InvalidArgumentError,
    );
    await rejectsWith(
      guard.run({ keys: [key], token: "t" }, "not a function" as never),
      InvalidArgumentError,
      { argument: "body" },
    );
    assert.equal(await store.getPoison(key), null);
    assert.throws(
      () => ctx.guard(store, { retry: { maxAttempts: 0 } }),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "options.retry.maxAttempts",
    );
    assert.throws(() => ctx.guard(store, { heartbeatIntervalMs: -1 }), InvalidArgumentError);
  });

  it("assertHealthy resolves for absent keys and writes nothing", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const keys = [ctx.key(), ctx.key()];
    await guard.assertHealthy(keys);
    for (const key of keys) assert.equal(await store.getPoison(key), null);
  });

  it("assertHealthy refuses when any key is present, in-progress or poisoned, writing nothing", async () => {
    const store = ctx.open();
    const guard = ctx.guard(store);
    const [free, running, poisoned] = [ctx.key("free"), ctx.key("running"), ctx.key("poisoned")];
    await store.tryPutPoison(running, "runner");
    await store.tryPutPoison(poisoned, "failer");
    await store.markPoisoned(poisoned, "failer", new Error("boom"));
    const first = await rejectsWith(guard.assertHealthy([free, running]), ResourcePoisonedError, {
      key: running,
      token: null,
      reason: "present",
    });
    assert.equal(first.record.token, "runner");
    const second = await rejectsWith(guard.assertHealthy([poisoned]), ResourcePoisonedError);
    assert.equal(second.record.error?.message, "boom");
    assert.equal(await store.getPoison(free), null);
    assert.equal((await store.inspectPoison(running))?.state, "in-progress");
  });
}
