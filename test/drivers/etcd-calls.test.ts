/**
 * The etcd driver's decision functions (src/drivers/etcd/calls.ts), without a server: what each
 * write call decides on a given snapshot. The conformance suite runs them against etcd; these
 * pin the shape of each transaction (one round trip, the compares that make it race-free).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PoisonRecord } from "../../src/core/records.js";
import {
  type CallKeys,
  type CallLayout,
  decidePut,
  decideRemove,
  decideUpdate,
  readOps,
} from "../../src/drivers/etcd/calls.js";
import { absentSnapshot, type Kv, type Snapshot } from "../../src/drivers/etcd/codec.js";

const layout: CallLayout = {
  recordKey: (key) => Buffer.from(`/meta/record/${key}`),
  newAuditKey: (i) => Buffer.from(`/meta/audit/e-test-${i}`),
};
const keysOf = (...storageKeys: string[]): CallKeys => ({
  storageKeys,
  bytes: storageKeys.map((key) => Buffer.from(key)),
});
const at = "2026-01-01T00:00:00.000Z";
const record = (key: string, token: string): PoisonRecord => ({
  key,
  token,
  state: "in-progress",
  createdAt: at,
  updatedAt: at,
});
const kv = (key: string, value: string, revision: string): Kv => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: revision,
  modRevision: revision,
});
/** A key held by `token` since revision 7, with its record. */
const held = (key: string, token: string): Snapshot => ({
  slots: [
    {
      poison: kv(key, JSON.stringify({ token }), "7"),
      record: kv(
        `/meta/record/${key}`,
        JSON.stringify({ ...record(key, token), key: undefined }),
        "7",
      ),
    },
  ],
});
const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("etcd decisions", () => {
  it("put on keys read as absent commits poison key, record and audit in one transaction", () => {
    const keys = keysOf("/ns/a");
    const step = decidePut(
      layout,
      keys,
      [record("/ns/a", "t")],
      { action: "put", at, actor: "me", reason: "r" },
      absentSnapshot(1),
    );
    assert.equal(step.kind, "commit");
    if (step.kind !== "commit") return;
    assert.deepEqual(step.compare, [
      { key: b64("/ns/a"), target: "CREATE", result: "EQUAL", create_revision: "0" },
    ]);
    assert.deepEqual(
      step.success.map((op) => Object.keys(op)[0]),
      ["request_put", "request_put", "request_put"],
    );
    assert.deepEqual(step.success[0], {
      request_put: { key: b64("/ns/a"), value: b64('{"token":"t"}') },
    });
    assert.deepEqual(readOps(layout, keys).length, 2, "the failure branch reads both keys");
  });

  it("put on a key held by another token answers the conflict without writing", () => {
    const step = decidePut(
      layout,
      keysOf("/ns/a"),
      [record("/ns/a", "t")],
      undefined,
      held("/ns/a", "other"),
    );
    assert.equal(step.kind, "done");
    if (step.kind !== "done") return;
    assert.equal(step.value.ok, false);
    assert.equal(!step.value.ok && step.value.conflicts[0]?.token, "other");
  });

  it("put on a key already held by the same token changes nothing", () => {
    const step = decidePut(
      layout,
      keysOf("/ns/a"),
      [record("/ns/a", "t")],
      undefined,
      held("/ns/a", "t"),
    );
    assert.deepEqual(step.kind === "done" && step.value.ok && step.value.created, [false]);
  });

  it("a plain token delete is sent blind (value compare); an audited one reads first", () => {
    const keys = keysOf("/ns/a");
    const blind = decideRemove(layout, keys, "t", undefined, undefined, null);
    assert.equal(blind.kind, "commit");
    if (blind.kind === "commit") {
      assert.deepEqual(blind.compare, [
        { key: b64("/ns/a"), target: "VALUE", result: "EQUAL", value: b64('{"token":"t"}') },
      ]);
      assert.equal(blind.success.length, 2);
    }
    const audited = decideRemove(
      layout,
      keys,
      "t",
      { action: "delete", at, actor: "a", reason: "r" },
      undefined,
      null,
    );
    assert.equal(audited.kind, "read");
  });

  it("a delete on what was read guards both keys by revision; a changed version refuses", () => {
    const keys = keysOf("/ns/a");
    const snapshot = held("/ns/a", "t");
    const step = decideRemove(layout, keys, null, undefined, undefined, snapshot);
    assert.equal(step.kind, "commit");
    if (step.kind === "commit") {
      assert.deepEqual(
        step.compare.map((c) => [c.target, c.mod_revision]),
        [
          ["MOD", "7"],
          ["MOD", "7"],
        ],
      );
    }
    const expected = [{ ...record("/ns/a", "t"), updatedAt: "2025-01-01T00:00:00.000Z" }];
    const refused = decideRemove(layout, keys, null, undefined, expected, snapshot);
    assert.equal(refused.kind === "done" && refused.value.ok, false);
    const absent = decideRemove(layout, keys, null, undefined, undefined, absentSnapshot(1));
    assert.deepEqual(absent.kind === "done" && absent.value, { ok: true, removed: [] });
  });

  it("update reads first, refuses a missing key, and rewrites only the record", () => {
    const keys = keysOf("/ns/a");
    const patch = { updatedAt: "2026-01-02T00:00:00.000Z", state: "poisoned" as const };
    assert.equal(decideUpdate(layout, keys, "t", patch, null).kind, "read");
    const missing = decideUpdate(layout, keys, "t", patch, absentSnapshot(1));
    assert.deepEqual(missing.kind === "done" && missing.value, {
      ok: false,
      conflicts: [],
      missing: ["/ns/a"],
    });
    const step = decideUpdate(layout, keys, "t", patch, held("/ns/a", "t"));
    assert.equal(step.kind, "commit");
    if (step.kind === "commit") {
      assert.deepEqual(
        step.success.map((op) => op.request_put?.key),
        [b64("/meta/record//ns/a")],
      );
      const result = step.onCommit({ succeeded: true, responses: [], revision: "8" });
      assert.equal(result.ok && result.records[0]?.state, "poisoned");
    }
  });
});
