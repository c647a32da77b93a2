/** Error marks (SPEC §5) and the backoff schedule: pure functions, no storage. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoff } from "../../src/guard/guard.js";
import {
  InvalidArgumentError,
  isMarkedCleanPoisons,
  isMarkedRetryable,
  markCleanPoisons,
  markRetryable,
} from "../../src/index.js";

describe("error marks", () => {
  it("an own property set to true marks the error", () => {
    assert.equal(isMarkedCleanPoisons(Object.assign(new Error("x"), { cleanPoisons: true })), true);
    assert.equal(isMarkedRetryable(Object.assign(new Error("x"), { retryable: true })), true);
    assert.equal(isMarkedRetryable(Object.assign(new Error("x"), { cleanPoisons: true })), false);
    assert.equal(isMarkedCleanPoisons(new Error("x")), false);
  });

  it("plain objects marked by hand count the same", () => {
    assert.equal(isMarkedCleanPoisons({ cleanPoisons: true }), true);
    assert.equal(isMarkedRetryable({ retryable: true, message: "busy" }), true);
  });

  it("only exactly true counts, and only as an own property", () => {
    for (const value of [false, "true", 1, null, undefined, {}]) {
      assert.equal(isMarkedCleanPoisons({ cleanPoisons: value }), false, String(value));
      assert.equal(isMarkedRetryable({ retryable: value }), false, String(value));
    }
    class Transient extends Error {}
    (Transient.prototype as unknown as { retryable: boolean }).retryable = true;
    assert.equal(isMarkedRetryable(new Transient("x")), false);
  });

  it("a mark anywhere on the cause chain counts", () => {
    const deep = new Error("a", {
      cause: new Error("b", { cause: { message: "c", cause: { retryable: true } } }),
    });
    assert.equal(isMarkedRetryable(deep), true);
    assert.equal(isMarkedCleanPoisons(deep), false);
  });

  it("a cyclic cause chain terminates", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    assert.equal(isMarkedRetryable(a), false);
    const c = { cause: null as unknown, cleanPoisons: false };
    c.cause = c;
    assert.equal(isMarkedCleanPoisons(c), false);
  });

  it("primitives and throwing accessors are unmarked", () => {
    for (const value of ["retryable", 42, null, undefined, Symbol("x")]) {
      assert.equal(isMarkedRetryable(value), false);
    }
    const hostile = Object.defineProperty({}, "retryable", {
      get() {
        throw new Error("no");
      },
    });
    assert.equal(isMarkedRetryable(hostile), false);
  });

  it("markRetryable and markCleanPoisons set the marks and return the same object", () => {
    const error = new Error("busy");
    assert.equal(markRetryable(error), error);
    assert.equal(isMarkedRetryable(error), true);
    assert.equal(isMarkedCleanPoisons(error), false);
    const both = markRetryable(new Error("busy"), { cleanPoisons: true });
    assert.equal(isMarkedRetryable(both), true);
    assert.equal(isMarkedCleanPoisons(both), true);
    const clean = { message: "plain" };
    assert.equal(markCleanPoisons(clean), clean);
    assert.equal(isMarkedCleanPoisons(clean), true);
    assert.equal((clean as { cleanPoisons?: boolean }).cleanPoisons, true);
  });

  it("marking a primitive is an InvalidArgumentError, not a silent no-op", () => {
    assert.throws(() => markRetryable("busy" as unknown as object), InvalidArgumentError);
    assert.throws(() => markCleanPoisons(null as unknown as object), InvalidArgumentError);
  });

  it("marking a frozen, sealed or refusing error is an InvalidArgumentError (issue 11)", () => {
    const refusing = new Proxy(new Error("x"), {
      defineProperty() {
        throw new Error("trap");
      },
    });
    for (const error of [
      Object.freeze(new Error("frozen")),
      Object.seal(new Error("sealed")),
      Object.preventExtensions(new Error("fixed")),
      refusing,
    ]) {
      assert.throws(() => markRetryable(error), InvalidArgumentError);
      assert.throws(() => markCleanPoisons(error), /wrap it/);
    }
  });
});

describe("backoff", () => {
  const retry = { maxAttempts: 10, minDelayMs: 100, maxDelayMs: 1000 };

  it("doubles from minDelayMs and stops at maxDelayMs", () => {
    const top = [1, 2, 3, 4, 5, 6].map((n) => backoff(retry, n, () => 0.9999999));
    assert.deepEqual(top, [100, 200, 400, 800, 1000, 1000]);
  });

  it("jitters within the upper half of the step, never below minDelayMs", () => {
    for (let n = 1; n <= 8; n++) {
      const cap = Math.min(1000, 100 * 2 ** (n - 1));
      for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
        const delay = backoff(retry, n, () => r);
        assert.ok(delay >= Math.max(100, cap / 2) && delay <= cap, `n=${n} r=${r}: ${delay}`);
      }
    }
  });
});
