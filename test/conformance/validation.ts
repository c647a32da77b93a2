/** Input validation (shared by every backend) and keys stored verbatim. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { InvalidArgumentError, type PoisonStoreClient } from "../../src/index.js";
import { AWKWARD_KEYS, rejectsWith, type SuiteContext } from "./harness.js";

const BAD_STRINGS: ReadonlyArray<[string, unknown, RegExp]> = [
  ["a number", 42, /must be a string/],
  ["undefined", undefined, /must be a string/],
  ["null", null, /must be a string/],
  ["an object", { key: "x" }, /must be a string/],
  ["an empty string", "", /must not be empty/],
  ["a lone high surrogate", "a\uD800b", /lone UTF-16 surrogate/],
  ["a lone low surrogate", "\uDC00", /lone UTF-16 surrogate/],
  ["a NUL character", "a\u0000b", /NUL/],
];

export function validation(ctx: SuiteContext): void {
  /** Every public call that takes a key, with a valid token. */
  const keyCalls = (store: PoisonStoreClient, key: unknown) => [
    store.tryPutPoison(key as string, "t"),
    store.deletePoison(key as string, "t"),
    store.getPoison(key as string),
    store.inspectPoison(key as string),
    store.markPoisoned(key as string, "t", new Error("x")),
    store.forceDeletePoison(key as string, { actor: "a", reason: "r" }),
    store.tryPutPoisons([key as string], "t"),
  ];

  for (const [label, bad, reason] of BAD_STRINGS) {
    it(`a key that is ${label} is rejected by every call with InvalidArgumentError`, async () => {
      const store = ctx.open();
      for (const call of keyCalls(store, bad)) {
        const error = await rejectsWith(call, InvalidArgumentError, { code: "INVALID_ARGUMENT" });
        assert.match(error.argument, /^key/);
        assert.match(error.reason, reason);
      }
    });

    it(`a token that is ${label} is rejected with InvalidArgumentError and writes nothing`, async () => {
      const store = ctx.open();
      const key = ctx.key();
      for (const call of [
        store.tryPutPoison(key, bad as string),
        store.deletePoison(key, bad as string),
        store.markPoisoned(key, bad as string, new Error("x")),
      ]) {
        const error = await rejectsWith(call, InvalidArgumentError, { argument: "token" });
        assert.match(error.reason, reason);
      }
      assert.equal(await store.getPoison(key), null);
    });
  }

  it("keys are 1..1024 UTF-8 bytes: 1024 accepted, 1025 rejected, counted in bytes", async () => {
    const store = ctx.open();
    const base = `${ctx.key("len")}/`;
    const exact = base + "x".repeat(1024 - Buffer.byteLength(base));
    await store.tryPutPoison(exact, "t");
    assert.equal(await store.getPoison(exact), "t");
    assert.equal((await store.inspectPoison(exact))?.key, exact);
    const over = `${exact}x`;
    const error = await rejectsWith(store.tryPutPoison(over, "t"), InvalidArgumentError, {
      argument: "key",
    });
    assert.match(error.reason, /at most 1024 UTF-8 bytes, got 1025/);
    // 342 three-byte characters are 1026 bytes but only 342 UTF-16 units.
    await rejectsWith(store.getPoison("表".repeat(342)), InvalidArgumentError, { argument: "key" });
  });

  it("tokens are 1..256 UTF-8 bytes", async () => {
    const store = ctx.open();
    const key = ctx.key();
    const token = "🙂".repeat(64); // 256 bytes
    await store.tryPutPoison(key, token);
    assert.equal(await store.getPoison(key), token);
    await rejectsWith(store.deletePoison(key, `${token}x`), InvalidArgumentError, {
      argument: "token",
    });
    assert.equal(await store.getPoison(key), token);
  });

  it("awkward keys and tokens are stored, read, listed and deleted verbatim", async () => {
    const store = ctx.open();
    const base = `${ctx.key("awkward")}/`;
    for (const suffix of AWKWARD_KEYS) {
      const key = base + suffix;
      const token = `tok:${suffix}`;
      await store.tryPutPoison(key, token);
      assert.equal(await store.getPoison(key), token, `get ${JSON.stringify(key)}`);
      assert.equal((await store.inspectPoison(key))?.key, key);
      const page = await store.listPoisons({ prefix: key, limit: 10 });
      assert.deepEqual(
        page.records.map((r) => r.key),
        [key],
        `list by prefix ${JSON.stringify(key)}`,
      );
    }
    const listed = await store.listPoisons({ prefix: base, limit: 1000 });
    assert.equal(listed.records.length, AWKWARD_KEYS.length);
    for (const suffix of AWKWARD_KEYS) await store.deletePoison(base + suffix, `tok:${suffix}`);
    assert.equal((await store.listPoisons({ prefix: base })).records.length, 0);
  });

  it("record fields are validated before anything is written", async () => {
    const store = ctx.open();
    const key = ctx.key();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await rejectsWith(store.tryPutPoison(key, "t", { data: cyclic }), InvalidArgumentError, {
      argument: "info.data",
    });
    await rejectsWith(store.tryPutPoison(key, "t", { data: 10n }), InvalidArgumentError, {
      argument: "info.data",
    });
    await rejectsWith(
      store.tryPutPoison(key, "t", { data: "x".repeat(70_000) }),
      InvalidArgumentError,
      {
        argument: "info.data",
      },
    );
    await rejectsWith(
      store.tryPutPoison(key, "t", { operation: 7 as unknown as string }),
      InvalidArgumentError,
      {
        argument: "info.operation",
      },
    );
    await rejectsWith(store.tryPutPoison(key, "t", "info" as never), InvalidArgumentError, {
      argument: "info",
    });
    await rejectsWith(
      store.tryPutPoison(key, "t", { audit: { actor: "", reason: "r" } }),
      InvalidArgumentError,
      { argument: "info.audit.actor" },
    );
    assert.equal(await store.getPoison(key), null);
  });

  it("batch calls validate every key and reject duplicates and empty lists", async () => {
    const store = ctx.open();
    const key = ctx.key();
    await rejectsWith(store.tryPutPoisons([], "t"), InvalidArgumentError, { argument: "keys" });
    await rejectsWith(store.tryPutPoisons([key, key], "t"), InvalidArgumentError, {
      argument: "keys",
    });
    await rejectsWith(store.tryPutPoisons([key, ""], "t"), InvalidArgumentError, {
      argument: "keys[1]",
    });
    const tooMany = Array.from({ length: 1001 }, (_, i) => `${key}/${i}`);
    const error = await rejectsWith(store.tryPutPoisons(tooMany, "t"), InvalidArgumentError, {
      argument: "keys",
    });
    assert.match(error.reason, /at most \d+ keys on this backend/);
    await rejectsWith(store.deletePoisons("k" as never, "t"), InvalidArgumentError, {
      argument: "keys",
    });
    assert.equal(await store.getPoison(key), null);
  });

  it("arguments whose getters throw are argument errors, never backend errors (found by fuzzing)", async () => {
    const store = ctx.open();
    const key = ctx.key();
    const hostile = (names: string[]) => {
      const value = {};
      for (const name of names) {
        Object.defineProperty(value, name, {
          get() {
            throw new Error(`getter ${name} throws`);
          },
        });
      }
      return value;
    };
    await rejectsWith(
      store.forceDeletePoison(key, hostile(["actor", "reason"]) as never),
      InvalidArgumentError,
    );
    await rejectsWith(store.listPoisons(hostile(["prefix"]) as never), InvalidArgumentError);
    await rejectsWith(
      store.tryPutPoison(key, "t", hostile(["operation"]) as never),
      InvalidArgumentError,
    );
    const keys = [key];
    Object.defineProperty(keys, 0, {
      get() {
        throw new Error("index getter throws");
      },
    });
    await rejectsWith(store.tryPutPoisons(keys, "t"), InvalidArgumentError);
    assert.equal(await store.getPoison(key), null);
    // The failure report of markPoisoned is recorded, whatever its getters do.
    await store.tryPutPoison(key, "t");
    const record = await store.markPoisoned(key, "t", hostile(["name", "message", "stack"]));
    assert.equal(record.state, "poisoned");
    assert.equal(record.error?.name, "Error");
  });

  it("sparse key arrays and non-string entries are refused, nothing written (issue 11)", async () => {
    const store = ctx.open();
    const key = ctx.key();
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const holey = [, key] as unknown as string[];
    for (const call of [
      () => store.tryPutPoisons(holey, "t"),
      () => store.deletePoisons(holey, "t"),
      () => store.markPoisons(holey, "t", new Error("x")),
      () => store.touchPoisons(holey, "t"),
      () => store.forceDeletePoisons(holey, { actor: "a", reason: "r" }),
      () => store.tryPutPoisons([key, 7 as unknown as string], "t"),
      () => store.tryPutPoisons(new Array(2) as string[], "t"),
    ]) {
      await rejectsWith(call(), InvalidArgumentError);
    }
    assert.equal(await store.getPoison(key), null);
    await store.tryPutPoison(key, "t");
    await rejectsWith(store.deletePoisons(holey, "t"), InvalidArgumentError);
    assert.equal(await store.getPoison(key), "t", "a refused delete removed nothing");
  });

  it("durations beyond what a timer can wait are refused, never clamped to 1 ms (issue 11)", async () => {
    const huge = 2 ** 31;
    for (const options of [
      { timeoutMs: huge },
      { timeoutMs: Number.POSITIVE_INFINITY },
      { timeoutMs: 0 },
      { clockSkewMs: -1 },
      { clockSkewMs: huge },
    ]) {
      assert.throws(() => ctx.open(options), InvalidArgumentError, JSON.stringify(options));
    }
    const store = ctx.open({ timeoutMs: 2 ** 31 - 1 });
    const key = ctx.key();
    await rejectsWith(
      store.tryPutPoison(key, "t", { heartbeatIntervalMs: huge }),
      InvalidArgumentError,
      { argument: "info.heartbeatIntervalMs" },
    );
    await rejectsWith(
      store.tryPutPoison(key, "t", { heartbeatIntervalMs: 0 }),
      InvalidArgumentError,
    );
    assert.equal(await store.getPoison(key), null);
  });
}
