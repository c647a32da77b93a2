/**
 * Fuzzed input with fast-check: generated keys, tokens, record fields and options (any UTF-16
 * including lone surrogates and NUL, strings around the byte limits, numbers, objects, arrays,
 * `undefined`, objects whose getters throw) sent through every public call of PoisonStoreClient.
 *
 * A model of the keys predicts each answer: invalid input must reject with InvalidArgumentError,
 * valid input must never reject except with the conflict the model predicts; every rejection is a
 * PoisonStoreError; nothing throws synchronously or leaves an unhandled rejection; every accepted
 * key reads back byte-for-byte and is listed exactly once under any prefix of it.
 *
 * The classes of input the adversarial pass of issue 11 found are generated too: sparse key
 * arrays, durations beyond what a timer can wait, cursors of another listing or mangled by
 * hand, filters, and guarded runs whose bodies throw anything at all (hostile Proxies included)
 * or whose contexts are used after their run settled.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
// Assertion messages are built even when the assertion holds, and String() throws on some
// generated values (an object whose toString is not a function: seed 633902289 failed so).
import { safeString } from "../src/core/store.js";
import {
  HolderAliveError,
  InvalidArgumentError,
  MAX_TIMER_MS,
  OperationPoisonedError,
  PoisonConflictError,
  PoisonGuard,
  PoisonNotFoundError,
  type PoisonStoreClient,
  PoisonStoreError,
  ResourcePoisonedError,
  RunSettledError,
  StoreClosedError,
} from "../src/index.js";
import { revokedProxy, trappingProxy } from "../test/support/hostile.js";
import type { TortureBackend } from "./backends.js";

export interface FuzzReport {
  /** Public calls made with generated input. */
  calls: number;
  runs: number;
  accepted: number;
  rejectedInvalid: number;
  rejectedOther: number;
  failures: string[];
  seed: number;
  elapsedMs: number;
}

// ---- generators ---------------------------------------------------------------------------

/** Any UTF-16 code unit, lone surrogates and NUL included. */
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 12 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "%",
      "_",
      "a%b_c",
      "*",
      "?",
      "[x]",
      "'; DROP TABLE poison_keys; --",
      '"',
      "\\",
      "/",
      "a/b/",
      "über/表/🙂",
      "\u0000",
      "a\u0000b",
      "\uD800",
      "x\uDC00",
      "\uFFFF",
      "\u{10FFFF}",
      "",
      " ",
    ),
  },
  // Around the limits: keys 1024 bytes, tokens 256, labels 256, texts 4096.
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom("x", "é", "表", "🙂"),
        fc.oneof(
          fc.integer({ min: 60, max: 70 }),
          fc.integer({ min: 80, max: 90 }),
          fc.integer({ min: 250, max: 262 }),
          fc.integer({ min: 338, max: 345 }),
          fc.integer({ min: 510, max: 520 }),
          fc.integer({ min: 1018, max: 1030 }),
          fc.integer({ min: 1360, max: 1370 }),
          fc.integer({ min: 4090, max: 4100 }),
        ),
      )
      .map(([char, times]) => char.repeat(times)),
  },
);

/** Objects whose getters throw: hostile arguments no caller should crash the store with. */
const hostile = new WeakSet<object>();
const throwingObject = fc.constant(null).map(() => {
  // Non-enumerable, so fast-check can still print a counterexample holding one.
  const value = { toString: () => "[object with throwing getters]" };
  hostile.add(value);
  for (const name of ["message", "name", "stack", "prefix", "limit", "reason", "actor", "data"]) {
    Object.defineProperty(value, name, {
      enumerable: false,
      get() {
        throw new Error(`getter ${name} throws`);
      },
    });
  }
  return value;
});

const junk = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.bigInt(),
  fc.object({ maxDepth: 2 }),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
  throwingObject,
);

/** A string argument, sometimes not a string at all. */
const argument = fc.oneof({ weight: 8, arbitrary: text }, { weight: 1, arbitrary: junk });

const jsonData = fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 3 }));

/** Put info: well-formed labels and JSON data (predictable), or anything at all. */
const info = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.record({ operation: text, owner: text, data: jsonData }, { requiredKeys: [] }),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { operation: argument, owner: argument, data: fc.anything(), audit: fc.anything() },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: junk },
);

