/**
 * The "no acknowledged put is lost" check of the etcd-cluster fault: which put must still hold
 * its key after a run, and which ones a delete may have undone.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lostAcknowledgedPuts } from "../../torture/faults/lost-puts.js";
import type { Operation, Outcome } from "../../torture/lin/history.js";

const put = (token: string, outcome: Outcome, invokedAt: number, completedAt: number) =>
  ({
    client: 0,
    key: "k",
    invocation: { kind: "put", token },
    outcome,
    invokedAt,
    completedAt,
  }) as Operation;
const del = (token: string, outcome: Outcome, invokedAt: number, completedAt: number) =>
  ({
    client: 1,
    key: "k",
    invocation: { kind: "delete", token },
    outcome,
    invokedAt,
    completedAt,
  }) as Operation;
const ok: Outcome = { type: "ok" };
const unknown: Outcome = { type: "unknown" };

describe("lostAcknowledgedPuts", () => {
  it("reports an acknowledged put missing at the end", () => {
    const result = lostAcknowledgedPuts([put("a", ok, 0, 1)], new Map([["k", null]]));
    assert.equal(result.checked, 1);
    assert.equal(result.lost.length, 1);
  });

  it("accepts the put still holding the key", () => {
    const result = lostAcknowledgedPuts([put("a", ok, 0, 1)], new Map([["k", "a"]]));
    assert.deepEqual(result, { checked: 1, lost: [] });
  });

  it("does not check a put that a later or concurrent delete by its token may have undone", () => {
    for (const undo of [del("a", ok, 2, 3), del("a", ok, 0, 0.5), del("a", unknown, 5, 6)]) {
      const result = lostAcknowledgedPuts([put("a", ok, 0.2, 1), undo], new Map([["k", null]]));
      assert.deepEqual(result, { checked: 0, lost: [] });
    }
  });

  it("checks a put once a delete finished before it was invoked", () => {
    const history = [del("a", ok, 0, 1), put("a", ok, 2, 3)];
    assert.equal(lostAcknowledgedPuts(history, new Map([["k", null]])).lost.length, 1);
  });

  it("ignores puts that were not acknowledged and deletes by other tokens", () => {
    const history = [put("a", ok, 0, 1), put("b", unknown, 2, 3), del("b", ok, 4, 5)];
    assert.deepEqual(lostAcknowledgedPuts(history, new Map([["k", "a"]])), {
      checked: 1,
      lost: [],
    });
    assert.equal(lostAcknowledgedPuts(history, new Map([["k", null]])).lost.length, 1);
  });
});
