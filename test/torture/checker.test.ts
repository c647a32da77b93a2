/**
 * The linearizability checker, fed histories whose verdict is known: it must reject what the
 * contract forbids and accept every valid concurrent history, including unknown outcomes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkHistory } from "../../torture/lin/check.js";
import { randomHistory } from "../../torture/lin/generate.js";
import type { Invocation, Operation, Outcome } from "../../torture/lin/history.js";

const INF = Number.POSITIVE_INFINITY;

/** A compact operation: `[client, invocation, outcome, invokedAt, completedAt]` on key "k". */
function op(
  client: number,
  invocation: string,
  outcome: string,
  invokedAt: number,
  completedAt = INF,
): Operation {
  const [kind, token] = invocation.split(":") as [string, string | undefined];
  const inv: Invocation =
    kind === "get" ? { kind: "get" } : { kind: kind as "put" | "delete", token: token ?? "" };
  let out: Outcome;
  if (outcome === "ok") out = { type: "ok" };
  else if (outcome === "unknown") out = { type: "unknown" };
  else if (outcome === "null") out = { type: "read", token: null };
  else if (outcome.startsWith("conflict:")) out = { type: "conflict", holder: outcome.slice(9) };
  else out = { type: "read", token: outcome };
  return { client, key: "k", invocation: inv, outcome: out, invokedAt, completedAt };
}

function verdict(history: Operation[]) {
  return checkHistory(history);
}

describe("linearizability checker: histories it must reject", () => {
  it("two puts with different tokens that both succeed on an absent key (sequential)", () => {
    const result = verdict([op(1, "put:a", "ok", 0, 1), op(2, "put:b", "ok", 2, 3)]);
    assert.equal(result.ok, false);
    assert.equal(result.violations.length, 1);
    assert.match(result.violations[0]?.explanation ?? "", /cannot linearize/);
  });

  it("two puts with different tokens that both succeed on an absent key (concurrent)", () => {
    const result = verdict([op(1, "put:a", "ok", 0, 10), op(2, "put:b", "ok", 1, 9)]);
    assert.equal(result.ok, false);
  });

  it("a delete by a wrong token that answered ok", () => {
    assert.equal(verdict([op(1, "put:a", "ok", 0, 1), op(2, "delete:b", "ok", 2, 3)]).ok, false);
  });

  it("a delete by a wrong token that answered conflict but took effect anyway", () => {
    const result = verdict([
      op(1, "put:a", "ok", 0, 1),
      op(2, "delete:b", "conflict:a", 2, 3),
      op(3, "get", "null", 4, 5),
    ]);
    assert.equal(result.ok, false);
  });

  it("a delete by a wrong token with an unknown outcome, then the key is gone", () => {
    const result = verdict([
      op(1, "put:a", "ok", 0, 1),
      op(2, "delete:b", "unknown", 2),
      op(3, "get", "null", 4, 5),
    ]);
    assert.equal(result.ok, false);
  });

  it("a read of a value never written", () => {
    assert.equal(verdict([op(1, "put:a", "ok", 0, 1), op(2, "get", "z", 0, 2)]).ok, false);
    assert.equal(verdict([op(1, "get", "z", 0, 1)]).ok, false);
  });

  it("a stale read after a completed write", () => {
    assert.equal(verdict([op(1, "put:a", "ok", 0, 1), op(2, "get", "null", 2, 3)]).ok, false);
    const afterDelete = [
      op(1, "put:a", "ok", 0, 1),
      op(1, "delete:a", "ok", 2, 3),
      op(2, "get", "a", 4, 5),
    ];
    assert.equal(verdict(afterDelete).ok, false);
  });

  it("a conflict naming a holder that does not hold the key", () => {
    assert.equal(
      verdict([op(1, "put:a", "ok", 0, 1), op(2, "put:b", "conflict:c", 2, 3)]).ok,
      false,
    );
    assert.equal(verdict([op(1, "put:b", "conflict:a", 0, 1)]).ok, false);
  });

  it("an unknown put that was seen applied and then vanished without a delete", () => {
    const result = verdict([
      op(1, "put:a", "unknown", 0),
      op(2, "get", "a", 5, 6),
      op(2, "get", "null", 7, 8),
    ]);
    assert.equal(result.ok, false);
  });

  it("a read of a value never written, behind 30 writes left with unknown outcomes", () => {
    // Each unknown write may have been applied or not, at any time: a naive search tries every
    // subset (2^30) before it can say no. Interchangeable unknown writes keep it small.
    const history: Operation[] = [];
    for (let i = 0; i < 30; i++) {
      history.push(op(i, `${i % 2 ? "delete" : "put"}:t${i % 3}`, "unknown", i));
    }
    // Explainable: five unknown puts and five unknown deletes of t1 are available.
    for (let i = 0; i < 4; i++) {
      history.push(op(99, "get", "t1", 100 + 4 * i, 101 + 4 * i));
      history.push(op(99, "get", "null", 102 + 4 * i, 103 + 4 * i));
    }
    const explainable = checkHistory(history, { budgetMs: 10_000 });
    assert.equal(explainable.ok, true, "without the last read the history is linearizable");
    history.push(op(98, "get", "never-written", 500, 501));
    const result = checkHistory(history, { budgetMs: 10_000 });
    assert.equal(result.undecided.length, 0, "the search must finish within its budget");
    assert.equal(result.violations.length, 1);
  });

  it("a violation on one key among many valid ones is found and named", () => {
    const history = randomHistory({ seed: 7, clients: 8, operations: 2000, keys: 4 });
    const bad = history.find((o) => o.invocation.kind === "get" && o.outcome.type === "read");
    assert.ok(bad);
    bad.outcome = { type: "read", token: "never-written" };
    const result = checkHistory(history);
    assert.equal(result.ok, false);
    assert.deepEqual(
      result.violations.map((v) => v.key),
      [bad.key],
    );
  });
});