const options = fc.oneof(
  junk,
  fc.record(
    {
      prefix: argument,
      limit: fc.oneof(fc.integer({ min: -2, max: 1002 }), junk),
      cursor: argument,
      key: argument,
      reason: argument,
      actor: argument,
      expectedToken: argument,
    },
    { requiredKeys: [] },
  ),
);

/** A duration as a caller might pass it: in range, or 0, negative, fractional, beyond a timer's
 *  reach (Node clamps those to 1 ms), not finite, or not a number. */
const duration = fc.oneof(
  fc.integer({ min: 1, max: 60_000 }),
  fc.constantFrom(0, -1, 0.5, MAX_TIMER_MS, MAX_TIMER_MS + 1, 2 ** 40, Number.NaN, Infinity),
  fc.double(),
  junk,
);

/** Whether `value` is a duration the library must accept (`zero`: 0 allowed too); undefined
 *  means "the default". */
function validDuration(value: unknown, zero = false): boolean {
  if (value === undefined) return true;
  return (
    typeof value === "number" &&
    Number.isFinite(value) &&
    value >= (zero ? 0 : 1) &&
    value <= MAX_TIMER_MS
  );
}

/** Anything a body may throw: generated junk, or a kind of hostile value built only when thrown
 *  (fast-check itself inspects generated values, which a revoked Proxy does not survive). */
const thrownValue = fc.oneof(
  junk,
  fc.constantFrom(
    "error" as const,
    "trap-proxy" as const,
    "revoked-proxy" as const,
    "symbol" as const,
  ),
);

function makeThrown(kind: unknown): unknown {
  switch (kind) {
    case "error":
      return new Error("boom");
    case "trap-proxy":
      return trappingProxy();
    case "revoked-proxy":
      return revokedProxy();
    case "symbol":
      return Symbol("thrown");
    default:
      return kind;
  }
}

const command = fc.oneof(
  fc.record({ call: fc.constant("put" as const), key: fc.nat(), token: fc.nat(), info }),
  fc.record({ call: fc.constant("delete" as const), key: fc.nat(), token: fc.nat() }),
  fc.record({ call: fc.constant("get" as const), key: fc.nat() }),
  fc.record({ call: fc.constant("inspect" as const), key: fc.nat() }),
  fc.record({
    call: fc.constant("putMany" as const),
    keys: fc.array(fc.nat(), { maxLength: 4 }),
    token: fc.nat(),
    info,
  }),
  fc.record({
    call: fc.constant("deleteMany" as const),
    keys: fc.array(fc.nat(), { maxLength: 4 }),
    token: fc.nat(),
  }),
  fc.record({
    call: fc.constant("mark" as const),
    key: fc.nat(),
    token: fc.nat(),
    error: fc.oneof(fc.constant(new Error("boom")), junk, text),
  }),
  fc.record({
    call: fc.constant("forceDelete" as const),
    key: fc.nat(),
    options: fc.oneof(
      options,
      fc.record({ actor: text, reason: text, expectedToken: fc.option(fc.nat()) }),
    ),
  }),
  fc.record({ call: fc.constant("list" as const), options }),
  fc.record({ call: fc.constant("audit" as const), options }),
  // Batches with a hole (`[, k]`) or a non-string entry: refused, nothing written.
  fc.record({
    call: fc.constant("sparse" as const),
    keys: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    hole: fc.nat(),
    token: fc.nat(),
    which: fc.constantFrom("put", "delete", "mark", "touch", "force"),
  }),
  // A cursor taken from one listing, replayed on another prefix or mangled.
  fc.record({
    call: fc.constant("cursor" as const),
    from: fc.nat(),
    to: fc.nat(),
    mangle: fc.oneof(fc.constant(null), fc.nat()),
  }),
  // Filters: every record listed matches them and the model.
  fc.record({
    call: fc.constant("filter" as const),
    token: fc.oneof(fc.nat(), junk),
    state: fc.oneof(fc.constantFrom("in-progress", "poisoned", "stale"), junk),
  }),
  // Durations given to the store, a put and a guard.
  fc.record({
    call: fc.constant("durations" as const),
    key: fc.nat(),
    token: fc.nat(),
    value: duration,
  }),
  // A guarded run whose body throws anything; its context used again after it settled.
  fc.record({
    call: fc.constant("guard" as const),
    key: fc.nat(),
    token: fc.nat(),
    thrown: thrownValue,
    late: fc.constantFrom("markConsistent", "assertHeld"),
  }),
);

const scenario = fc.record({
  keys: fc.array(argument, { minLength: 1, maxLength: 3 }),
  tokens: fc.array(argument, { minLength: 1, maxLength: 2 }),
  commands: fc.array(command, { minLength: 1, maxLength: 8 }),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;
type Command = Scenario["commands"][number];

// ---- the oracle ---------------------------------------------------------------------------

function validText(value: unknown, maxBytes: number): value is string {
  return (
    typeof value === "string" &&
    value.length > 0 &&
    !value.includes("\u0000") &&
    value.isWellFormed() &&
    Buffer.byteLength(value) <= maxBytes
  );
}
const validKey = (value: unknown): value is string => validText(value, 1024);
const validToken = (value: unknown): value is string => validText(value, 256);

/** Info whose acceptance we can predict: absent, or labels and JSON data only. */
/** What a put should answer, from the model's verdict and how predictable its info argument is. */
function expectPut(
  infoKind: "valid" | "invalid" | "unpredictable",
  modelled: "ok" | { conflict: string },
): Expect {
  if (infoKind === "invalid") return { kind: "invalid" };
  if (infoKind === "unpredictable") return { kind: "typed", ifAccepted: modelled };
  return modelled === "ok" ? { kind: "ok" } : { kind: "conflict", holder: modelled.conflict };
}

function predictableInfo(value: unknown): "valid" | "invalid" | "unpredictable" {
  if (value === undefined) return "valid";
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "invalid";
  if (hostile.has(value)) return "unpredictable";
  const fields = value as Record<string, unknown>;
  if (Object.keys(fields).some((name) => !["operation", "owner", "data"].includes(name)))
    return "unpredictable";
  for (const name of ["operation", "owner"]) {
    const label = fields[name];
    if (label !== undefined && !validText(label, 256)) return "invalid";
  }
  const data = fields.data;
  if (data === undefined) return "valid";
  try {
    const json = JSON.stringify(data);
    return json !== undefined && Buffer.byteLength(json) <= 65536 ? "valid" : "unpredictable";
  } catch {
    return "unpredictable";
  }
}

/** What a call may do: its allowed outcomes. */
type Expect =
  | { kind: "ok" }
  | { kind: "invalid" }
  | { kind: "conflict"; holder: string }
  | { kind: "notFound" }
  /** Invalid input we cannot judge precisely: any typed rejection, or success as modelled. */
  | { kind: "typed"; ifAccepted: "ok" | { conflict: string } };

interface Settled {
  ok: boolean;
  value?: unknown;
  error?: unknown;
}

// ---- the run ------------------------------------------------------------------------------

export async function runFuzz(backend: TortureBackend, targetCalls: number, seed: number) {
  const report: FuzzReport = {
    calls: 0,
    runs: 0,
    accepted: 0,
    rejectedInvalid: 0,
    rejectedOther: 0,
    failures: [],
    seed,
    elapsedMs: 0,
  };
  const started = performance.now();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  let namespaceCounter = 0;

  /** Make one public call; a synchronous throw or an untyped rejection is a failure. */
  const call = async (label: string, fn: () => Promise<unknown>): Promise<Settled> => {
    report.calls++;
    let promise: Promise<unknown>;
    try {
      promise = fn();
    } catch (error) {
      throw new Error(`${label} threw synchronously: ${String(error)}`);
    }
    try {
      const value = await promise;
      report.accepted++;
      return { ok: true, value };
    } catch (error) {
      if (!(error instanceof PoisonStoreError)) {
        throw new Error(`${label} rejected with an untyped error: ${String(error)}`);
      }
      if (error instanceof InvalidArgumentError) report.rejectedInvalid++;
      else report.rejectedOther++;
      return { ok: false, error };
    }
  };

  const verify = (label: string, expect: Expect, settled: Settled) => {
    const { error } = settled;
    const fail = (what: string) => {
      throw new Error(`${label}: expected ${JSON.stringify(expect)}, ${what}`);
    };
    const accepted = (as: "ok" | { conflict: string }) => {
      if (as === "ok") {
        if (!settled.ok) fail(`rejected with ${String(error)}`);
      } else if (!(error instanceof PoisonConflictError) || error.holder !== as.conflict) {
        fail(settled.ok ? "it resolved" : `rejected with ${String(error)}`);
      }
    };
    switch (expect.kind) {
      case "ok":
        return accepted("ok");
      case "conflict":
        return accepted({ conflict: expect.holder });
      case "invalid":
        if (!(error instanceof InvalidArgumentError))
          fail(settled.ok ? "it resolved" : String(error));
        return;
      case "notFound":
        if (!(error instanceof PoisonNotFoundError))
          fail(settled.ok ? "it resolved" : String(error));
        return;
      case "typed":
        if (error instanceof InvalidArgumentError) return;
        return accepted(expect.ifAccepted);
    }
  };

  /** The accepted key reads back byte-for-byte and is listed exactly once by prefixes of it. */
  const readBack = async (store: PoisonStoreClient, key: string, token: string, cut: number) => {
    const got = await call("getPoison", () => store.getPoison(key));
    assert.equal(got.value, token, "getPoison after an accepted put");
    const record = (await call("inspectPoison", () => store.inspectPoison(key))).value as {
      key: string;
      token: string;
    } | null;
    assert.ok(record, "inspectPoison after an accepted put");
    assert.ok(Buffer.from(record.key).equals(Buffer.from(key)), "the key reads back byte-for-byte");
    assert.equal(record.token, token);
    const points = Array.from(key);
    const prefixes = new Set(["", key, points.slice(0, cut % (points.length + 1)).join("")]);
    for (const prefix of prefixes) {
      const page = await call("listPoisons", () => store.listPoisons({ prefix, limit: 1000 }));
      assert.ok(page.ok, `listPoisons by prefix ${JSON.stringify(prefix)}: ${String(page.error)}`);
      const records = (page.value as { records: { key: string }[] }).records;
      const found = records.filter((r) => r.key === key).length;
      assert.equal(found, 1, `listed ${found} times under prefix ${JSON.stringify(prefix)}`);
      assert.ok(records.every((r) => r.key.startsWith(prefix)));
    }
  };

  const property = fc.asyncProperty(scenario, fc.nat(), async (input, cut) => {
    report.runs++;
    const store = backend.open({ namespace: `/fuzz/${seed}/${namespaceCounter++}/` });
    const model = new Map<string, string>();
    live.clear();
    const keyOf = (i: number) => input.keys[i % input.keys.length];
    const tokenOf = (i: number) => input.tokens[i % input.tokens.length];
    try {
      for (const command of input.commands) {
        await runCommand(store, command, model, keyOf, tokenOf, cut);
      }
      // Clean up with the operator's call, so the backend stays small.
      for (const key of [...model.keys()]) {
        const removed = await call("forceDeletePoison", () =>
          store.forceDeletePoison(key, { actor: "fuzz", reason: "cleanup", evenIfAlive: true }),
        );
        assert.ok(removed.ok, `cleanup of ${JSON.stringify(key)}: ${String(removed.error)}`);
      }
    } finally {
      await store.close();
    }
    const closed = await call("getPoison after close", () => store.getPoison("k"));
    assert.ok(closed.error instanceof StoreClosedError, "a call after close rejects");
  });

  const runCommand = async (
    store: PoisonStoreClient,
    command: Command,
    model: Map<string, string>,
    keyOf: (i: number) => unknown,
    tokenOf: (i: number) => unknown,
    cut: number,
  ) => {
    const holderOf = (key: string) => model.get(key) ?? null;
    switch (command.call) {
      case "put": {
        const key = keyOf(command.key);
        const token = tokenOf(command.token);
        const settled = await call("tryPutPoison", () =>
          store.tryPutPoison(key as string, token as string, command.info as never),
        );
        if (!validKey(key) || !validToken(token))
          return verify("tryPutPoison", { kind: "invalid" }, settled);
        const holder = holderOf(key);
        const modelled = holder === null || holder === token ? "ok" : { conflict: holder };
        const infoKind = predictableInfo(command.info);
        const expect = expectPut(infoKind, modelled);
        verify("tryPutPoison", expect, settled);
        if (settled.ok) {
          model.set(key, token);
          await readBack(store, key, token, cut);
        }
        return;
      }
      case "delete": {
        const key = keyOf(command.key);
        const token = tokenOf(command.token);
        const settled = await call("deletePoison", () =>
          store.deletePoison(key as string, token as string),
        );
        if (!validKey(key) || !validToken(token))
          return verify("deletePoison", { kind: "invalid" }, settled);
        const holder = holderOf(key);
        if (holder === null || holder === token) {
          verify("deletePoison", { kind: "ok" }, settled);
          model.delete(key);
        } else verify("deletePoison", { kind: "conflict", holder }, settled);
        return;
      }
      case "get":
      case "inspect": {
        const key = keyOf(command.key);
        const settled =
          command.call === "get"
            ? await call("getPoison", () => store.getPoison(key as string))
            : await call("inspectPoison", () => store.inspectPoison(key as string));
        if (!validKey(key)) return verify(command.call, { kind: "invalid" }, settled);
        verify(command.call, { kind: "ok" }, settled);
        const holder = holderOf(key);
        const got =
          command.call === "get"
            ? settled.value
            : ((settled.value as { token: string } | null)?.token ?? null);
        assert.equal(got, holder, `${command.call} answers as the model`);
        return;
      }
      case "putMany":
      case "deleteMany": {
        const keys = command.keys.map(keyOf);
        const token = tokenOf(command.token);
        const settled =
          command.call === "putMany"
            ? await call("tryPutPoisons", () =>
                store.tryPutPoisons(keys as string[], token as string, command.info as never),
              )
            : await call("deletePoisons", () =>
                store.deletePoisons(keys as string[], token as string),
              );
        const valid =
          keys.length > 0 &&
          keys.every(validKey) &&
          new Set(keys).size === keys.length &&
          validToken(token);
        if (!valid) return verify(command.call, { kind: "invalid" }, settled);
        const checkedKeys = keys as string[];
        const blocked = checkedKeys.map(holderOf).find((h) => h !== null && h !== token);
        const modelled = blocked === undefined || blocked === null ? "ok" : { conflict: blocked };
        const infoKind = command.call === "putMany" ? predictableInfo(command.info) : "valid";
        const expect = expectPut(infoKind, modelled);
        verify(command.call, expect, settled);
        if (settled.ok) {
          for (const key of checkedKeys) {
            if (command.call === "putMany") model.set(key, token);
            else model.delete(key);
          }
        }
        return;
      }
      case "mark": {
        const key = keyOf(command.key);
        const token = tokenOf(command.token);
        const settled = await call("markPoisoned", () =>
          store.markPoisoned(key as string, token as string, command.error),
        );
        if (!validKey(key) || !validToken(token))
          return verify("markPoisoned", { kind: "invalid" }, settled);
        const holder = holderOf(key);
        const expect: Expect =
          holder === null
            ? { kind: "notFound" }
            : holder === token
              ? { kind: "ok" }
              : { kind: "conflict", holder };
        return verify("markPoisoned", expect, settled);
      }
      case "forceDelete": {
        const key = keyOf(command.key);
        const raw = command.options as Record<string, unknown> | null | undefined;
        // A generated expectedToken index names one of the scenario's tokens.
        const opts =
          raw && typeof raw === "object" && typeof raw.expectedToken === "number"
            ? { ...raw, expectedToken: tokenOf(raw.expectedToken) }
            : raw && typeof raw === "object" && raw.expectedToken === null
              ? { ...raw, expectedToken: undefined }
              : raw;
        const settled = await call("forceDeletePoison", () =>
          store.forceDeletePoison(key as string, opts as never),
        );
        if (!validKey(key)) return verify("forceDeletePoison", { kind: "invalid" }, settled);
        const holder = holderOf(key);
        const expected = (opts as { expectedToken?: unknown } | null | undefined)?.expectedToken;
        const modelled =
          holder !== null && expected !== undefined && expected !== holder
            ? { conflict: holder }
            : "ok";
        // A key put with a heartbeat interval is live for a while: refusing it is right too.
        if (settled.error instanceof HolderAliveError && live.has(key) && modelled === "ok") return;
        verify("forceDeletePoison", { kind: "typed", ifAccepted: modelled }, settled);
        if (settled.ok) {
          model.delete(key);
          live.delete(key);
        }
        return;
      }
      case "list": {
        const settled = await call("listPoisons", () =>
          store.listPoisons(command.options as never),
        );
        if (settled.ok) {
          const records = (settled.value as { records: { key: string; token: string }[] }).records;
          for (const record of records) {
            assert.equal(record.token, holderOf(record.key), "a listed record matches the model");
          }
        }
        return;
      }
      case "audit": {
        await call("auditLog", () => store.auditLog(command.options as never));
        return;
      }
      case "sparse": {
        const keys: unknown[] = command.keys.map(keyOf);
        const holey = [...keys];
        delete holey[command.hole % holey.length];
        const token = tokenOf(command.token);
        const before = await snapshot(store, model);
        const batch = holey as string[];
        const settled = await call(`sparse ${command.which}`, () => {
          switch (command.which) {
            case "put":
              return store.tryPutPoisons(batch, token as string);
            case "delete":
              return store.deletePoisons(batch, token as string);
            case "mark":
              return store.markPoisons(batch, token as string, new Error("x"));
            case "touch":
              return store.touchPoisons(batch, token as string);
            default:
              return store.forceDeletePoisons(batch, { actor: "fuzz", reason: "sparse" });
          }
        });
        verify(`sparse ${command.which}`, { kind: "invalid" }, settled);
        assert.deepEqual(await snapshot(store, model), before, "a refused batch changed nothing");
        return;
      }
      case "cursor": {
        const from = keyOf(command.from);
        const to = keyOf(command.to);
        if (!validKey(from) || !validKey(to)) return;
        const prefixOf = (key: string) => Array.from(key).slice(0, 1).join("");
        const first = await call("listPoisons", () =>
          store.listPoisons({ prefix: prefixOf(from), limit: 1 }),
        );
        const cursor = (first.value as { cursor: string | null } | undefined)?.cursor;
        if (!first.ok || !cursor) return;
        const mangled =
          command.mangle === null
            ? cursor
            : `${cursor.slice(0, command.mangle % cursor.length)}${cursor[command.mangle % cursor.length] === "A" ? "B" : "A"}${cursor.slice((command.mangle % cursor.length) + 1)}`;
        const settled = await call("listPoisons with a replayed cursor", () =>
          store.listPoisons({ prefix: prefixOf(to), cursor: mangled }),
        );
        const same = prefixOf(from) === prefixOf(to) && mangled === cursor;
        verify("replayed cursor", same ? { kind: "ok" } : { kind: "invalid" }, settled);
        return;
      }
      case "filter": {
        const token = typeof command.token === "number" ? tokenOf(command.token) : command.token;
        const state = command.state;
        const settled = await call("listPoisons with filters", () =>
          store.listPoisons({ token: token as string, state: state as never, limit: 1000 }),
        );
        const validState =
          state === undefined ||
          state === "in-progress" ||
          state === "poisoned" ||
          state === "stale";
        if (!(token === undefined || validToken(token)) || !validState)
          return verify("filters", { kind: "invalid" }, settled);
        verify("filters", { kind: "ok" }, settled);
        const records = (
          settled.value as { records: { key: string; token: string; state: string }[] }
        ).records;
        for (const record of records) {
          if (token !== undefined) assert.equal(record.token, token, "the token asked for");
          assert.equal(record.token, holderOf(record.key), "a filtered record matches the model");
          if (state === "stale") assert.equal(record.state, "in-progress");
          else if (state !== undefined) assert.equal(record.state, state);
        }
        return;
      }
      case "durations": {
        const key = keyOf(command.key);
        const token = tokenOf(command.token);
        // The store: timeoutMs and clockSkewMs are checked when it is opened.
        for (const [name, zero] of [
          ["timeoutMs", false],
          ["clockSkewMs", true],
        ] as const) {
          let opened: PoisonStoreClient | undefined;
          let thrown: unknown;
          try {
            opened = backend.open({ namespace: "/fuzz/durations/", [name]: command.value });
          } catch (error) {
            thrown = error;
          }
          await opened?.close();
          if (validDuration(command.value, zero))
            assert.equal(
              thrown,
              undefined,
              `${name} ${safeString(command.value)} must be accepted`,
            );
          else
            assert.ok(
              thrown instanceof InvalidArgumentError,
              `${name} ${safeString(command.value)} must be refused, got ${safeString(thrown ?? "acceptance")}`,
            );
        }
        // A guard: heartbeatIntervalMs is checked when it is built.
        let thrown: unknown;
        try {
          new PoisonGuard(store, { heartbeatIntervalMs: command.value as number });
        } catch (error) {
          thrown = error;
        }
        // `false` turns heartbeats off.
        if (validDuration(command.value) || command.value === false)
          assert.equal(
            thrown,
            undefined,
            `guard heartbeat ${safeString(command.value)}: ${safeString(thrown)}`,
          );
        else
          assert.ok(
            thrown instanceof InvalidArgumentError,
            `guard heartbeat ${safeString(command.value)}`,
          );
        // A put: info.heartbeatIntervalMs is checked before anything is written.
        if (!validKey(key) || !validToken(token)) return;
        const holder = holderOf(key);
        const settled = await call("tryPutPoison with heartbeatIntervalMs", () =>
          store.tryPutPoison(key, token, { heartbeatIntervalMs: command.value as number }),
        );
        const modelled = holder === null || holder === token ? "ok" : { conflict: holder };
        verify(
          "put heartbeatIntervalMs",
          validDuration(command.value) ? expectPut("valid", modelled) : { kind: "invalid" },
          settled,
        );
        if (settled.ok) {
          // Written with a heartbeat (when the key was absent): live until it goes stale, the
          // interval kept in whole milliseconds, rounded up.
          if (holder === null && typeof command.value === "number") {
            live.add(key);
            const record = (await call("inspectPoison", () => store.inspectPoison(key))).value as {
              heartbeatIntervalMs?: number;
            } | null;
            assert.equal(record?.heartbeatIntervalMs, Math.ceil(command.value));
          }
          model.set(key, token);
        }
        return;
      }
      case "guard": {
        const key = keyOf(command.key);
        const token = tokenOf(command.token);
        if (!validKey(key) || !validToken(token)) return;
        const holder = holderOf(key);
        const guard = new PoisonGuard(store, {
          heartbeatIntervalMs: false,
          retry: { maxAttempts: 1 },
          storeRetry: { maxAttempts: 1 },
        });
        let saved: { markConsistent(): Promise<void>; assertHeld(): Promise<void> } | undefined;
        const settled = await call("guard.run", () =>
          guard.run({ keys: [key], token }, (ctx) => {
            saved = ctx;
            throw makeThrown(command.thrown);
          }),
        );
        if (holder !== null) {
          // Held already: refused (another token, or its own poisoned key), or resumed (its own
          // in-progress key, then poisoned like any other failure).
          if (holder !== token) {
            assert.ok(settled.error instanceof ResourcePoisonedError, String(settled.error));
            return;
          }
        }
        if (settled.error instanceof ResourcePoisonedError) {
          assert.equal(holder, token, "refused only over the token's own poisoned key");
          return;
        }
        assert.ok(
          settled.error instanceof OperationPoisonedError,
          `whatever the body throws, the run is poisoned: got ${String(settled.error)}`,
        );
        model.set(key, token);
        const record = (await call("inspectPoison", () => store.inspectPoison(key))).value as {
          state: string;
          error?: { message: unknown };
        } | null;
        assert.equal(record?.state, "poisoned", "the key ends poisoned");
        assert.equal(typeof record?.error?.message, "string");
        // The context of a settled run refuses and changes nothing.
        const late = await call(`late ctx.${command.late}`, () =>
          (saved as NonNullable<typeof saved>)[command.late](),
        );
        assert.ok(
          late.error instanceof RunSettledError,
          `late ${command.late}: ${String(late.error)}`,
        );
        assert.equal((await store.inspectPoison(key))?.state, "poisoned");
        return;
      }
    }
  };

  /** Keys written with a heartbeat interval: a forced delete may refuse them as live. */
  const live = new Set<string>();

  /** Every modelled key's holder as stored now. */
  const snapshot = async (store: PoisonStoreClient, model: Map<string, string>) => {
    const out: Record<string, string | null> = {};
    for (const key of model.keys()) out[key] = await store.getPoison(key);
    return out;
  };

  try {
    let batch = 0;
    while (report.calls < targetCalls) {
      await fc.assert(property, {
        seed: seed + batch++,
        numRuns: Math.max(1, Math.min(500, Math.ceil((targetCalls - report.calls) / 12))),
        endOnFailure: true,
      });
      if (unhandled.length > 0) {
        throw new Error(`unhandled rejection: ${String(unhandled[0])}`);
      }
    }
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : null;
    const message = error instanceof Error ? error.message : String(error);
    report.failures.push(cause ? `${cause.message}\n${message}` : message);
  } finally {
    // Let stray rejections surface before we stop listening.
    await new Promise((resolve) => setTimeout(resolve, 10));
    process.off("unhandledRejection", onUnhandled);
    for (const reason of unhandled) report.failures.push(`unhandled rejection: ${String(reason)}`);
  }
  report.elapsedMs = performance.now() - started;
  return report;
}