describe("linearizability checker: histories it must accept", () => {
  it("the empty history", () => {
    assert.equal(verdict([]).ok, true);
  });

  it("a put that conflicts with a concurrent put that completes later", () => {
    const result = verdict([op(1, "put:a", "ok", 0, 10), op(2, "put:b", "conflict:a", 1, 5)]);
    assert.equal(result.ok, true);
  });

  it("idempotent puts and deletes by the holder, and a delete of an absent key", () => {
    const result = verdict([
      op(1, "delete:a", "ok", 0, 1),
      op(1, "put:a", "ok", 2, 3),
      op(2, "put:a", "ok", 4, 5),
      op(3, "delete:b", "conflict:a", 6, 7),
      op(1, "delete:a", "ok", 8, 9),
      op(2, "delete:a", "ok", 10, 11),
      op(3, "get", "null", 12, 13),
    ]);
    assert.equal(result.ok, true);
  });

  it("reads concurrent with a write may see either side", () => {
    const result = verdict([
      op(1, "put:a", "ok", 0, 10),
      op(2, "get", "null", 1, 2),
      op(3, "get", "a", 3, 4),
      op(2, "get", "a", 5, 6),
    ]);
    assert.equal(result.ok, true);
  });

  it("operations that touch (one returns when the next is invoked) count as concurrent", () => {
    assert.equal(verdict([op(1, "put:a", "ok", 0, 5), op(2, "get", "null", 5, 6)]).ok, true);
  });

  it("an unknown put that was applied", () => {
    const result = verdict([op(1, "put:a", "unknown", 0), op(2, "get", "a", 5, 6)]);
    assert.equal(result.ok, true);
  });

  it("an unknown put that was not applied", () => {
    const result = verdict([
      op(1, "put:a", "unknown", 0),
      op(2, "get", "null", 5, 6),
      op(2, "put:b", "ok", 7, 8),
      op(3, "get", "b", 9, 10),
    ]);
    assert.equal(result.ok, true);
  });

  it("an unknown put applied late, long after its caller gave up", () => {
    const result = verdict([
      op(1, "put:a", "unknown", 0),
      op(2, "get", "null", 5, 6),
      op(1, "get", "null", 6, 7),
      op(2, "get", "a", 100, 101),
      op(3, "put:c", "conflict:a", 102, 103),
    ]);
    assert.equal(result.ok, true);
  });

  it("an unknown delete by the holder, applied or not", () => {
    const applied = [
      op(1, "put:a", "ok", 0, 1),
      op(1, "delete:a", "unknown", 2),
      op(2, "get", "null", 5, 6),
    ];
    const notApplied = [
      op(1, "put:a", "ok", 0, 1),
      op(1, "delete:a", "unknown", 2),
      op(2, "get", "a", 5, 6),
    ];
    assert.equal(verdict(applied).ok, true);
    assert.equal(verdict(notApplied).ok, true);
  });

  it("an unknown read says nothing and is ignored", () => {
    const result = verdict([op(1, "put:a", "ok", 0, 1), op(2, "get", "unknown", 2)]);
    assert.equal(result.ok, true);
    assert.equal(result.operations, 1);
  });

  it("10,000 operations of 16 clients on 4 keys, checked in seconds", () => {
    const history = randomHistory({ seed: 42, clients: 16, operations: 10_000, keys: 4 });
    const result = checkHistory(history, { budgetMs: 30_000 });
    assert.equal(result.ok, true, JSON.stringify(result.violations));
    assert.equal(result.operations, 10_000);
    assert.ok(result.elapsedMs < 20_000, `took ${result.elapsedMs} ms`);
  });

  it("10,000 operations with 5% unknown outcomes", () => {
    const history = randomHistory({
      seed: 9,
      clients: 16,
      operations: 10_000,
      keys: 4,
      unknownRate: 0.05,
    });
    const result = checkHistory(history, { budgetMs: 30_000 });
    assert.equal(result.ok, true, JSON.stringify(result.violations));
  });
});
